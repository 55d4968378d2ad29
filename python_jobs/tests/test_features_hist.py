"""features_hist: every SQL column against the pandas/NumPy reference, incremental runs equal to a
full refresh, and no row that depends on later draws.

The real data is the bundled loto6 (with carry-overs) and bingo5 (without) files; the edge
cases are a digits lottery with repeats and zeros, a short series and a series of a user's
long-format file without main numbers.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import yaml
from psycopg import sql

from python_jobs import config, db, dbt, definitions
from python_jobs.features import registry, rolling_spec
from python_jobs.ingest import ingest_file
from python_jobs.tests import naive_hist
from python_jobs.tests.realtime_reference import assert_columns_close

# The feature definitions of dbt_project.yml (python_jobs/definitions.py).
DEFS = definitions.load()

pytestmark = pytest.mark.dbt

RELATIVE_TOLERANCE = 1e-9
# Values that are exactly 0 in SQL (exact integer sums) come out as 1e-17 from NumPy's floats.
ABSOLUTE_TOLERANCE = 1e-12
KEYS = ["loto", "unique_id", "ds"]
QUARTILE_COLUMN = re.compile(r"hist_y_roll_(median|q25|q75)_w(\d+)")


def _read(url: str, schema: str, query: str) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


def _execute(url: str, statement: sql.Composable, params: tuple = ()) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


def _mart(url: str, schema: str) -> pd.DataFrame:
    mart = _read(url, schema, "select * from features_hist order by loto, unique_id, ds")
    return mart.set_index(KEYS)


def _draws(url: str, schema: str) -> pd.DataFrame:
    return _read(url, schema, "select loto, unique_id, ds, y, co from stg_lottery__draws")


def _ingest_bundled(url: str, cut: dt.datetime | None = None) -> None:
    """Load the bundled files into the raw table (an idempotent upsert), drop what is after
    ``cut``, and rebuild the staging table from it."""
    for loto, path in config.BUNDLED_FILES:
        ingest_file(loto, path, url=url)
    if cut is not None:
        _execute(
            url,
            sql.SQL("delete from {} where ds > %s").format(db.qualified(config.RAW_DRAWS_TABLE)),
            (cut,),
        )
    _run_staging(url)


def _run_staging(url: str) -> None:
    # The positions seed gives hist_y_gap_expected its number ranges.
    dbt.run(["build", "--quiet", "--select", "loto_positions", "stg_lottery__draws"], url=url)


def _build(url: str, *extra: str, command: str = "run") -> None:
    dbt.run([command, "--quiet", "--selector", "hist_models", *extra], url=url)


def _write_python_job_values(url: str, schema: str) -> pd.DataFrame:
    """Stand in for the Python job: fill py_features_hist for every draw in staging.

    The quartiles are pandas' rolling quantiles (what the job computes), so that the IQR
    columns of the mart can be checked; the other columns get arbitrary values that the mart
    must carry through unchanged. Point in time, like the job: a row uses earlier rows only.
    """
    draws = _draws(url, schema).sort_values(KEYS).reset_index(drop=True)
    columns = registry.output_columns("hist")
    _create_python_job_table(url, schema, columns)
    y = draws["y"].astype(float)
    grouped = y.groupby([draws["loto"], draws["unique_id"]], sort=False)
    values = draws[KEYS].copy()
    for column in columns:
        match = QUARTILE_COLUMN.fullmatch(column)
        if match:
            stat, window = match.group(1), int(match.group(2))
            quantile = {"median": 0.5, "q25": 0.25, "q75": 0.75}[stat]
            rolled = grouped.rolling(window).quantile(quantile)
            values[column] = rolled.droplevel([0, 1]).sort_index().to_numpy()
        else:
            values[column] = y / 7 + grouped.cumcount()
    buffer = io.StringIO()
    values.to_csv(buffer, index=False, header=False)
    target = db.qualified("py_features_hist", schema)
    with db.connect(url) as conn:
        conn.execute(sql.SQL("delete from {}").format(target))
        names = sql.SQL(", ").join(sql.Identifier(name) for name in values.columns)
        with conn.cursor().copy(
            sql.SQL("copy {} ({}) from stdin with (format csv)").format(target, names)
        ) as copy:
            copy.write(buffer.getvalue())
        conn.commit()
    return values.set_index(KEYS)


def _create_python_job_table(url: str, schema: str, columns: list[str]) -> None:
    """The job's per-row table, as the job creates it, where no run has made it yet."""
    feature_columns = sql.SQL(", ").join(
        sql.SQL("{} double precision").format(sql.Identifier(column)) for column in columns
    )
    _execute(
        url,
        sql.SQL(
            "create table if not exists {} (loto text not null, unique_id text not null, "
            "ds timestamp not null, computed_at timestamptz, {}, primary key (loto, unique_id, ds))"
        ).format(db.qualified("py_features_hist", schema), feature_columns),
    )


