"""Online/offline parity: the engine fed draw by draw equals ``features_hist`` built by the pipeline.

The bundled loto6 and bingo5 draws are ingested, staged, run through the Python job's hist
families and the dbt hist models in a schema of their own; then every draw is fed to
``RealTimeFeatureEngine.update_draw`` and every column the mart shares with the engine is
compared row by row (1e-9 relative, NULL exactly where NULL). A restart warm-started from
PostgreSQL continues with exactly the values of the uninterrupted stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import db, dbt
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.tests.conftest import load_bundled
from python_jobs.tests.realtime_reference import assert_columns_close

pytestmark = pytest.mark.dbt

KEYS = ["loto", "unique_id", "ds"]
HIST_FAMILIES = ["rolling", "matrix_profile_left", "anomaly"]


def _read(url: str, schema: str, query: str, params: tuple = ()) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        cur = conn.execute(query, params)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


@pytest.fixture(scope="module")
def built_mart(pg_url: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """(schema, features_hist) of the bundled data: staging, the job's hist families, the hist models."""
    from python_jobs.job import run_job

    schema = f"t_realtime_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        try:
            load_bundled(pg_url, schema)
            run_job(
                url=pg_url, device="cpu", families=HIST_FAMILIES, scheduler="sync", progress=False, quiet=True
            )
            dbt.run(["run", "--quiet", "--select", "+features_hist"], url=pg_url)
            mart = _read(pg_url, schema, "select * from features_hist order by loto, unique_id, ds")
            yield schema, mart.set_index(KEYS)
        finally:
            with db.connect(pg_url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def _stream(engine: RealTimeFeatureEngine, draws: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (loto, ds), draw in draws.groupby(["loto", "ds"], sort=True):
        positions = dict(zip(draw.unique_id, draw.y.astype(float), strict=True))
        for uid, features in engine.update_draw(loto, ds, positions).items():
            rows.append({"loto": loto, "unique_id": uid, "ds": ds, **features})
    return pd.DataFrame(rows).set_index(KEYS).sort_index()


@pytest.fixture(scope="module")
def draws(pg_url: str, built_mart) -> pd.DataFrame:
    schema, _ = built_mart
    return _read(pg_url, schema, "select loto, unique_id, ds, y from stg_lottery__draws order by loto, ds")


@pytest.fixture(scope="module")
def streamed(draws) -> pd.DataFrame:
    return _stream(RealTimeFeatureEngine(), draws)


def test_every_shared_column_equals_the_mart(built_mart, streamed):
    _, mart = built_mart
    shared = [column for column in streamed.columns if column in mart.columns]
    engine = RealTimeFeatureEngine()
    # Every column of the engine named like a mart column is in the mart, and the other way
    # round every mart column that depends on the series alone (or the draw) is online.
    assert set(shared) == {*engine.layout.hist_names, *engine.history_names, *engine.domain_names()}
    offline_only = set(mart.columns) - set(shared)
    # The carry-over and the prize money come with the results file, not with the numbers.
    window = engine.layout.defs.stat_window
    prize_columns = {
        "hist_draw_prize1_winners",
        "hist_draw_prize1_payout",
        "hist_draw_payout_total",
        f"hist_y_prize1_corr_w{window}",
    }
    assert offline_only == {"hist_co", f"hist_y_co_corr_w{window}", *prize_columns}, offline_only
    assert list(streamed.index) == list(mart.index)
    assert mart[shared].notna().any().all()
    failures = assert_columns_close(streamed[shared], mart[shared], rtol=1e-9, atol=1e-12)
    assert not failures, "\n".join(failures)


def test_restart_warm_started_from_postgres_continues_exactly(pg_url, built_mart, draws, streamed):
    schema, _ = built_mart
    cut = pd.Timestamp("2020-01-01")  # ds is a timestamp (draws at midnight)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        # The service restarts: its state is rebuilt from the draws stored before the cut...
        engine = RealTimeFeatureEngine()
        fed = engine.replay_draws(draws[draws.ds < cut].itertuples(index=False, name=None))
        assert fed == int((draws.ds < cut).sum())
        warm = RealTimeFeatureEngine()
        assert warm.warm_start_from_postgres(pg_url, lotos=["bingo5"]) == int((draws.loto == "bingo5").sum())
    # ...and the next draws give the values of the uninterrupted stream.
    after = _stream(engine, draws[draws.ds >= cut])
    pd.testing.assert_frame_equal(after, streamed.loc[after.index], check_dtype=False)
    assert set(warm.keys) == {f"bingo5:N{i}" for i in range(1, 9)}
