"""The marts after a change to any input they read: one incremental ``dbt run`` leaves
features_hist, features_futr and features_stat equal, every column bit for bit, to a full refresh.

The inputs are the raw draws, the raw prize tables, the seeds the models read (positions,
holidays, schedule) and the Python job's two tables. Each example changes one random row in the
middle of the history of one input, runs dbt incrementally, and compares the three marts with a
full refresh of them (their parents are tables rebuilt by the incremental run, so refreshing the
marts alone is a full refresh); the comparisons run in the database, against copies of the marts.
The bundled real data is built once per lane (below); the changes accumulate, every state
reached being one a user could make.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterator

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from psycopg import sql

from python_jobs import config, db, dbt, definitions
from python_jobs.features import registry
from python_jobs.ingest.load import RAW_PRIZES_TABLE
from python_jobs.tests.conftest import load_bundled
from python_jobs.tests.test_features_hist import _assert_identical, _execute, _read, _write_python_job_values

pytestmark = pytest.mark.dbt

MARTS = {
    "features_hist": ["loto", "unique_id", "ds"],
    "features_futr": ["loto", "unique_id", "ds"],
    "features_stat": ["loto", "unique_id"],
}
LOTTERIES = ["loto6", "bingo5"]
# The lottery whose prize tables the bundled files hold, and whose prizes a change corrects.
PRIZE_LOTTERY = "loto6"
# The valid_to_date of a lottery's schedule rows in force now.
CURRENT = "'9999-12-31'"
# The newest draws kept of each lottery: four times the rows an incremental run re-reads before
# the newest stored draw, so the middle half of the history, where the changes fall, lies at
# least that far from either end (a change the incremental run must find beyond its lookback,
# with full windows and lags before it). The older draws would only make every run slower.
HISTORY_DRAWS = 4 * definitions.load().incremental_lookback_rows
# The changes are dealt to this many schemas, each built once and changed by its own changes
# in turn: under pytest-xdist (`make test`) two workers run them at once.
LANES = 2

Change = Callable[[str, str, st.DataObject], None]


def _rows(url: str, schema: str, query: str, params: tuple = ()) -> list[tuple]:
    with db.connect(url) as conn:
        conn.execute(sql.SQL("set search_path to {}").format(sql.Identifier(schema)))
        return conn.execute(query, params).fetchall()


def _table(name: str, schema: str) -> sql.Composable:
    return db.qualified(name, schema)


def _pick(data: st.DataObject, values: list, label: str):
    """One of ``values``, from a draw whose bounds do not depend on the data: the changes
    accumulate, and a replayed example must draw as it did."""
    assert values, f"no {label} to pick from"
    return values[data.draw(st.integers(0, 2**16), label=label) % len(values)]


def _mid_history(data: st.DataObject, values: list, label: str):
    """One of the middle half of ``values`` (in their order)."""
    assert len(values) >= 4, f"too few {label} to pick from"
    return _pick(data, values[len(values) // 4 : 3 * len(values) // 4], label)


def _mid_draw_date(url: str, schema: str, data: st.DataObject, loto: str) -> dt.date:
    dates = [
        row[0]
        for row in _rows(
            url, schema, "select distinct ds from stg_lottery__draws where loto = %s order by ds", (loto,)
        )
    ]
    return _mid_history(data, dates, f"{loto} draw")


def _change_draw(url: str, schema: str, data: st.DataObject) -> None:
    """A number of a draw moves to a value of its range that the draw does not show, or the
    draw's carry-over changes."""
    loto = data.draw(st.sampled_from(LOTTERIES), label="loto")
    ds = _mid_draw_date(url, schema, data, loto)
    draw = dict(
        _rows(
            url,
            schema,
            "select unique_id, y::integer from stg_lottery__draws where loto = %s and ds = %s",
            (loto, ds),
        )
    )
    raw = _table(config.RAW_DRAWS_TABLE, schema)
    if data.draw(st.booleans(), label="number, not carry-over"):
        unique_id = _pick(data, sorted(draw), "position")
        low, high = _rows(
            url,
            schema,
            "select range_min, range_max from loto_positions where loto = %s and unique_id = %s",
            (loto, unique_id),
        )[0]
        free = sorted(set(range(low, high + 1)) - set(draw.values()))
        if free:
            value = _pick(data, free, "new number")
            statement = sql.SQL("update {} set y = %s where loto = %s and unique_id = %s and ds = %s")
            _execute(url, statement.format(raw), (value, loto, unique_id, ds))
            return
    stored = _rows(
        url, schema, "select max(co) from stg_lottery__draws where loto = %s and ds = %s", (loto, ds)
    )[0][0]
    value = data.draw(st.integers(0, 10**10).filter(lambda co: co != stored), label="new carry-over")
    _execute(url, sql.SQL("update {} set co = %s where loto = %s and ds = %s").format(raw), (value, loto, ds))