def _assert_close(got: pd.DataFrame, want: pd.DataFrame, *, rtol: float, atol: float) -> None:
    """Same rows; every column of ``want`` equal within tolerance, NULL exactly where NaN."""
    assert list(got.index) == list(want.index)
    failures = assert_columns_close(got, want, rtol=rtol, atol=atol)
    assert not failures, "\n".join(failures)


def _assert_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows and columns, every value bit for bit (NULL where NULL)."""
    assert list(got.columns) == list(want.columns)
    assert list(got.index) == list(want.index)
    for column in want.columns:
        a, b = got[column].to_numpy(dtype=object), want[column].to_numpy(dtype=object)
        same = np.array([(pd.isna(x) and pd.isna(y)) or x == y for x, y in zip(a, b, strict=True)])
        assert same.all(), f"{column}: {int((~same).sum())} rows differ, e.g. {want.index[np.argmin(same)]}"


@pytest.fixture(scope="module")
def reference_build(pg_url: str) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """The bundled data built with the hist models, their data and unit tests; (mart, draws, job values)."""
    schema = f"t_hist_ref_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        _execute(pg_url, sql.SQL("create schema {}").format(sql.Identifier(schema)))
        try:
            _ingest_bundled(pg_url)
            job_values = _write_python_job_values(pg_url, schema)
            _build(pg_url, command="build")
            yield _mart(pg_url, schema), _draws(pg_url, schema), job_values
        finally:
            _execute(pg_url, sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def reference(reference_build) -> pd.DataFrame:
    """The reference's columns for the bundled data and the job values of ``reference_build``."""
    _, draws, job_values = reference_build
    return naive_hist.features_hist(draws, job_values.reset_index())


