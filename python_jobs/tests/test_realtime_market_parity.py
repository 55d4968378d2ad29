"""Online/offline parity on market series: the points the service stores build marts whose
columns equal the engine's.

2,000 bars of the bundled EUR/USD prices, as two symbols (one holding ``:``), go through the
service (:func:`python_jobs.realtime.cli.build_service`: engine, Redis, outbox, sink) into
``raw_lottery_draws`` of a schema of their own, as loto ``market``; then staging, the Python
job's hist families and the dbt hist models are built there, as ``make demo`` builds them, and
every column ``features_hist`` shares with the engine is compared row by row with the engine
fed the same points (1e-9 relative, NULL exactly where NULL). The series has no lottery spec
and no results file: its carry-over and prize columns are NULL.

The windowed moments (std, z-score, skewness, kurtosis, trend slope, lag-1 autocorrelation)
are compared on their own: for a series of prices the mart takes them from exact numeric
window sums, centred before they are rounded (double precision prefix sums would lose most of
their digits on prices near 1.07). The lottery-domain columns (gaps, frequencies, streaks, the
draw's counts) are NULL on a market series, which the engine never gives them.

At ``daily`` cadence the bars are re-timed to midnights (the grain of a lottery); at ``hourly``
cadence they keep their times of day, which needs ``ds`` to be a timestamp in the raw table,
staging and the marts.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db, dbt, settings
from python_jobs.cli import build_parser
from python_jobs.ingest.load import ensure_tables
from python_jobs.realtime import cli as realtime_cli
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.feed import load_ticks, messages
from python_jobs.realtime.sink import timestamp
from python_jobs.realtime.stream import Tick
from python_jobs.tests.realtime_reference import assert_columns_close
from python_jobs.tests.redis_servers import OwnRedis
from python_jobs.tests.stream_points import ds_type, raw_table, stored

pytestmark = pytest.mark.dbt

KEYS = ["loto", "unique_id", "ds"]
HIST_FAMILIES = ["rolling", "matrix_profile_left", "anomaly"]
BARS = 2000
STEPS = {"daily": 86400.0, "hourly": None}  # None: the bars' own times
# The columns features_hist forms from windowed power sums (and index and lag cross sums).
FROM_POWER_SUMS = (
    "hist_y_roll_std_",
    "hist_y_zscore_",
    "hist_y_roll_skew_",
    "hist_y_roll_kurt_",
    "hist_y_trend_slope_",
    "hist_y_roll_autocorr1_",
)


# Absolute tolerance of the scale-free moments (z-score, skewness, kurtosis, autocorrelation)
# where their exact value is 0.
MOMENT_ATOL = 1e-10


def _ticks(cadence: str) -> list[Tick]:
    bars = load_ticks(config.RAW_DATA_DIR / "eurusd_h1.csv").head(BARS)
    if STEPS[cadence] is not None:
        first = timestamp(float(bars.ts.iloc[0])).replace(hour=0)
        start = (first - timestamp(0.0)).total_seconds()
        bars = bars.assign(ts=start + STEPS[cadence] * pd.RangeIndex(len(bars)))
    names = {"EURUSD0": "EURUSD", "EURUSD1": "FX:EURUSD"}
    now = time.perf_counter()
    return [Tick(names[m["symbol"]], m["ts"], m["price"], 0.0, now) for m in messages(bars, 2)]


def _timestamp_grain(url: str, schema: str) -> bool:
    """Whether the raw table the ingest creates keeps a time of day."""
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, schema)
        ensure_tables(conn)
        return ds_type(conn, schema) != "date"


def _read(url: str, schema: str, query: str) -> pd.DataFrame:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[col.name for col in cur.description])


@contextlib.contextmanager
def _schema(url: str) -> Iterator[str]:
    schema = f"t_market_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SCHEMA", schema)
        try:
            yield schema
        finally:
            with db.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def _store_through_the_service(ticks: list[Tick], redis_url: str) -> None:
    args = build_parser().parse_args(["realtime", "serve", "--feed", "ws://127.0.0.1:9", "--no-predict"])
    overrides = {"redis": {"url": redis_url}, "online": {"store_points": True}}
    settings.patch(settings.load(overrides=overrides))
    try:
        service = realtime_cli.build_service(args, args.feed)
    finally:
        settings.patch(None)
    for start in range(0, len(ticks), 500):
        service.handle(ticks[start : start + 500])
    service.flush_points()
    assert service.unstored()["total"] == 0 and service.lost()["total"] == 0


@pytest.fixture(scope="module", params=list(STEPS))
def market(request, pg_url: str) -> Iterator[tuple[list[Tick], pd.DataFrame]]:
    """(the ticks, features_hist of loto market) built from the points the service stored."""
    from python_jobs.job import run_job

    cadence = request.param
    with _schema(pg_url) as schema:
        if STEPS[cadence] is None and not _timestamp_grain(pg_url, schema):
            pytest.skip("intraday points need ds as a timestamp in the raw table, staging and the marts")
        raw_table(pg_url, schema)
        ticks = _ticks(cadence)
        server = OwnRedis()
        server.start()
        try:
            _store_through_the_service(ticks, server.url)
        finally:
            server.stop()
        assert len(stored(pg_url, schema)) == len(ticks)
        dbt.run(["seed", "--quiet"], url=pg_url)
        dbt.run(["run", "--quiet", "--select", "staging"], url=pg_url)
        job = {"device": "cpu", "families": HIST_FAMILIES, "scheduler": "sync", "progress": False}
        run_job(url=pg_url, quiet=True, **job)
        dbt.run(["run", "--quiet", "--select", "+features_hist"], url=pg_url)
        mart = _read(pg_url, schema, "select * from features_hist order by loto, unique_id, ds")
        yield ticks, mart


def _streamed(ticks: list[Tick]) -> pd.DataFrame:
    engine = RealTimeFeatureEngine(history_features=True)
    rows = [
        {"loto": "market", "unique_id": tick.symbol, "ds": timestamp(tick.ts)}
        | engine.update(tick.symbol, tick.ts, tick.price)
        for tick in ticks
    ]
    return pd.DataFrame(rows).set_index(KEYS).sort_index()


def _compared(market) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(engine, mart, the columns they share), indexed and ordered alike."""
    ticks, mart = market
    assert set(mart.loto) == {"market"}
    mart = mart.assign(ds=pd.to_datetime(mart.ds)).set_index(KEYS).sort_index()
    streamed = _streamed(ticks)
    assert list(streamed.index) == list(mart.index)
    return streamed, mart, [column for column in streamed.columns if column in mart.columns]