def _prize_change_shows(action: str, tier, winners: int | None, prize: int | None) -> bool:
    """Whether ``action`` on this tier's row changes a mart (see _change_prize)."""
    if action == "prize":
        return (winners or 0) > 0
    return str(tier) == "1" or (winners or 0) * (prize or 0) != 0


def _change_prize(url: str, schema: str, data: st.DataObject) -> None:
    """A tier's winners or prize of a draw is corrected, or the tier's row is deleted.

    Only a change that a mart can show is drawn: the marts read a draw's tier-1 winners and its
    payouts (winners x prize), so a new prize for a tier nobody won, or new winners or a
    deleted row of a lower tier that pays nothing, would leave every mart as it was."""
    query = "select distinct ds from stg_lottery__prizes where loto = %s order by ds"
    dates = [row[0] for row in _rows(url, schema, query, (PRIZE_LOTTERY,))]
    ds = _mid_history(data, dates, "prize draw")
    tiers = _rows(
        url,
        schema,
        "select tier, winners, prize from stg_lottery__prizes where loto = %s and ds = %s order by tier",
        (PRIZE_LOTTERY, ds),
    )
    action = data.draw(st.sampled_from(["winners", "prize", "delete"]), label="action")
    tier, winners, prize = _pick(data, [row for row in tiers if _prize_change_shows(action, *row)], "tier")
    raw = _table(RAW_PRIZES_TABLE, schema)
    where = sql.SQL("where loto = %s and ds = %s and tier = %s")
    if action == "delete":
        _execute(url, sql.SQL("delete from {} {}").format(raw, where), (PRIZE_LOTTERY, ds, tier))
        return
    current = winners if action == "winners" else prize
    value = data.draw(st.integers(1, 10**9).filter(lambda new: new != current), label=f"new {action}")
    statement = sql.SQL("update {} set {} = %s {}").format(raw, sql.Identifier(action), where)
    _execute(url, statement, (value, PRIZE_LOTTERY, ds, tier))


def _change_positions_seed(url: str, schema: str, data: st.DataObject) -> None:
    """A position's number range grows (its expected gap and stat range change)."""
    positions = _rows(
        url,
        schema,
        "select loto, unique_id from loto_positions where loto = any(%s) order by 1, 2",
        (LOTTERIES,),
    )
    loto, unique_id = _pick(data, positions, "position")
    grow = data.draw(st.integers(1, 5), label="range grows by")
    statement = sql.SQL("update {} set range_max = range_max + %s where loto = %s and unique_id = %s")
    _execute(url, statement.format(_table("loto_positions", schema)), (grow, loto, unique_id))


def _change_holidays_seed(url: str, schema: str, data: st.DataObject) -> None:
    """A draw date becomes a holiday, or stops being one."""
    loto = data.draw(st.sampled_from(LOTTERIES), label="loto")
    ds = _mid_draw_date(url, schema, data, loto)
    holidays = _table("jp_holidays", schema)
    if _rows(url, schema, "select 1 from jp_holidays where holiday_date = %s", (ds,)):
        _execute(url, sql.SQL("delete from {} where holiday_date = %s").format(holidays), (ds,))
    else:
        _execute(url, sql.SQL("insert into {} values (%s, 'Observance')").format(holidays), (ds,))


def _change_schedule_seed(url: str, schema: str, data: st.DataObject) -> None:
    """A lottery's current draw weekday moves to another day (its future rows move)."""
    loto = data.draw(st.sampled_from(LOTTERIES), label="loto")
    current = [
        row[0]
        for row in _rows(
            url,
            schema,
            f"select draw_weekday from loto_schedule where loto = %s and valid_to_date = {CURRENT}",
            (loto,),
        )
    ]
    old = _pick(data, sorted(current), "old weekday")
    new = _pick(data, sorted(set(range(7)) - set(current)), "new weekday")
    statement = sql.SQL(
        "update {} set draw_weekday = %s where loto = %s and valid_to_date = "
        + CURRENT
        + " and draw_weekday = %s"
    )
    _execute(url, statement.format(_table("loto_schedule", schema)), (new, loto, old))


def _new_value(data: st.DataObject, current: float | None, label: str) -> float | None:
    """A value other than ``current``. The draw does not depend on ``current`` (the changes
    accumulate, so a replayed example meets another state and must draw as it did): a drawn
    value equal to ``current`` is replaced by one derived from it alone."""
    new = data.draw(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), label=label)
    if new != current:
        return new
    return 0.0 if current is None else None


