"""The centred power sums of the rolling skewness and kurtosis, in bigint and in numeric.

features_hist computes n^(p-1) sum((y - mean)^p) of a whole-number window from its power sums,
in bigint where every product fits and in numeric otherwise (macros/features/
window_centered_power_sum.sql). Both give the exact value where their inputs are exact: here
they run in PostgreSQL on window sums of real lottery numbers, of large and huge values, and of
windows whose sum is 0 while the higher sums are huge, against the exact integer computed in
Python.
"""

from __future__ import annotations

from fractions import Fraction

import jinja2
import numpy as np
import pytest

from python_jobs import config, db
from python_jobs.tests.realtime_reference import bundled_draws

MACRO_FILE = config.REPO_ROOT / "macros" / "features" / "window_centered_power_sum.sql"
SUM_COLUMNS = {1: "y_sum_w{n}", 2: "y_sq_sum_w{n}", 3: "y_pow3_sum_w{n}", 4: "y_pow4_sum_w{n}"}


def _macros():
    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    return env.from_string(MACRO_FILE.read_text(encoding="utf-8")).module


def _exact(window: list[int], p: int) -> int:
    n = len(window)
    mean = Fraction(sum(window), n)
    value = n ** (p - 1) * sum((Fraction(y) - mean) ** p for y in window)
    assert value.denominator == 1
    return int(value)


def _windows(n: int) -> list[list[int]]:
    """Windows of n whole numbers: lottery draws, large values, and a zero sum with huge powers."""
    draws = bundled_draws()
    y = draws[draws.loto == "bingo5"].sort_values(["unique_id", "ds"]).y.astype(int).tolist()
    rng = np.random.default_rng(n)
    big = [int(v) for v in rng.integers(-(10**5), 10**5, n)]
    huge = [int(v) for v in rng.integers(-(10**7), 10**7, n)]
    zero_sum = [30_000 * (1 if i % 2 == 0 else -1) for i in range(n - n % 2)] + [0] * (n % 2)
    near_limit = [int(v) for v in rng.integers(0, 4_000 // n + 2, n)]
    # Prices in pips: 90 of them sum their fourth powers past 10^15, still exact in double.
    pips = [int(v) for v in rng.integers(1_800, 2_100, n)]
    windows = [y[i : i + n] for i in range(0, 5 * n, n)] + [big, huge, zero_sum, near_limit, pips]
    assert all(len(window) == n for window in windows)
    return windows


@pytest.mark.parametrize("n", [3, 4, 7, 30, 90])
@pytest.mark.parametrize("p", [3, 4])
def test_bigint_and_numeric_paths_give_the_exact_centred_sum(pg_url, n, p):
    if p > n:
        pytest.skip("no kurtosis column below 4 rows")
    macros = _macros()
    whole = str(macros.window_centered_power_sum_whole("w", n, p))
    numeric = str(macros.window_centered_power_sum("w", n, p))
    columns = [SUM_COLUMNS[k].format(n=n) for k in range(1, p + 1)]
    windows = _windows(n)
    rows = [[float(sum(y**k for y in window)) for k in range(1, p + 1)] for window in windows]
    rows.append([None] * p)  # a window not yet full: NULL sums, NULL result
    values = ", ".join("(" + ", ".join(["%s::float8"] * p) + ")" for _ in rows)
    query = (
        f"select {whole}, ({numeric})::double precision, "
        f"coalesce({whole.split('when coalesce(')[1].split(', true)')[0]}, true) "
        f"from (values {values}) as w ({', '.join(columns)})"
    )
    with db.connect(pg_url) as conn:
        got = conn.execute(query, [v for row in rows for v in row]).fetchall()
    assert got[-1][:2] == (None, None)
    took_bigint = [row[2] for row in got[:-1]]
    assert any(took_bigint) and not all(took_bigint), "both paths are exercised"
    past_15_digits = 0
    for window, row, (fast, slow, bigint) in zip(windows, rows[:-1], got[:-1], strict=True):
        exact = float(_exact(window, p))
        if all(abs(v) < 2**53 for v in row):
            # The sums are exact in double precision, and the whole-number path reads them
            # through bigint in both of its branches: exact.
            assert fast == exact, (window[:5], fast, exact, bigint)
            past_15_digits += not bigint and any(abs(v) >= 10**15 for v in row)
        else:
            assert not bigint, window[:5]
        if all(abs(v) < 10**15 for v in row):
            # float8 -> numeric keeps 15 significant digits: the plain numeric macro (for the
            # exact numeric sums of decimals) is exact on these double sums below 10^15 only.
            assert slow == exact, window[:5]
    if n == 90:
        assert past_15_digits, "a window whose numeric branch reads a sum past 10^15"