def test_every_column_the_mart_computes_exactly_equals_the_engine(market):
    streamed, mart, shared = _compared(market)
    engine = RealTimeFeatureEngine(history_features=True)
    assert set(shared) == {*engine.layout.hist_names, *engine.history_names}
    exact = [column for column in shared if not column.startswith(FROM_POWER_SUMS)]
    assert len(exact) > 60 and mart[exact].notna().any().all()
    failures = assert_columns_close(streamed[exact], mart[exact], rtol=1e-9, atol=1e-12)
    assert not failures, "\n".join(failures)


def test_the_windowed_moments_of_the_mart_equal_the_engine(market):
    streamed, mart, shared = _compared(market)
    moments = [column for column in shared if column.startswith(FROM_POWER_SUMS)]
    assert len(moments) > 20 and mart[moments].notna().any().all()
    # The mart's centred sums are exact: the skewness of a symmetric window is 0.0 there, where
    # the engine's floats leave up to 2e-11 (a ratio of roundings, scale-free).
    failures = assert_columns_close(streamed[moments], mart[moments], rtol=1e-9, atol=MOMENT_ATOL)
    assert not failures, "\n".join(failures)


def test_the_lottery_domain_columns_are_null_on_a_market_series(market):
    _, mart = market
    engine = RealTimeFeatureEngine()
    domain = [
        *engine.domain_names(),
        "hist_y_gap_mean",
        "hist_y_gap_std",
        "hist_y_overdue_ratio",
        "hist_y_gap_expected",
    ]
    assert set(domain) <= set(mart.columns)
    assert mart[domain].isna().all().all(), mart[domain].notna().sum()


def test_the_results_file_columns_are_null_on_a_market_series(market):
    _, mart = market
    window = RealTimeFeatureEngine().layout.defs.stat_window
    # The carry-over and the prize money come with a lottery's results file, never with a tick.
    results_file = [
        "hist_co",
        f"hist_y_co_corr_w{window}",
        "hist_draw_prize1_winners",
        "hist_draw_prize1_payout",
        "hist_draw_payout_total",
        f"hist_y_prize1_corr_w{window}",
    ]
    assert set(results_file) <= set(mart.columns)
    assert mart[results_file].isna().all().all(), mart[results_file].notna().sum()
