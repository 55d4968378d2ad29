"""The feature report: its figures from the stored features, and its refusals."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from psycopg import sql

from python_jobs import cli, config, db, settings
from python_jobs.report import data as report_data
from python_jobs.report import plots


@pytest.fixture
def in_schema(monkeypatch: pytest.MonkeyPatch):
    def use(schema: str) -> None:
        monkeypatch.setenv("DBT_SCHEMA", schema)

    return use


def _loto6_main_numbers() -> pd.DataFrame:
    """The main numbers of every Loto6 draw, read straight from the shipped JSON."""
    draws = json.loads((config.RAW_DATA_DIR / "loto6.json").read_text(encoding="utf-8"))
    rows = [
        (datetime.strptime(draw["日付"], "%Y/%m/%d").date(), int(draw[f"第{k}数字"]))
        for draw in draws
        for k in range(1, 7)
    ]
    return pd.DataFrame(rows, columns=["ds", "y"])


def test_number_table_against_a_direct_count(demo_schema: str, in_schema):
    in_schema(demo_schema)
    loaded = report_data.load("loto6")
    table = plots.number_table(loaded.draws).set_index("number")
    shipped = _loto6_main_numbers()
    dates = sorted(shipped["ds"].unique())
    # Appearances over all draws, and in the last HOT_COLD_DRAWS draws.
    overall = Counter(int(y) for y in shipped["y"])
    recent_dates = set(dates[-report_data.HOT_COLD_DRAWS :])
    recent = Counter(int(y) for ds, y in zip(shipped["ds"], shipped["y"], strict=True) if ds in recent_dates)
    assert list(table.index) == list(range(1, 44))
    assert table["appearances"].to_dict() == {n: overall[n] for n in range(1, 44)}
    assert table["recent"].to_dict() == {n: recent[n] for n in range(1, 44)}
    # Gap: draws since the number was last drawn, by walking back from the newest draw.
    by_date = shipped.groupby("ds")["y"].apply(lambda ys: {int(y) for y in ys})
    for number in (1, 17, 43):
        back = next(i for i, ds in enumerate(reversed(dates)) if number in by_date[ds])
        assert table.loc[number, "gap"] == back


def test_series_bands_are_the_stored_features(demo_schema: str, in_schema):
    in_schema(demo_schema)
    loaded = report_data.load("loto6")
    n1 = loaded.series[loaded.series["unique_id"] == "N1"].reset_index(drop=True)
    # The band is the rolling mean/std of y over BAND_WINDOW draws (pandas as the reference).
    rolling = n1["y"].rolling(report_data.BAND_WINDOW)
    np.testing.assert_allclose(n1["band_mean"].astype(float), rolling.mean(), rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(n1["band_std"].astype(float), rolling.std(), rtol=1e-9, equal_nan=True)
    z = (n1["y"] - rolling.mean()) / rolling.std()
    assert n1["is_outlier_z"].fillna(False).astype(bool).tolist() == (z.abs() > 3).tolist()


def test_report_writes_every_figure(demo_schema: str, in_schema, tmp_path: Path, capsys):
    in_schema(demo_schema)
    assert cli.main(["report", "--loto", "loto6", "--out-dir", str(tmp_path)]) == 0
    page = (tmp_path / "loto6.html").read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'loto6.html'}"
    sources = re.findall(r'<img src="([^"]+)"', page)
    expected = {f"loto6_files/series_{uid}.png" for uid in ("N1", "N2", "N3", "N4", "N5", "N6", "B1")}
    expected |= {
        "loto6_files/numbers_heatmap.png",
        "loto6_files/stat_distribution.png",
        "loto6_files/timings.png",
    }
    assert set(sources) == expected
    for source in sources:
        image = np.asarray(Image.open(tmp_path / source).convert("L"), dtype=float)
        assert image.shape[0] > 200 and image.shape[1] > 500
        # Not blank: a drawn figure has many distinct grey levels, not one background colour.
        assert image.std() > 5 and len(np.unique(image)) > 20, source
    for section in ("rolling bands and outlier flags", "hot and cold numbers", "Static features", "timings"):
        assert section in page
    # The timings section names the last recorded run, the demo that built the schema.
    assert "dbt build marts" in page and "python feature job" in page


def test_unknown_lottery(demo_schema: str, in_schema, tmp_path: Path, capsys):
    in_schema(demo_schema)
    assert cli.main(["report", "--loto", "loto99", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: no lottery 'loto99' in {demo_schema}.stg_lottery__draws (known: bingo5, loto6); "
        "load it with `loto-features ingest`"
    )
    assert list(tmp_path.iterdir()) == []


def test_unbuilt_schema(fresh_schema, tmp_path: Path, capsys):
    schema = fresh_schema("reportempty")
    assert cli.main(["report", "--loto", "loto6", "--out-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {schema}.stg_lottery__draws does not exist: run `make demo` first"
    )


def test_down_database(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:1/loto")
    settings.patch(None)
    assert cli.main(["report", "--loto", "loto6", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hunter2" not in err and "Traceback" not in err
    assert not os.listdir(tmp_path)


def _copy_schema_tables(source: str, target: str, tables: list[str]) -> None:
    with db.connect(autocommit=True) as conn:
        for table in tables:
            conn.execute(
                sql.SQL("create table {} as select * from {}").format(
                    sql.Identifier(target, table), sql.Identifier(source, table)
                )
            )


def test_an_empty_features_hist_is_refused_not_drawn(demo_schema: str, fresh_schema, tmp_path: Path, capsys):
    """An unlogged features_hist comes back empty after a crash: the report says so in one line
    and writes nothing, instead of a page without figures."""
    schema = fresh_schema("reportcrash")
    _copy_schema_tables(demo_schema, schema, ["stg_lottery__draws", "features_stat"])
    with db.connect(autocommit=True) as conn:
        conn.execute(
            sql.SQL("create table {} (like {})").format(
                sql.Identifier(schema, "features_hist"), sql.Identifier(demo_schema, "features_hist")
            )
        )
    assert cli.main(["report", "--loto", "loto6", "--out-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {schema}.features_hist is empty while ")
    assert "`dbt run --select features_hist`" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_out_dir_that_is_a_file_is_refused(tmp_path: Path, capsys, where):
    """Refused before anything is read (no database is needed to say so)."""
    existing = tmp_path / "notes.txt"
    existing.write_text("not a folder\n", encoding="utf-8")
    out_dir = existing if where == "file" else existing / "reports"
    assert cli.main(["report", "--loto", "loto6", "--out-dir", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out-dir {out_dir}: {existing} is a file, not a folder\n"
    assert existing.read_text(encoding="utf-8") == "not a folder\n"
