"""A corrections file that lacks an optional draw column leaves the stored values of that
column as they are: only what the file says is merged.

The files are real draws of the bundled loto6.json, re-written without their carry-over
(キャリーオーバー) or draw-number (開催回) column, in the JSON, wide CSV and long layouts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from python_jobs.ingest import ingest_file
from python_jobs.tests.ingest_files import LOTO6, loto6_draws, raw_rows

# Draws of loto6.json with a non-zero carry-over, so that losing it would show.
CORRECTED = 5


@pytest.fixture
def schema(fresh_schema):
    return fresh_schema("ingest_partial")


def _carried_over(draws: list[dict]) -> list[dict]:
    chosen = [draw for draw in draws if int(draw["キャリーオーバー"]) > 0][100 : 100 + CORRECTED]
    assert len(chosen) == CORRECTED
    return chosen


def _without(draws: list[dict], *keys: str) -> list[dict]:
    return [{key: value for key, value in draw.items() if key not in keys} for draw in draws]


def _write_json(tmp_path: Path, draws: list[dict]) -> Path:
    path = tmp_path / "corrections.json"
    path.write_text(json.dumps(draws, ensure_ascii=False), encoding="utf-8")
    return path


def _write_wide_csv(tmp_path: Path, draws: list[dict]) -> Path:
    """The draws as a wide Japanese CSV; list-valued remarks (特徴) left out."""
    header = [key for key in draws[0] if not isinstance(draws[0][key], list)]
    path = tmp_path / "corrections.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([draw[key] for key in header] for draw in draws)
    return path


def _write_long_csv(tmp_path: Path, draws: list[dict]) -> Path:
    """Long format loto, unique_id, ds, y, num (no co column)."""
    lines = ["loto,unique_id,ds,y,num"]
    for draw in draws:
        ds = pd.to_datetime(draw["日付"], format="%Y/%m/%d").date().isoformat()
        positions = [(f"N{k}", draw[f"第{k}数字"]) for k in range(1, 7)] + [("B1", draw["ボーナス数字"])]
        lines += [f"loto6,{uid},{ds},{y},{draw['開催回']}" for uid, y in positions]
    path = tmp_path / "corrections_long.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


WRITERS = {"json": _write_json, "wide-csv": _write_wide_csv, "long-csv": _write_long_csv}


@pytest.mark.parametrize("layout", list(WRITERS))
def test_a_file_without_the_carry_over_column_keeps_the_stored_carry_over(pg_url, schema, tmp_path, layout):
    ingest_file("loto6", LOTO6, url=pg_url)
    before = raw_rows(pg_url, "loto6").set_index(["unique_id", "ds"])
    draws = _without(_carried_over(loto6_draws()), "キャリーオーバー")

    result = ingest_file("loto6", WRITERS[layout](tmp_path, draws), url=pg_url)

    assert result.rows_read == CORRECTED * (1 if layout != "long-csv" else 7)
    assert (result.rows_inserted, result.rows_updated) == (0, 0), result.summary()
    after = raw_rows(pg_url, "loto6").set_index(["unique_id", "ds"])
    assert after["co"].notna().sum() == before["co"].notna().sum() > 0
    pd.testing.assert_frame_equal(after.drop(columns="source_file"), before.drop(columns="source_file"))


def test_a_corrected_number_merges_and_the_missing_columns_stay(pg_url, schema, tmp_path):
    """A file without 開催回 and キャリーオーバー corrects one number: one row updated, and its
    draw number and carry-over are the stored ones."""
    ingest_file("loto6", LOTO6, url=pg_url)
    before = raw_rows(pg_url, "loto6").set_index(["unique_id", "ds"])
    draws = _without(_carried_over(loto6_draws()), "キャリーオーバー", "開催回")
    draw = draws[0]
    numbers = {int(draw[f"第{k}数字"]) for k in range(1, 7)} | {int(draw["ボーナス数字"])}
    # A bonus number that the draw does not show: the draw stays valid.
    draw["ボーナス数字"] = str(next(value for value in range(1, 44) if value not in numbers))

    result = ingest_file("loto6", _write_json(tmp_path, draws), url=pg_url)

    assert (result.rows_inserted, result.rows_updated) == (0, 1), result.summary()
    after = raw_rows(pg_url, "loto6").set_index(["unique_id", "ds"])
    key = ("B1", pd.to_datetime(draw["日付"], format="%Y/%m/%d"))
    assert int(after.loc[key, "y"]) == int(draw["ボーナス数字"])
    for column in ("num", "co"):
        assert after.loc[key, column] == before.loc[key, column]
        pd.testing.assert_series_equal(after[column], before[column])