def _change_python_hist(url: str, schema: str, data: st.DataObject) -> None:
    """The job rewrites one of its per-row values of a draw."""
    loto = data.draw(st.sampled_from(LOTTERIES), label="loto")
    ds = _mid_draw_date(url, schema, data, loto)
    positions = _rows(
        url,
        schema,
        "select unique_id from py_features_hist where loto = %s and ds = %s order by 1",
        (loto, ds),
    )
    unique_id = _pick(data, [row[0] for row in positions], "position")
    column = data.draw(st.sampled_from(registry.output_columns("hist")), label="column")
    key = (loto, unique_id, ds)
    current = _rows(
        url,
        schema,
        sql.SQL("select {} from py_features_hist where loto = %s and unique_id = %s and ds = %s").format(
            sql.Identifier(column)
        ),
        key,
    )[0][0]
    statement = sql.SQL("update {} set {} = %s where loto = %s and unique_id = %s and ds = %s")
    _execute(
        url,
        statement.format(_table("py_features_hist", schema), sql.Identifier(column)),
        (_new_value(data, current, "new value"), *key),
    )


def _change_python_stat(url: str, schema: str, data: st.DataObject) -> None:
    """The job rewrites one of its per-series values: that of the series' latest snapshot in
    py_features_stat_history (what features_stat reads), and its copy in py_features_stat."""
    series = _rows(
        url,
        schema,
        "select loto, unique_id, max(as_of) from py_features_stat_history group by 1, 2 order by 1, 2",
    )
    loto, unique_id, as_of = _pick(data, series, "series")
    column = data.draw(st.sampled_from(registry.output_columns("stat")), label="column")
    key = (loto, unique_id, as_of)
    current = _rows(
        url,
        schema,
        sql.SQL(
            "select {} from py_features_stat_history where loto = %s and unique_id = %s and as_of = %s"
        ).format(sql.Identifier(column)),
        key,
    )[0][0]
    value = _new_value(data, current, "new value")
    history = sql.SQL("update {} set {} = %s where loto = %s and unique_id = %s and as_of = %s")
    _execute(
        url,
        history.format(_table("py_features_stat_history", schema), sql.Identifier(column)),
        (value, *key),
    )
    latest = sql.SQL("update {} set {} = %s where loto = %s and unique_id = %s")
    _execute(
        url,
        latest.format(_table("py_features_stat", schema), sql.Identifier(column)),
        (value, loto, unique_id),
    )


CHANGES: dict[str, Change] = {
    "draws": _change_draw,
    "prizes": _change_prize,
    "seed-positions": _change_positions_seed,
    "seed-holidays": _change_holidays_seed,
    "seed-schedule": _change_schedule_seed,
    "py_features_hist": _change_python_hist,
    "py_features_stat": _change_python_stat,
}


def _write_python_stat_values(url: str, schema: str) -> None:
    """Stand in for the Python job: a value of every per-series column for every staged series,
    in py_features_stat and as the latest snapshot of the series in py_features_stat_history."""
    columns = registry.output_columns("stat")
    series = pd.DataFrame(
        _rows(url, schema, "select distinct loto, unique_id from stg_lottery__draws order by 1, 2"),
        columns=["loto", "unique_id"],
    )
    for offset, column in enumerate(columns):
        series[column] = [offset + index / 7 for index in range(len(series))]
    target = _table("py_features_stat", schema)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} double precision").format(sql.Identifier(column)) for column in columns
    )
    names = sql.SQL(", ").join(sql.Identifier(name) for name in series.columns)
    buffer = io.StringIO()
    series.to_csv(buffer, index=False, header=False)
    with db.connect(url) as conn:
        conn.execute(
            sql.SQL(
                "create table {} (loto text not null, unique_id text not null, {}, "
                "primary key (loto, unique_id))"
            ).format(target, definitions)
        )
        with conn.cursor().copy(
            sql.SQL("copy {} ({}) from stdin with (format csv)").format(target, names)
        ) as copy:
            copy.write(buffer.getvalue())
        # The same values as each series' latest snapshot (its last draw), the row of
        # py_features_stat_history that features_stat reads.
        history = _table("py_features_stat_history", schema)
        conn.execute(
            sql.SQL(
                "create table {} (loto text not null, unique_id text not null, "
                "as_of timestamp not null, {}, primary key (loto, unique_id, as_of))"
            ).format(history, definitions)
        )
        columns_list = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns)
        conn.execute(
            sql.SQL(
                "insert into {} select s.loto, s.unique_id, d.as_of, {} from {} as s join "
                "(select loto, unique_id, max(ds) as as_of from {} group by 1, 2) as d "
                "on s.loto = d.loto and s.unique_id = d.unique_id"
            ).format(history, columns_list, target, _table("stg_lottery__draws", schema))
        )
        conn.commit()