def test_sql_columns_match_reference_on_real_data(reference_build, reference):
    mart, _, job_values = reference_build
    assert len(mart) == 7 * 2037 + 8 * 375
    want = reference
    assert set(want.columns) <= set(mart.columns)
    # Nothing vacuous: every column has values, and the flags say both yes and no somewhere.
    assert want.notna().any().all()
    for column in (f"hist_y_is_outlier_z_w{DEFS.stat_window}", f"hist_y_is_outlier_iqr_w{DEFS.stat_window}"):
        assert set(want[column].dropna()) == {0.0, 1.0}, column
    _assert_close(mart, want, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
    # The Python job's columns come through as the job wrote them.
    carried = mart[job_values.columns].astype(float)
    pd.testing.assert_frame_equal(carried, job_values.loc[mart.index].astype(float), check_exact=True)


def test_columns_are_the_defined_ones_and_documented(reference_build):
    mart, _, job_values = reference_build
    columns = [*KEYS, *mart.columns]
    models = yaml.safe_load((config.REPO_ROOT / "models/marts/_marts__features_hist.yml").read_text())
    documented = next(model for model in models["models"] if model["name"] == "features_hist")
    assert [column["name"] for column in documented["columns"]] == columns
    assert all(column.get("description") for column in documented["columns"])
    # The SQL columns in their documented order, then the Python job's.
    sql_columns = [column for column in mart.columns if column not in job_values.columns]
    assert list(mart.columns[len(sql_columns) :]) == list(job_values.columns)
    # Every rolling statistic of the spec computed in SQL, in the spec's order.
    rolling = [column for stat in rolling_spec.computed_by("sql") for column in stat.columns(DEFS)]
    assert [column for column in sql_columns if column in set(rolling)] == rolling
    assert {f"hist_y_lag{k}" for k in DEFS.lags} <= set(sql_columns)
    assert {f"hist_y_freq_w{n}" for n in DEFS.freq_windows} <= set(sql_columns)
    single = ("is_outlier_z", "is_outlier_iqr", "trend_slope", "roll_autocorr1", "co_corr", "prize1_corr")
    assert {f"hist_y_{name}_w{DEFS.stat_window}" for name in single} <= set(sql_columns)
    # outlier flags, drawdown/up, slope, autocorr, gap, streak, draw, co, prizes, gap regularity
    fixed = 2 + 2 + 2 + 1 + 1 + 4 + 2 + 4 + 4
    expected = len(DEFS.lags) + len(rolling) + len(DEFS.diffs) + len(DEFS.pct_changes)
    assert len(sql_columns) == expected + len(DEFS.freq_windows) + fixed


def _peer_columns(reference: pd.DataFrame, peer: pd.DataFrame) -> pd.DataFrame:
    """The reference's columns that a benchmark peer computes: all of them but rolling
    statistics of the spec that the peer does not implement."""
    missing = set(reference.columns) - set(peer.columns)
    spec_columns = {column for stat in rolling_spec.STATISTICS for column in stat.columns(DEFS)}
    assert missing <= spec_columns, f"the peer lacks columns that are not rolling statistics: {missing}"
    return reference[[column for column in reference.columns if column in peer.columns]]


def test_pandas_peer_computes_the_same_columns(reference_build, reference, monkeypatch):
    """The benchmark's pandas round trip computes what the mart holds (pandas' own rounding aside)."""
    monkeypatch.syspath_prepend(str(config.REPO_ROOT))
    from bench import hist_pandas_peer

    _, draws, job_values = reference_build
    peer = hist_pandas_peer.compute(draws).set_index(KEYS).sort_index()
    want = _peer_columns(reference, peer)
    assert set(peer.columns) == set(want.columns) | {
        column for column in job_values.columns if QUARTILE_COLUMN.fullmatch(column)
    }
    # pandas' rolling std of a constant window can be 1e-7 instead of 0, which turns a NULL
    # z-score into a number: leave those rows out of the z-score columns.
    constant = {w: (want[f"hist_y_roll_std_w{w}"] == 0).to_numpy() for w in DEFS.windows}
    for column in want.columns:
        match = re.fullmatch(r"hist_y_(?:zscore|is_outlier_z)_w(\d+)", column)
        keep = ~constant[int(match.group(1))] if match else np.ones(len(want), dtype=bool)
        _assert_close(peer.loc[keep, [column]], want.loc[keep, [column]], rtol=1e-6, atol=1e-6)
    quartiles = [column for column in job_values.columns if QUARTILE_COLUMN.fullmatch(column)]
    _assert_close(peer[quartiles], job_values.loc[peer.index, quartiles], rtol=1e-12, atol=0)


def test_polars_peer_computes_the_same_columns(reference_build, reference, monkeypatch):
    """The benchmark's polars round trip computes what the mart holds, and writes it back."""
    monkeypatch.syspath_prepend(str(config.REPO_ROOT))
    import polars as pl

    from bench import hist_polars_peer

    mart, draws, job_values = reference_build
    frame = pl.DataFrame(
        {
            "loto": draws["loto"].tolist(),
            "unique_id": draws["unique_id"].tolist(),
            "ds": draws["ds"].tolist(),
            "y": draws["y"].astype(float).to_numpy(),
            "co": draws["co"].astype(float).to_numpy(),
        }
    )
    computed = hist_polars_peer.compute(frame)
    peer = pd.DataFrame({name: computed[name].to_list() for name in computed.columns})
    # The peer keys its rows by day; the mart's ds is the same day as a midnight timestamp.
    peer["ds"] = pd.to_datetime(peer["ds"])
    peer = peer.set_index(KEYS)
    peer = peer.sort_index()
    want = _peer_columns(reference, peer)
    quartiles = [column for column in job_values.columns if QUARTILE_COLUMN.fullmatch(column)]
    assert set(peer.columns) == set(want.columns) | set(quartiles)
    # The SQL columns in the mart's order, then the Python job's quartiles.
    assert list(peer.columns) == [column for column in mart.columns if column in peer.columns]
    _assert_close(peer[list(want.columns)], want, rtol=1e-6, atol=1e-6)
    _assert_close(peer[quartiles], job_values.loc[peer.index, quartiles], rtol=1e-12, atol=0)


def test_polars_peer_round_trip_writes_its_columns(pg_url, fresh_schema, monkeypatch):
    """COPY out, compute, COPY back: the written table holds every row and column it computed."""
    monkeypatch.syspath_prepend(str(config.REPO_ROOT))
    from bench import hist_polars_peer

    schema = fresh_schema("hist_polars")
    draws = _edge_draws()
    with db.connect(pg_url) as conn:
        conn.execute(
            sql.SQL("create table {} (loto text, unique_id text, ds date, y numeric, co bigint)").format(
                db.qualified("draws", schema)
            )
        )
        with conn.cursor().copy(sql.SQL("copy {} from stdin").format(db.qualified("draws", schema))) as copy:
            for loto, unique_id, ds, y, co in draws.itertuples(index=False):
                copy.write_row((loto, unique_id, ds, int(y), None if pd.isna(co) else int(co)))
        conn.commit()
    assert hist_polars_peer.run_peer(pg_url, schema, "draws") > 0
    computed = hist_polars_peer.compute(hist_polars_peer.read_draws(pg_url, schema, "draws"))
    written = _read(pg_url, schema, "select * from hist_polars_peer")
    assert list(written.columns) == computed.columns and len(written) == len(draws)
    for column in ("hist_y_roll_mean_w30", "hist_y_is_outlier_iqr_w30", "hist_y_gap", "hist_co"):
        assert written[column].notna().sum() == computed[column].is_not_null().sum(), column


def _stage_objects(url: str, schema: str) -> list[str]:
    """What the model's hooks create in ``schema`` and drop before committing, if any is left."""
    with db.connect(url) as conn:
        rows = conn.execute(
            "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname like 'features_hist\\_\\_%%' "
            "union all select p.proname from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace "
            "where n.nspname = %s and p.proname like 'features_hist\\_\\_%%'",
            (schema, schema),
        ).fetchall()
    return [row[0] for row in rows]


def test_parallel_build_equals_one_process_and_leaves_nothing(pg_url, fresh_schema, monkeypatch):
    """The staged build gives the same rows, bit for bit, whether the server may give it
    parallel workers or not (then the leader runs the whole plan); its helper objects are gone
    after the run; the contract's NOT NULL constraints hold on a table created by CREATE TABLE
    AS."""
    schema = fresh_schema("hist_parallel")
    _ingest_bundled(pg_url)
    _write_python_job_values(pg_url, schema)
    _build(pg_url)
    parallel = _mart(pg_url, schema)
    assert len(parallel) == 7 * 2037 + 8 * 375
    assert _stage_objects(pg_url, schema) == []
    with db.connect(pg_url) as conn:
        not_null = conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnotnull and attnum > 0 "
            "order by attnum",
            (f"{schema}.features_hist",),
        ).fetchall()
    assert [row[0] for row in not_null] == KEYS
    monkeypatch.setenv("PGOPTIONS", "-c max_parallel_workers_per_gather=0")
    _build(pg_url, "--full-refresh", "--select", "features_hist")
    _assert_identical(_mart(pg_url, schema), parallel)
    assert _stage_objects(pg_url, schema) == []


