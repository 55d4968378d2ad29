"""Prize tables: the bundled loto6.json and the CSV layouts found in the wild, against an
independent parse of the real file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from psycopg import sql

from python_jobs import db
from python_jobs.ingest import IngestError, ingest_file
from python_jobs.ingest.load import RAW_PRIZES_TABLE
from python_jobs.tests.ingest_files import LOTO6, loto6_draws, raw_rows

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def independent_prizes(nobody_won_prize: float | None = 0) -> pd.DataFrame:
    """(loto, ds, tier, winners, prize) of loto6.json, read here with json and pandas only."""
    rows = []
    for draw in loto6_draws():
        ds = pd.to_datetime(draw["日付"], format="%Y/%m/%d").date()
        for tier in range(1, 6):
            winners = int(draw[f"{tier}等口数"])
            prize = int(draw[f"{tier}等賞金"])
            rows.append(
                {
                    "loto": "loto6",
                    "ds": ds,
                    "tier": tier,
                    "winners": winners,
                    "prize": nobody_won_prize if winners == 0 else prize,
                }
            )
    return pd.DataFrame(rows)


def loaded_prizes(url: str, table: str = RAW_PRIZES_TABLE, schema: str | None = None) -> pd.DataFrame:
    with db.connect(url) as conn:
        cur = conn.execute(
            sql.SQL("select loto, ds, tier, winners, prize from {} order by loto, ds, tier").format(
                db.qualified(table, schema)
            )
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    frame["prize"] = frame["prize"].astype("float")
    return frame


def assert_same(loaded: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.sort_values(["loto", "ds", "tier"]).reset_index(drop=True)
    expected["prize"] = expected["prize"].astype("float")
    pd.testing.assert_frame_equal(loaded.reset_index(drop=True), expected, check_dtype=False)


@pytest.fixture
def schema(fresh_schema):
    return fresh_schema("prizes")


def test_loto6_json_prizes_match_independent_parse(pg_url, schema):
    result = ingest_file("loto6", LOTO6, url=pg_url)
    assert (result.prizes_inserted, result.prizes_updated) == (2037 * 5, 0)
    assert_same(loaded_prizes(pg_url), independent_prizes(nobody_won_prize=0))
    again = ingest_file("loto6", LOTO6, url=pg_url)
    assert (again.prizes_inserted, again.prizes_updated) == (0, 0)


def wild_loto6_csv(tmp_path: Path, *, encoding: str, words: tuple[str, str]) -> Path:
    """loto6.json as a site might publish it: 第N回, numbers in one cell, 口 / 円 / 該当なし."""
    winners_word, prize_word = words
    header = ["回別", "抽せん日", "本数字", "ボーナス数字"]
    header += [
        f"{tier}等{word}".translate(FULL_WIDTH) for tier in range(1, 6) for word in (winners_word, prize_word)
    ]
    header += ["キャリーオーバー", "特徴"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for index, draw in enumerate(loto6_draws()):
        y, m, d = draw["日付"].split("/")
        mains = " ".join(f"{int(draw[f'第{k}数字']):02d}" for k in range(1, 7))
        prizes = []
        for tier in range(1, 6):
            winners, prize = int(draw[f"{tier}等口数"]), int(draw[f"{tier}等賞金"])
            if winners == 0:
                prizes += ["該当なし", "該当なし" if index % 2 else "0円"]
            else:
                count = f"{winners:,}口" if index % 3 else str(winners).translate(FULL_WIDTH)
                prizes += [count, f"{prize:,}円"]
        writer.writerow(
            [
                f"第{draw['開催回']}回",
                f"{y}年{m}月{d}日",
                mains,
                draw["ボーナス数字"],
                *prizes,
                draw["キャリーオーバー"],
                "",
            ]
        )
    path = tmp_path / f"loto6_wild_{encoding}.csv"
    path.write_bytes(out.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize(
    ("encoding", "words"),
    [
        ("cp932", ("当せん口数", "当せん金額")),
        ("utf-8-sig", ("口数", "当選金額")),
        ("utf-8", ("口数", "賞金")),
    ],
)
def test_wild_csv_layouts(pg_url, schema, tmp_path, encoding, words):
    path = wild_loto6_csv(tmp_path, encoding=encoding, words=words)
    result = ingest_file("loto6", path, url=pg_url)
    assert result.rows_inserted == 2037 * 7
    assert_same(
        loaded_prizes(pg_url),
        independent_prizes(nobody_won_prize=None).assign(
            prize=lambda frame: frame["prize"].where(frame["winners"] > 0, None)
        ),
    )
    draws = raw_rows(pg_url, "loto6")
    first = draws[draws["ds"] == pd.Timestamp("2000-10-05")].set_index("unique_id")
    assert [int(first.loc[f"N{k}", "y"]) for k in range(1, 7)] == [2, 8, 10, 13, 27, 30]
    assert set(draws["num"]) == set(range(1, 2038))


def test_loto7_one_cell_numbers_and_numbers3_named_tiers(pg_url, schema, tmp_path):
    lines = ["開催回,抽選日,当選番号,ボーナス数字,1等口数,1等賞金,6等口数,6等賞金"]
    lines.append('第1回,2013/4/5,07 10 12 17 23 28 34,05 13,該当なし,該当なし,"12,345口","1,000円"')
    path = tmp_path / "loto7.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest_file("loto7", path, url=pg_url)
    draws = raw_rows(pg_url, "loto7").set_index("unique_id")["y"].astype(int).to_dict()
    assert draws == {"N1": 7, "N2": 10, "N3": 12, "N4": 17, "N5": 23, "N6": 28, "N7": 34, "B1": 5, "B2": 13}
    prizes = loaded_prizes(pg_url)
    assert prizes[["tier", "winners"]].values.tolist() == [[1, 0], [6, 12345]]
    assert pd.isna(prizes["prize"].iloc[0]) and prizes["prize"].iloc[1] == 1000
    # The bonus in parentheses in the same cell (full-width), tier words in parentheses.
    text = (
        "回別,抽せん日,本数字,1等(口数),1等(賞金)\n第2回,2013/4/12,01 02 03 04 05 06 07 （08）（09）,1,100\n"
    )
    path.write_text(text, encoding="utf-8")
    ingest_file("loto7", path, url=pg_url)
    second = raw_rows(pg_url, "loto7")
    second = second[second["num"] == 2].set_index("unique_id")["y"].astype(int).to_dict()
    assert second == {**{f"N{k}": k for k in range(1, 8)}, "B1": 8, "B2": 9}
    lines = [
        "回号,抽せん日,当せん番号,ストレート口数,ストレート当せん金額,ボックス口数,ボックス当せん金額,ミニ口数,ミニ当せん金額"
    ]
    lines.append('第6000回,2022/6/1,123,75口,"102,600円",250口,"17,100円",177口,"10,200円"')
    path = tmp_path / "numbers3.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("cp932"))
    ingest_file("numbers3", path, url=pg_url)
    prizes = loaded_prizes(pg_url)
    numbers = prizes[prizes["loto"] == "numbers3"][["tier", "winners", "prize"]].values.tolist()
    assert numbers == [[1, 75, 102600], [2, 250, 17100], [5, 177, 10200]]


BAD_PRIZES = {
    "negative": ("1等口数", "-2", "negative"),
    "text": ("2等賞金", "たくさん", "unparseable tier 2 prize"),
    "too_big": ("3等賞金", str(2**63), "outside"),
}


def test_bad_prize_values_are_bad_lines_and_rejects(pg_url, schema, tmp_path):
    draws = loto6_draws()[:40]
    header = ["開催回", "日付", *(f"第{k}数字" for k in range(1, 7)), "ボーナス数字"]
    header += [f"{tier}等{word}" for tier in range(1, 6) for word in ("口数", "賞金")] + ["6等口数"]
    rows = [[draw[key] if key != "6等口数" else "" for key in header] for draw in draws]
    for offset, (column, value, _) in enumerate(BAD_PRIZES.values()):
        rows[10 + offset][header.index(column)] = value
    rows[20][header.index("6等口数")] = "5"  # Loto6 has no 6th tier
    path = tmp_path / "prizes.csv"
    path.write_text("\n".join(",".join(row) for row in [header, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        ingest_file("loto6", path, url=pg_url)
    reasons = {problem.line: problem.reason for problem in info.value.problems}
    assert sorted(reasons) == [12, 13, 14, 22]
    for offset, (_, _, words) in enumerate(BAD_PRIZES.values()):
        assert words in reasons[12 + offset]
    assert "tier 6 does not exist for loto6 (tiers 1, 2, 3, 4, 5)" in reasons[22]
    result = ingest_file("loto6", path, url=pg_url, skip_bad_rows=True)
    assert result.rows_rejected == 4 and result.prizes_inserted == 36 * 5
    assert len(raw_rows(pg_url, "loto6")) == 36 * 7


def test_stg_lottery__prizes_on_the_bundled_data(pg_url, loaded_schema):
    expected = independent_prizes(nobody_won_prize=None)
    # The raw table keys a prize table by its draw's day; staging gives it as the draws' ds,
    # a midnight timestamp.
    staged = loaded_prizes(pg_url, "stg_lottery__prizes", loaded_schema)
    assert (pd.to_datetime(staged["ds"]).dt.normalize() == pd.to_datetime(staged["ds"])).all()
    assert_same(staged.assign(ds=pd.to_datetime(staged["ds"]).dt.date), expected)
    with db.connect(pg_url) as conn:
        bingo5 = conn.execute(
            sql.SQL("select count(*) from {} where loto = 'bingo5'").format(
                db.qualified("stg_lottery__prizes", loaded_schema)
            )
        ).fetchone()[0]
    assert bingo5 == 0


@pytest.mark.dbt
def test_stg_prize_tests_catch_bad_rows(pg_url, schema):
    """The grain, tier and amount tests of stg_lottery__prizes fail on rows that break them."""
    from python_jobs import dbt

    ingest_file("loto6", LOTO6, url=pg_url)
    with db.connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "insert into {} (loto, ds, tier, winners, prize) values "
                "('loto6', '2000-10-05', 9, 1, 100), ('loto6', '2000-10-09', 1, -1, 100)"
            ).format(db.qualified(RAW_PRIZES_TABLE))
        )
    select = ["--select", "loto_prize_tiers", "stg_lottery__prizes"]
    assert dbt.run(["build", "--quiet", *select], url=pg_url, check=False) != 0
    with db.connect(pg_url) as conn:
        conn.execute(
            sql.SQL("delete from {} where tier = 9 or winners < 0").format(db.qualified(RAW_PRIZES_TABLE))
        )
    assert dbt.run(["build", "--quiet", *select], url=pg_url, check=False) == 0


@pytest.mark.dbt
def test_stg_prizes_empty_when_no_raw_prize_table(pg_url, schema):
    """Draws written without the ingest command (no prize table): the model builds, empty."""
    from python_jobs import dbt

    with db.connect(pg_url) as conn:
        conn.execute(sql.SQL("create table {} (loto text)").format(db.qualified("raw_lottery_draws")))
    assert (
        dbt.run(["build", "--quiet", "--select", "loto_prize_tiers", "stg_lottery__prizes"], url=pg_url) == 0
    )
    assert loaded_prizes(pg_url, "stg_lottery__prizes").empty
