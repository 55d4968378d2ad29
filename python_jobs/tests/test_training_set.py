"""Point-in-time training sets, proved by cut and compare on the bundled bingo5 draws.

The marts are built twice more on the raw data cut at a time T (every row after T deleted):
for every entity at or before T the training set must be the same as on the whole data in
every column but ``label_y``. A column that used a later row (a later draw's date, a statistic
of the whole series) would differ. Joining ``features_stat`` directly does differ: the leak
that ``features_stat_history`` prevents.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from psycopg import sql

from python_jobs import config, db, dbt
from python_jobs.training import join
from python_jobs.training.entities import TrainingSetError, read_entities, validate_entities

LOTO = "bingo5"
CUTS = (pd.Timestamp("2019-06-30"), pd.Timestamp("2022-03-31"))
pytestmark = [pytest.mark.dbt, pytest.mark.slow]


def _bundled(loto: str):
    return next(path for name, path in config.BUNDLED_FILES if name == loto)


# The project's seeds in the target schema (the evaluator's exceptions go to a schema of their own).
SEEDS = [
    path.stem for path in config.SEEDS_DIR.glob("*.csv") if path.stem != "dbt_project_evaluator_exceptions"
]


def _build(url: str, cut: pd.Timestamp | None, seeds_from: str | None = None) -> str:
    """A schema with bingo5 ingested, cut after ``cut``, and every model built (no Python job).

    The seeds are copied from ``seeds_from`` when given (dbt seed is the slow part of a build).
    """
    from python_jobs.ingest import ingest_file

    schema = f"t_training_{uuid.uuid4().hex[:8]}"
    previous = os.environ.get("DBT_SCHEMA")
    os.environ["DBT_SCHEMA"] = schema
    try:
        ingest_file(LOTO, _bundled(LOTO), url=url)
        if cut is not None:
            with db.connect(url, autocommit=True) as conn:
                for table in ("raw_lottery_draws", "raw_lottery_prizes"):
                    if db.table_exists(conn, table):
                        conn.execute(
                            sql.SQL("delete from {} where ds > %s").format(db.qualified(table)), (cut,)
                        )
        if seeds_from is None:
            dbt.run(["seed", "--quiet"], url=url)
        else:
            with db.connect(url, autocommit=True) as conn:
                for seed in SEEDS:
                    conn.execute(
                        sql.SQL("create table {} as table {}").format(
                            sql.Identifier(schema, seed), sql.Identifier(seeds_from, seed)
                        )
                    )
        dbt.run(["run", "--quiet"], url=url)
        with db.connect(url, autocommit=True) as conn:
            if not db.table_exists(conn, "features_stat_history"):
                # Until the model exists: an empty one, so that the other parts are proved.
                conn.execute(
                    sql.SQL("create table {} (loto text, unique_id text, as_of date)").format(
                        db.qualified("features_stat_history")
                    )
                )
    finally:
        if previous is None:
            os.environ.pop("DBT_SCHEMA", None)
        else:
            os.environ["DBT_SCHEMA"] = previous
    return schema


@pytest.fixture(scope="module")
def schemas(pg_url: str) -> Iterator[dict]:
    """The whole data and each cut, built once for the module."""
    full = _build(pg_url, None)
    built = {"full": full, **{cut: _build(pg_url, cut, seeds_from=full) for cut in CUTS}}
    yield built
    with db.connect(pg_url, autocommit=True) as conn:
        for schema in built.values():
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@pytest.fixture
def in_schema(monkeypatch: pytest.MonkeyPatch):
    def use(schema: str) -> str:
        monkeypatch.setenv("DBT_SCHEMA", schema)
        return schema

    return use


def _has_stat_history(url: str) -> bool:
    with db.connect(url) as conn:
        row = conn.execute(sql.SQL("select count(*) from {}").format(db.qualified("features_stat_history")))
        return bool(row.fetchone()[0])


def _entities() -> pd.DataFrame:
    """Every series at draw times, between draws (with a time of day), at and around the cuts."""
    times = [
        "2017-04-05",  # the first draw
        "2018-02-14 10:30:00",
        "2019-06-26",  # the last draw before the first cut
        "2019-06-30",  # the first cut: its next step is projected, not seen
        "2020-11-11 20:00:00",
        "2022-03-30",  # the last draw before the second cut
        "2022-03-31 23:59:00",
        "2023-01-11",
        "2024-07-03",  # the last draw of the data
    ]
    series = [f"N{k}" for k in range(1, 9)]
    rows = [(LOTO, uid, ds) for ds in times for uid in series]
    return pd.DataFrame(rows, columns=["loto", "unique_id", "ds"])


def _assert_same(full: pd.DataFrame, cut: pd.DataFrame) -> None:
    """Every column equal but label_y; the stat snapshot may differ in one permitted way.

    features_stat_history snapshots each series at the end of each year and at its latest
    row, so the cut data holds one snapshot more: at its last draw. An entity after that draw
    sees it in the cut and an earlier snapshot in the whole data; both are in force at ds.
    Where the two use the same snapshot, every stat_* column must be equal.
    """
    assert list(full.columns) == list(cut.columns)
    same_snapshot = ((full["stat_as_of"] == cut["stat_as_of"]) | full["stat_as_of"].isna()).to_numpy()
    fresher = ~same_snapshot
    assert (cut.loc[fresher, "stat_as_of"] > full.loc[fresher, "stat_as_of"]).all()
    known = cut["stat_as_of"].notna()
    assert (cut.loc[known, "stat_as_of"] <= cut.loc[known, "ds"]).all()
    for column in full.columns:
        if column == "label_y":
            continue
        rows = same_snapshot if column.startswith("stat_") else np.ones(len(full), bool)
        left, right = full.loc[rows, column], cut.loc[rows, column]
        same = (left == right) | (left.isna() & right.isna())
        assert bool(same.all()), f"{column} differs at rows {list(np.flatnonzero(~same.to_numpy()))[:5]}"
    assert same_snapshot.sum() >= len(full) // 2


def test_cut_and_compare_equals_the_whole_data_before_each_cut(pg_url, schemas, in_schema):
    entities = _entities()
    in_schema(schemas["full"])
    full = join.training_set(entities, url=pg_url)
    assert len(full) == len(entities)
    assert full[["loto", "unique_id"]].equals(entities[["loto", "unique_id"]])
    assert full["hist_y_lag1"].notna().sum() > len(entities) * 0.8
    assert full["futr_ds_day_of_week"].notna().all()
    for cut in CUTS:
        before = (full["ds"] <= cut).to_numpy()
        in_schema(schemas[cut])
        part = join.training_set(entities[before].reset_index(drop=True), url=pg_url)
        _assert_same(full[before].reset_index(drop=True), part)
        # label_y alone may see the next row: known in the whole data, beyond the cut's.
        last = part["ds"] == part["ds"].max()
        assert part.loc[last, "label_y"].isna().all()
        assert full[before].reset_index(drop=True).loc[last, "label_y"].notna().all()


def test_the_next_step_is_the_schedules_not_the_next_draws(pg_url, schemas, in_schema):
    """At the last draw before a cut, the next step comes from the schedule in both builds."""
    in_schema(schemas["full"])
    entities = pd.DataFrame({"loto": [LOTO], "unique_id": ["N1"], "ds": ["2019-06-26"]})
    row = join.training_set(entities, url=pg_url).iloc[0]
    # bingo5 draws on Wednesdays: the next scheduled date after 26 June 2019.
    assert row["target_ds"] == pd.Timestamp("2019-07-03")
    assert row["futr_ds_day_of_week"] == 2


def test_stat_history_in_force_at_ds(pg_url, schemas, in_schema):
    in_schema(schemas["full"])
    if not _has_stat_history(pg_url):
        pytest.skip("features_stat_history is not built in this tree yet: the stat part is not proved")
    full = join.training_set(_entities(), url=pg_url)
    known = full["stat_as_of"].notna()
    assert known.any()
    assert (full.loc[known, "stat_as_of"] <= full.loc[known, "ds"]).all()


def test_joining_features_stat_directly_would_leak(pg_url, schemas):
    """features_stat holds one row per series from every draw: its values at an early entity
    change when later draws are cut away, so a training set that joined it would use them."""

    def stat(schema: str) -> pd.DataFrame:
        with db.connect(pg_url) as conn:
            cur = conn.execute(
                sql.SQL(
                    "select unique_id, stat_y_global_mean, stat_series_length from {}.features_stat "
                    "where loto = %s order by unique_id"
                ).format(sql.Identifier(schema)),
                (LOTO,),
            )
            return pd.DataFrame(cur.fetchall(), columns=["unique_id", "mean", "length"])

    whole, cut = stat(schemas["full"]), stat(schemas[CUTS[0]])
    assert (whole["length"] > cut["length"]).all()
    assert (whole["mean"] != cut["mean"]).any()


def test_an_unknown_series_names_its_row(pg_url, schemas, in_schema):
    in_schema(schemas["full"])
    entities = pd.DataFrame(
        {"loto": [LOTO, LOTO, "loto6"], "unique_id": ["N1", "N99", "N1"], "ds": ["2020-01-01"] * 3}
    )
    with pytest.raises(
        TrainingSetError, match=r"^entities row 2: unknown series loto='bingo5' unique_id='N99'"
    ):
        join.training_set(entities, url=pg_url)


def test_a_missing_mart_is_named_with_its_command(pg_url, fresh_schema):
    schema = fresh_schema("training")
    with db.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create table {} (loto text, unique_id text, ds date, y numeric)").format(
                sql.Identifier(schema, "stg_lottery__draws")
            )
        )
    entities = pd.DataFrame({"loto": [LOTO], "unique_id": ["N1"], "ds": ["2020-01-01"]})
    with pytest.raises(TrainingSetError, match=rf"^{schema}\.features_hist does not exist: build it with"):
        join.training_set(entities, url=pg_url)


# -- entity files (no database) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty file"),
        ("loto,unique_id\nbingo5,N1\n", "line 1: missing column ds"),
        ("loto,unique_id,ds\nbingo5,N1,2020-01-01\nbingo5,N1,2020-02-30\n", "line 3: ds '2020-02-30' is not"),
        ("loto,unique_id,ds\nbingo5,N1,2020-01-01\nbingo5,N1,2020-01-08,7\n", "line 3: 4 fields, the header"),
        ("loto,unique_id,ds\nbingo5,,2020-01-01\n", "line 2: empty unique_id"),
        ("loto,unique_id,ds\nbingo5,N1,\n", "line 2: empty ds"),
        ("loto,unique_id,ds\n", "line 2: no entity rows"),
    ],
)
def test_a_malformed_entity_file_names_its_line(tmp_path, text, message):
    path = tmp_path / "entities.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TrainingSetError) as refused:
        read_entities(path)
    assert str(refused.value) == f"{path}: {message}" or str(refused.value).startswith(f"{path}: {message}")
    assert "\n" not in str(refused.value)


def test_a_time_of_day_and_an_offset_are_accepted_as_utc():
    frame = validate_entities(
        pd.DataFrame(
            {
                "loto": ["a", "a", "a"],
                "unique_id": ["x", "x", "x"],
                "ds": ["2020-01-01", "2020-01-01 10:30:00", "2020-01-01T19:30:00+09:00"],
            }
        )
    )
    assert frame["ds"].tolist() == [
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2020-01-01 10:30:00"),
        pd.Timestamp("2020-01-01 10:30:00"),
    ]


def _cli(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    from python_jobs.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


def test_the_command_refuses_bad_files_with_one_line_and_exit_2(tmp_path):
    good = tmp_path / "entities.csv"
    good.write_text("loto,unique_id,ds\nbingo5,N1,2020-01-01\n", encoding="utf-8")
    code, err = _cli("training-set", "--entities", str(tmp_path / "entities.txt"), "--out", "x.csv")
    assert code == 2 and err.count("\n") == 1 and "unknown extension '.txt'" in err
    code, err = _cli("training-set", "--entities", str(good), "--out", str(tmp_path / "out.json"))
    assert code == 2 and err.count("\n") == 1 and "--out" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("loto,unique_id,ds\nbingo5,N1,yesterday\n", encoding="utf-8")
    code, err = _cli("training-set", "--entities", str(bad), "--out", str(tmp_path / "out.csv"))
    assert (code, err) == (2, f"error: {bad}: line 2: ds 'yesterday' is not a date or time\n")


def test_the_command_writes_csv_and_names_an_unknown_series_by_line(pg_url, schemas, in_schema, tmp_path):
    in_schema(schemas["full"])
    entities = tmp_path / "entities.csv"
    entities.write_text("loto,unique_id,ds\nbingo5,N1,2020-01-01\nbingo5,N2,2021-05-05 12:00:00\n")
    out = tmp_path / "training.csv"
    code, err = _cli("training-set", "--entities", str(entities), "--out", str(out))
    assert code == 0, err
    written = pd.read_csv(out)
    assert list(written.columns[:4]) == ["loto", "unique_id", "ds", "hist_y_lag1"]
    assert written["ds"].tolist() == ["2020-01-01 00:00:00", "2021-05-05 12:00:00"]
    assert {"stat_as_of", "target_ds", "label_y"} <= set(written.columns)
    entities.write_text("loto,unique_id,ds\nbingo5,N1,2020-01-01\nbingo5,X7,2020-01-01\n")
    code, err = _cli("training-set", "--entities", str(entities), "--out", str(out))
    assert code == 2 and err.startswith(
        f"error: {entities}: line 3: unknown series loto='bingo5' unique_id='X7'"
    )


def test_a_skipped_draw_is_not_seen_in_the_next_step(pg_url, fresh_schema):
    """loto6 drew on 30 December 2019 and next on 9 January 2020, not on the scheduled Monday
    6 January: the step after 30 December is 6 January, as the schedule said at the time."""
    schema = fresh_schema("training_skip")
    dates = ["2019-12-26", "2019-12-30", "2020-01-09"]
    statements = [
        "create table {s}.stg_lottery__draws (loto text, unique_id text, ds date, y numeric)",
        "create table {s}.features_hist (loto text, unique_id text, ds date, hist_y_lag1 double precision)",
        "create table {s}.features_futr (loto text, unique_id text, ds date, is_future boolean, "
        "futr_ds_day_of_week integer)",
        "create table {s}.features_stat_history (loto text, unique_id text, as_of date)",
        "create table {s}.loto_schedule (loto text, valid_from_date date, valid_to_date date, "
        "draw_weekday integer)",
        "insert into {s}.loto_schedule values ('loto6', '2011-04-01', '9999-12-31', 0), "
        "('loto6', '2011-04-01', '9999-12-31', 3)",
    ]
    for k, ds in enumerate(dates):
        statements += [
            f"insert into {{s}}.stg_lottery__draws values ('loto6', 'N1', '{ds}', {k + 1})",
            f"insert into {{s}}.features_hist values ('loto6', 'N1', '{ds}', {k})",
            f"insert into {{s}}.features_futr values ('loto6', 'N1', '{ds}', false, "
            f"extract(isodow from date '{ds}')::integer - 1)",
        ]
    with db.connect(pg_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.format(s=schema))
    entities = pd.DataFrame({"loto": ["loto6"] * 2, "unique_id": ["N1"] * 2, "ds": dates[:2]})
    frame = join.training_set(entities, url=pg_url)
    assert frame["target_ds"].tolist() == [pd.Timestamp("2019-12-30"), pd.Timestamp("2020-01-06")]
    assert frame["futr_ds_day_of_week"].tolist()[0] == 0
    # No row of 6 January: the calendar terms are unknown rather than those of 9 January.
    assert pd.isna(frame["futr_ds_day_of_week"].tolist()[1])
    assert frame["label_y"].tolist() == [2.0, 3.0]


def test_train_uses_the_training_set_and_records_version_and_period(pg_url, schemas, in_schema, tmp_path):
    import contextlib
    import io

    from python_jobs.cli import main
    from python_jobs.realtime.layout import layout
    from python_jobs.realtime.predict import load_model

    in_schema(schemas[CUTS[0]])
    out = tmp_path / "model.skops"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", "--loto", LOTO, "--out", str(out)]) == 0
    first = printed.getvalue().splitlines()[0]
    assert first.startswith(f"training on the point-in-time training set of loto {LOTO}: 8 series, ")
    bundle = load_model(out, version=layout().version)
    assert bundle["loto"] == LOTO
    # The rows with a full 30-row window and a label: from the 30th draw to the one before the
    # last draw of the cut data (whose next value is not in it).
    with db.connect(pg_url) as conn:
        dates = [
            row[0]
            for row in conn.execute(
                sql.SQL("select distinct ds from {} where loto = %s order by ds").format(
                    db.qualified(config.STAGING_MODEL)
                ),
                (LOTO,),
            )
        ]
    assert bundle["period"] == [str(pd.Timestamp(dates[29])), str(pd.Timestamp(dates[-2]))]

    code, err = _cli("train", "--out", str(out))
    assert code == 2 and err.count("\n") == 1
    assert "no rows for loto market" in err and "--loto loto6" in err