def _snapshot(url: str, schema: str, label: str) -> None:
    """A copy of each mart as it is now, ``{label}_{mart}``, compared in the database below."""
    for mart in MARTS:
        copy = _table(f"{label}_{mart}", schema)
        _execute(url, sql.SQL("drop table if exists {}").format(copy))
        _execute(url, sql.SQL("create table {} as select * from {}").format(copy, _table(mart, schema)))


def _differing_rows(url: str, schema: str, left: str, right: str) -> int:
    """Rows of one table missing from the other, both ways (set operations match NULL to NULL)."""
    tables = (_table(left, schema), _table(right, schema))
    query = sql.SQL(
        "select count(*) from ((select * from {0} except all select * from {1}) "
        "union all (select * from {1} except all select * from {0})) as differing"
    ).format(*tables)
    return _rows(url, schema, query)[0][0]


def _assert_mart_equals_snapshot(url: str, schema: str, mart: str, label: str) -> None:
    if _differing_rows(url, schema, f"{label}_{mart}", mart) == 0:
        return
    keys = MARTS[mart]
    order = ", ".join(keys)
    got = _read(url, schema, f"select * from {label}_{mart} order by {order}").set_index(keys)
    want = _read(url, schema, f"select * from {mart} order by {order}").set_index(keys)
    try:
        _assert_identical(got, want)
    except AssertionError as exc:
        raise AssertionError(f"{mart} built incrementally differs from a full refresh: {exc}") from None
    raise AssertionError(f"{mart} built incrementally differs from a full refresh")


def _build_schema(url: str, lane: int) -> str:
    """The bundled data (its newest draws) with the Python job's tables filled, every model
    built once."""
    schema = f"t_marts_prop_{lane}_{uuid.uuid4().hex[:8]}"
    _execute(url, sql.SQL("create schema {}").format(sql.Identifier(schema)))
    try:
        load_bundled(url, schema, latest_draws=HISTORY_DRAWS)
        _write_python_job_values(url, schema)
        _write_python_stat_values(url, schema)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DBT_SCHEMA", schema)
            dbt.run(["run", "--quiet"], url=url)
    except BaseException:
        _drop(url, schema)
        raise
    return schema


def _drop(url: str, schema: str) -> None:
    _execute(url, sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def lane_schema(pg_url: str) -> Iterator[Callable[[int], str]]:
    """Factory: the schema of a lane, built when a test of the lane first asks for it (a worker
    builds the lanes it runs)."""
    schemas: dict[int, str] = {}

    def schema_of(lane: int) -> str:
        if lane not in schemas:
            schemas[lane] = _build_schema(pg_url, lane)
        return schemas[lane]

    try:
        yield schema_of
    finally:
        for schema in schemas.values():
            _drop(pg_url, schema)


def _lanes() -> list:
    """(lane, change) per change, the changes dealt to the lanes in turn; the tests of a lane
    share its schema, so they run on one worker."""
    return [
        pytest.param(
            index % LANES, change, id=name, marks=pytest.mark.xdist_group(f"marts-prop-{index % LANES}")
        )
        for index, (name, change) in enumerate(CHANGES.items())
    ]


@pytest.mark.parametrize(("lane", "change"), _lanes())
# No shrinking: the changes accumulate, so a shrunk example would start from another state;
# a failure is reported as first drawn.
@hypothesis_settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_incremental_run_after_a_change_to_any_input_equals_a_full_refresh(
    pg_url, lane_schema, monkeypatch, lane, change, data
):
    schema = lane_schema(lane)
    monkeypatch.setenv("DBT_SCHEMA", schema)
    _snapshot(pg_url, schema, "before")
    change(pg_url, schema, data)
    dbt.run(["run", "--quiet"], url=pg_url)
    _snapshot(pg_url, schema, "incremental")

    dbt.run(["run", "--quiet", "--full-refresh", "--select", *MARTS], url=pg_url)
    # The change reached the marts (the comparison is not vacuous)...
    assert any(_differing_rows(pg_url, schema, f"before_{mart}", mart) for mart in MARTS)
    # ...and the incremental run wrote what a full refresh writes, every column of every row.
    for mart in MARTS:
        _assert_mart_equals_snapshot(pg_url, schema, mart, "incremental")
