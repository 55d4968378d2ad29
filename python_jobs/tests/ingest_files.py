"""Files for the ingestion tests, built from the bundled real data (seeds/raw)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from psycopg import sql

from python_jobs import config, db

LOTO6 = config.RAW_DATA_DIR / "loto6.json"
BINGO5 = config.RAW_DATA_DIR / "bingo5.csv"


def loto6_draws() -> list[dict]:
    return json.loads(LOTO6.read_text(encoding="utf-8"))


def bingo5_lines() -> list[str]:
    return BINGO5.read_text(encoding="utf-8-sig").splitlines()


def write_lines(tmp_path: Path, lines: list[str], name: str = "bad.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def replace_field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


def loto6_long_lines(draws: list[dict], loto: str = "loto6") -> list[str]:
    """Long format (loto, unique_id, ds, y, num, co) of some loto6.json draws."""
    lines = ["loto,unique_id,ds,y,num,co"]
    for draw in draws:
        ds = pd.to_datetime(draw["日付"], format="%Y/%m/%d").date().isoformat()
        positions = [(f"N{k}", draw[f"第{k}数字"]) for k in range(1, 7)] + [("B1", draw["ボーナス数字"])]
        lines += [
            f"{loto},{uid},{ds},{y},{draw['開催回']},{draw['キャリーオーバー']}" for uid, y in positions
        ]
    return lines


def raw_rows(url: str, loto: str | None = None, table: str = config.RAW_DRAWS_TABLE) -> pd.DataFrame:
    """Rows of a raw table (empty frame when it does not exist yet)."""
    where = sql.SQL("where loto = {}").format(sql.Literal(loto)) if loto else sql.SQL("")
    with db.connect(url) as conn:
        if not db.table_exists(conn, table):
            return pd.DataFrame()
        cur = conn.execute(sql.SQL("select * from {} {} order by 1, 2, 3").format(db.qualified(table), where))
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    return frame.drop(columns=["loaded_at"], errors="ignore")
