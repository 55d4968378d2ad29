"""catch22 family against pycatch22 on the real series, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pycatch22
import pytest

from python_jobs.features.catch22 import catch22, catch22_outputs
from python_jobs.tests.family_data import assert_stats_equal, real_series


@pytest.mark.parametrize("key", list(real_series()))
def test_equals_pycatch22(key):
    y = real_series()[key]
    reference = pycatch22.catch22_all(list(y))
    want = {
        f"stat_c22_{name.lower()}": value
        for name, value in zip(reference["names"], reference["values"], strict=True)
    }
    got = catch22(y)
    assert list(got) == catch22_outputs() == list(want)
    assert_stats_equal(got, want, rtol=1e-12)
    assert sum(math.isfinite(v) for v in got.values()) == 22


@pytest.mark.parametrize(
    "y",
    [np.array([]), np.arange(9.0), np.full(200, 7.0), np.r_[np.arange(50.0), np.nan]],
    ids=["empty", "shorter-than-10", "constant", "nan"],
)
def test_undefined_inputs_give_nan(y):
    got = catch22(y)
    assert list(got) == catch22_outputs()
    assert all(math.isnan(v) for v in got.values())