def test_incremental_runs_equal_full_refresh_and_nothing_looks_ahead(pg_url, fresh_schema):
    schema = fresh_schema("hist_incr")
    # ds is a timestamp (draws at midnight): the cuts are too.
    first_cut, second_cut = dt.datetime(2023, 6, 30), dt.datetime(2024, 3, 31)
    _ingest_bundled(pg_url, cut=first_cut)
    _write_python_job_values(pg_url, schema)
    _build(pg_url)
    built_on_cut = _mart(pg_url, schema)

    # New draws arrive; the mart is built incrementally before the Python job has seen them.
    _ingest_bundled(pg_url, cut=second_cut)
    # An old row that an incremental run must not rewrite (a full rebuild would).
    marker = built_on_cut.loc[("loto6", "N1")].index[300]
    marker = ("loto6", "N1", marker)
    stored = sql.SQL("update {} set hist_y_lag60 = %s where loto = %s and unique_id = %s and ds = %s").format(
        db.qualified("features_hist", schema)
    )
    original = built_on_cut.loc[marker, "hist_y_lag60"]
    _execute(pg_url, stored, (-1.0, *marker))
    _build(pg_url)
    # The rest arrives, and the job now fills every row: the rows merged without its values
    # are merged again with them.
    _ingest_bundled(pg_url)
    _write_python_job_values(pg_url, schema)
    _build(pg_url)
    incremental = _mart(pg_url, schema)
    assert incremental.loc[marker, "hist_y_lag60"] == -1.0, "the incremental run rebuilt old rows"
    _execute(pg_url, stored, (original, *marker))
    incremental = _mart(pg_url, schema)

    _build(pg_url, "--full-refresh")
    full = _mart(pg_url, schema)
    assert len(full) == 7 * 2037 + 8 * 375
    assert full["hist_y_roll_q75_w30"].notna().sum() > 10_000
    _assert_identical(incremental, full)

    earlier = full.index.get_level_values("ds") <= first_cut
    assert earlier.sum() == len(built_on_cut) and earlier.sum() < len(full)
    _assert_identical(built_on_cut, full[earlier])


