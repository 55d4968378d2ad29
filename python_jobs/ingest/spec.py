"""The lottery specs (seeds/loto_spec.csv, loto_positions.csv, loto_prize_tiers.csv) in Python.

The same CSV files are dbt seeds, so validation at load time and the dbt tests read one
source of truth.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

from python_jobs import config


@dataclass(frozen=True)
class LotoSpec:
    """The rules of one lottery: positions and their ranges, first draw, prize tiers."""

    loto: str
    main_count: int
    bonus_count: int
    range_min: int
    range_max: int
    is_sorted: bool
    allow_repeats: bool
    first_draw: date | None
    position_ranges: dict[str, tuple[int, int]]
    # tier number (1 = top prize) -> (English name, Japanese name)
    tiers: dict[int, tuple[str, str]] = field(default_factory=dict)

    def range_of(self, unique_id: str) -> tuple[int, int] | None:
        return self.position_ranges.get(unique_id)

    @property
    def unique_ids(self) -> list[str]:
        return list(self.position_ranges)

    def tier_list(self) -> str:
        return ", ".join(str(tier) for tier in sorted(self.tiers)) or "none"


def _bool(text: str) -> bool:
    return text.strip().lower() in {"true", "t", "1", "yes"}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def load_specs(seeds_dir: Path = config.SEEDS_DIR) -> dict[str, LotoSpec]:
    """Every known lottery by name, read from the seed files."""
    positions: dict[str, dict[str, tuple[int, int]]] = {}
    for row in _read(seeds_dir / "loto_positions.csv"):
        positions.setdefault(row["loto"], {})[row["unique_id"]] = (
            int(row["range_min"]),
            int(row["range_max"]),
        )
    tiers: dict[str, dict[int, tuple[str, str]]] = {}
    for row in _read(seeds_dir / "loto_prize_tiers.csv"):
        tiers.setdefault(row["loto"], {})[int(row["tier"])] = (row["tier_name"], row["name_ja"])
    specs: dict[str, LotoSpec] = {}
    for row in _read(seeds_dir / "loto_spec.csv"):
        loto = row["loto"]
        first = row.get("first_draw_date", "").strip()
        specs[loto] = LotoSpec(
            loto=loto,
            main_count=int(row["main_count"]),
            bonus_count=int(row["bonus_count"]),
            range_min=int(row["range_min"]),
            range_max=int(row["range_max"]),
            is_sorted=_bool(row["is_sorted"]),
            allow_repeats=_bool(row["allow_repeats"]),
            first_draw=date.fromisoformat(first) if first else None,
            position_ranges=positions.get(loto, {}),
            tiers=tiers.get(loto, {}),
        )
    return specs


def get_spec(loto: str) -> LotoSpec | None:
    return load_specs().get(loto)
