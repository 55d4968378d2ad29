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
the main-number counts of the last ``max(freq_windows)`` draws (a bounded deque). Saved state
(:mod:`python_jobs.realtime.state`) holds these as arrays: :meth:`LotteryDomain.to_arrays`.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np

from python_jobs import config

MAIN_POSITION = re.compile(r"N[0-9]+")

DRAW_COLUMNS = (
    "hist_draw_sum",
    "hist_draw_odd_count",
    "hist_draw_consecutive_pairs",
    "hist_draw_same_last_digit",
)


#: The columns of ``int_hist__draw_domain`` in the mart's order, ``{n}`` one column per frequency
#: window. ``features_hist.sql`` reads the same order through the generated macro
#: ``hist_draw_domain_columns()`` (:mod:`python_jobs.features.hist_macros`).
DRAW_DOMAIN_COLUMNS = ("hist_y_gap", "hist_y_freq_w{n}", "hist_y_streak", *DRAW_COLUMNS)

GAP_COLUMNS = ("hist_y_gap_mean", "hist_y_gap_std", "hist_y_overdue_ratio", "hist_y_gap_expected")


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


# The arrays of one lottery's saved state: name -> (dtype, trailing shape).
DOMAIN_ARRAYS: dict[str, tuple[str, tuple[int, ...]]] = {
    "gap_values": ("float64", ()),
    "gap_sums": ("int64", (3,)),
    "seen_values": ("float64", ()),
    "seen_draws": ("int64", ()),
    "run_values": ("float64", ()),
    "run_lengths": ("int64", ()),
    "recent_sizes": ("int64", ()),
    "recent_values": ("float64", ()),
    "recent_counts": ("int64", ()),
}
# Arrays that describe one mapping together, so hold one row each per entry.
_PAIRED = (
    ("gap_values", "gap_sums"),
    ("seen_values", "seen_draws"),
    ("run_values", "run_lengths"),
    ("recent_values", "recent_counts"),
)


def arrays_problem(arrays: Mapping[str, np.ndarray], freq_windows: tuple[int, ...], draws: int) -> str | None:
    """Why ``arrays`` (dtypes and shapes already those of :data:`DOMAIN_ARRAYS`) are not a state.

    None when the lengths agree: each pair one row per entry, the recent draws at most
    ``max(freq_windows)`` and ``draws``, their sizes non-negative and summing to the entries.
    """
    for left, right in _PAIRED:
        if len(arrays[left]) != len(arrays[right]):
            return f"{left} and {right} differ in length"
    sizes = arrays["recent_sizes"]
    if len(sizes) > min(max(freq_windows), draws) or (sizes < 0).any():
        return "recent_sizes does not describe the recent draws"
    if int(sizes.sum()) != len(arrays["recent_values"]):
        return "recent_sizes does not add up to recent_values"
    return None


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

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The state as the arrays of :data:`DOMAIN_ARRAYS` (the draw count is a scalar: ``draws``)."""
        recent = [list(counts.items()) for counts in self.recent]
        pairs = [pair for counts in recent for pair in counts]
        return {
            "gap_values": np.asarray(list(self.gaps), dtype=np.float64),
            "gap_sums": np.asarray(list(self.gaps.values()), dtype=np.int64).reshape(-1, 3),
            "seen_values": np.asarray(list(self.last_seen), dtype=np.float64),
            "seen_draws": np.asarray(list(self.last_seen.values()), dtype=np.int64),
            "run_values": np.asarray(list(self.run_length), dtype=np.float64),
            "run_lengths": np.asarray(list(self.run_length.values()), dtype=np.int64),
            "recent_sizes": np.asarray([len(counts) for counts in recent], dtype=np.int64),
            "recent_values": np.asarray([y for y, _ in pairs], dtype=np.float64),
            "recent_counts": np.asarray([count for _, count in pairs], dtype=np.int64),
        }

    @classmethod
    def from_arrays(
        cls, freq_windows: tuple[int, ...], loto: str, draws: int, arrays: dict[str, np.ndarray]
    ) -> LotteryDomain:
        """The domain :meth:`to_arrays` described (shapes and dtypes checked by the caller).

        The sums come back as Python integers, so the gap statistics stay exact.
        """
        domain = cls(freq_windows, loto)
        domain.draws = draws
        domain.gaps = {
            y: (count, total, squares)
            for y, (count, total, squares) in zip(
                arrays["gap_values"].tolist(), arrays["gap_sums"].tolist(), strict=True
            )
        }
        domain.last_seen = dict(
            zip(arrays["seen_values"].tolist(), arrays["seen_draws"].tolist(), strict=True)
        )
        domain.run_length = dict(
            zip(arrays["run_values"].tolist(), arrays["run_lengths"].tolist(), strict=True)
        )
        entries = zip(arrays["recent_values"].tolist(), arrays["recent_counts"].tolist(), strict=True)
        for size in arrays["recent_sizes"].tolist():
            domain.recent.append(Counter(dict(itertools.islice(entries, size))))
        return domain