def _edge_draws() -> pd.DataFrame:
    """A digits lottery (numbers4 of the spec: repeats, zeros, gaps in the carry-over), a short
    series and a series of a user's file without main numbers."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2021-01-04", periods=140)
    rows = []
    for i, ds in enumerate(dates):
        digits = rng.integers(0, 10, size=4)
        if 40 <= i < 80:
            digits[0] = 7  # a constant stretch: zero variance, NULL z-scores and correlations
        co = None if i % 37 == 5 else int(rng.integers(0, 3)) * 1_000_000_007 + i
        for position, value in zip(["N1", "N2", "N3", "B1"], digits, strict=True):
            rows.append(("numbers4", position, ds.date(), int(value), co))
    # Carry-overs around floor(sqrt(2^63 - 1)) = 3,037,000,499, whose squares the mart sums
    # as bigint below and as numeric above, mixed in one window, and a constant stretch of a
    # large one (a zero variance: NULL correlation).
    big = [0, 3_037_000_499, 3_037_000_500, 7_000_000_013, 123_456_789_012]
    for i, ds in enumerate(dates[:100]):
        co = 9_876_543_210 if 40 <= i < 75 else big[int(rng.integers(0, len(big)))]
        rows.append(("jackpot", "N1", ds.date(), int(rng.integers(1, 44)), co))
    for i, value in enumerate([4, 9]):
        rows.append(("short", "N1", dates[i].date(), value, None))
    for i, value in enumerate(rng.integers(-20, 21, size=70)):
        rows.append(("user_file", "close", dates[i].date(), int(value), None))
    return pd.DataFrame(rows, columns=["loto", "unique_id", "ds", "y", "co"])


def test_edge_cases_match_reference(pg_url, fresh_schema):
    schema = fresh_schema("hist_edge")
    draws = _edge_draws()
    raw = db.qualified(config.RAW_DRAWS_TABLE, schema)
    with db.connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "create table {} (loto text not null, unique_id text not null, ds date not null, "
                "y numeric not null, num integer, co bigint, source_file text, "
                "loaded_at timestamptz not null default now(), primary key (loto, unique_id, ds))"
            ).format(raw)
        )
        with conn.cursor().copy(
            sql.SQL("copy {} (loto, unique_id, ds, y, co) from stdin").format(raw)
        ) as copy:
            for loto, unique_id, ds, y, co in draws.itertuples(index=False):
                copy.write_row((loto, unique_id, ds, int(y), None if pd.isna(co) else int(co)))
        conn.commit()
    _run_staging(pg_url)
    _build(pg_url, command="build")
    mart = _mart(pg_url, schema)
    want = naive_hist.features_hist(_draws(pg_url, schema))
    _assert_close(mart, want, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE)
    digits = mart.loc["numbers4"]
    assert digits["hist_y_drawup"].isna().any() and digits["hist_y_zscore_w30"].isna().sum() > 30
    assert (mart.loc["short", "hist_y_roll_mean_w3"].isna()).all()
    jackpot = mart.loc["jackpot"]["hist_y_co_corr_w30"]
    assert jackpot.notna().sum() > 30 and jackpot.iloc[69:75].isna().all() and jackpot.iloc[75:].notna().all()
    user = mart.loc["user_file"]
    # Lottery-level columns only for a lottery of loto_positions (numbers4 here).
    assert user["hist_draw_sum"].isna().all() and user["hist_y_streak"].isna().all()
    assert digits["hist_y_streak"].notna().all() and digits["hist_draw_sum"].notna().all()
