"""The lottery specs (seeds/loto_spec.csv, seeds/loto_positions.csv) as Python objects.

The same CSV files are dbt seeds, so validation at load time and the dbt tests read one
source of truth.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from python_jobs import config


@dataclass(frozen=True)
class LotoSpec:
    loto: str
    main_count: int
    bonus_count: int
    range_min: int
    range_max: int
    is_sorted: bool
    allow_repeats: bool
    position_ranges: dict[str, tuple[int, int]]

    def range_of(self, unique_id: str) -> tuple[int, int] | None:
        return self.position_ranges.get(unique_id)

    @property
    def unique_ids(self) -> list[str]:
        return list(self.position_ranges)


def _bool(text: str) -> bool:
    return text.strip().lower() in {"true", "t", "1", "yes"}


@cache
def load_specs(seeds_dir: Path = config.SEEDS_DIR) -> dict[str, LotoSpec]:
    positions: dict[str, dict[str, tuple[int, int]]] = {}
    with open(seeds_dir / "loto_positions.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            positions.setdefault(row["loto"], {})[row["unique_id"]] = (
                int(row["range_min"]),
                int(row["range_max"]),
            )
    specs: dict[str, LotoSpec] = {}
    with open(seeds_dir / "loto_spec.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            loto = row["loto"]
            specs[loto] = LotoSpec(
                loto=loto,
                main_count=int(row["main_count"]),
                bonus_count=int(row["bonus_count"]),
                range_min=int(row["range_min"]),
                range_max=int(row["range_max"]),
                is_sorted=_bool(row["is_sorted"]),
                allow_repeats=_bool(row["allow_repeats"]),
                position_ranges=positions.get(loto, {}),
            )
    return specs


def get_spec(loto: str) -> LotoSpec | None:
    return load_specs().get(loto)
