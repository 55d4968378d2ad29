"""Lottery-domain columns of a whole draw, kept incrementally per lottery.

The definitions of ``int_hist__draw_domain`` (joined into ``features_hist``): draws are
counted per lottery in date order; "y appeared" means y is among the draw's main numbers
(positions ``N1..Nk``), counted with multiplicity where a lottery repeats digits.

- ``hist_y_gap``: draws since y last appeared, before this draw (NULL if never);
- ``hist_y_freq_w{n}``: appearances of y in the previous ``n`` draws (this one excluded);
- ``hist_y_streak``: consecutive draws, ending with this one, in which y appeared;
- ``hist_draw_sum``, ``_odd_count``, ``_consecutive_pairs``, ``_same_last_digit``: of this
  draw's main numbers (NULL for a draw without main numbers);
- ``hist_y_gap_mean``, ``hist_y_gap_std`` (ddof 1), ``hist_y_overdue_ratio``: of y's completed
  gaps before this draw (``int_hist__value_gaps``), from exact integer running sums;
- ``hist_y_gap_expected``: the size of the position's number range over the main positions
  sharing it (``int_hist__position_gap_expected``, from ``seeds/loto_positions.csv``).

State per lottery: the draw count, per value its last appearance, current run and gap sums, and
the main-number counts of the last ``max(freq_windows)`` draws (a bounded deque).
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from functools import lru_cache

from python_jobs import config

MAIN_POSITION = re.compile(r"N[0-9]+")

DRAW_COLUMNS = (
    "hist_draw_sum",
    "hist_draw_odd_count",
    "hist_draw_consecutive_pairs",
    "hist_draw_same_last_digit",
)


GAP_COLUMNS = ("hist_y_gap_mean", "hist_y_gap_std", "hist_y_overdue_ratio", "hist_y_gap_expected")


#: The columns of ``int_hist__draw_domain`` in the mart's order, ``{n}`` one column per frequency
#: window. ``features_hist.sql`` reads the same order through the generated macro
#: ``hist_draw_domain_columns()`` (:mod:`python_jobs.features.hist_macros`).
DRAW_DOMAIN_COLUMNS = ("hist_y_gap", "hist_y_freq_w{n}", "hist_y_streak", *DRAW_COLUMNS)

def domain_columns(freq_windows: Iterable[int]) -> tuple[str, ...]:
    """The lottery-domain column names in the mart's order."""
    windows = tuple(freq_windows)
    draw_domain = [
        name.format(n=n) for name in DRAW_DOMAIN_COLUMNS for n in (windows if "{n}" in name else (None,))
    ]
    return (*draw_domain, *GAP_COLUMNS)


@lru_cache(maxsize=1)
def expected_gaps() -> dict[tuple[str, str], float]:
    """``(loto, unique_id) -> hist_y_gap_expected`` from the positions seed."""
    with open(config.SEEDS_DIR / "loto_positions.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    sharing = Counter(
        (row["loto"], row["range_min"], row["range_max"]) for row in rows if row["category"] == "main"
    )
    out = {}
    for row in rows:
        count = sharing.get((row["loto"], row["range_min"], row["range_max"]))
        if count:
            out[(row["loto"], row["unique_id"])] = (int(row["range_max"]) - int(row["range_min"]) + 1) / count
    return out


def gap_statistics(count: int, total: int, squares: int, gap: float | None) -> dict[str, float | None]:
    """Mean, std (ddof 1) and overdue ratio from the completed gaps' count, sum and square sum.

    The same arithmetic as the SQL: exact integer sums, then one division (and a square root).
    """
    mean = total / count if count >= 1 else None
    std = math.sqrt(max(count * squares - total * total, 0) / (count * (count - 1))) if count >= 2 else None
    ratio = gap / mean if gap is not None and mean is not None else None
    return {"hist_y_gap_mean": mean, "hist_y_gap_std": std, "hist_y_overdue_ratio": ratio}


def draw_statistics(main: list[float]) -> dict[str, float | None]:
    """Sum, odd count, adjacent pairs differing by 1, numbers sharing a last digit."""
    if not main:
        return dict.fromkeys(DRAW_COLUMNS)
    numbers = sorted(main)
    digits = Counter(abs(int(number)) % 10 for number in numbers)
    return {
        "hist_draw_sum": float(sum(numbers)),
        "hist_draw_odd_count": float(sum(1 for number in numbers if int(number) % 2 != 0)),
        "hist_draw_consecutive_pairs": float(
            sum(1 for low, high in itertools.pairwise(numbers) if high - low == 1)
        ),
        "hist_draw_same_last_digit": float(sum(count for count in digits.values() if count > 1)),
    }


class LotteryDomain:
    """Incremental gap, frequency and streak state of one lottery.

    Parameters
    ----------
    freq_windows : tuple of int
        ``n`` of ``hist_y_freq_w{n}`` (dbt var ``freq_windows``).
    """

    def __init__(self, freq_windows: tuple[int, ...], loto: str = "") -> None:
        self.freq_windows = freq_windows
        self.loto = loto
        # per value: count, sum and square sum of its completed gaps
        self.gaps: dict[float, tuple[int, int, int]] = {}
        self.draws = 0
        self.last_seen: dict[float, int] = {}
        self.run_length: dict[float, int] = {}
        self.recent: deque[Counter] = deque(maxlen=max(freq_windows))

    def update(self, positions: Mapping[str, float]) -> dict[str, dict[str, float | None]]:
        """Add one draw (``unique_id -> y``); return the domain columns of each position."""
        d = self.draws
        main = Counter(y for uid, y in positions.items() if MAIN_POSITION.fullmatch(uid))
        shared = draw_statistics(list(main.elements()))
        out: dict[str, dict[str, float | None]] = {}
        for uid, y in positions.items():
            last = self.last_seen.get(y)
            features: dict[str, float | None] = {"hist_y_gap": None if last is None else float(d - last)}
            for n in self.freq_windows:
                window = itertools.islice(reversed(self.recent), n)
                features[f"hist_y_freq_w{n}"] = float(sum(counts[y] for counts in window))
            if main[y] > 0:
                before = self.run_length.get(y, 0) if last == d - 1 else 0
                features["hist_y_streak"] = float(before + 1)
            else:
                features["hist_y_streak"] = 0.0
            features.update(shared)
            features.update(gap_statistics(*self.gaps.get(y, (0, 0, 0)), features["hist_y_gap"]))
            features["hist_y_gap_expected"] = expected_gaps().get((self.loto, uid))
            out[uid] = features
        for y in main:
            previous = self.last_seen.get(y)
            if previous is not None:
                count, total, squares = self.gaps.get(y, (0, 0, 0))
                gap = d - previous
                self.gaps[y] = (count + 1, total + gap, squares + gap * gap)
            self.run_length[y] = (self.run_length.get(y, 0) if self.last_seen.get(y) == d - 1 else 0) + 1
            self.last_seen[y] = d
        self.recent.append(main)
        self.draws += 1
        return out
