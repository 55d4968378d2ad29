"""The training-set bench's check that the pandas peer built the same frame as the project."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.training_set import _same_values


def _frame(category: list, value: list) -> pd.DataFrame:
    return pd.DataFrame({"stat_unique_id_category": category, "hist_y_lag1": value})


def test_a_missing_text_is_the_same_whichever_missing_value_holds_it():
    # The project's frame and the peer's read NULL text back as different missing values.
    ours = _frame(pd.array(["main", None, "main"], dtype="string"), [1.0, np.nan, 2.0])
    theirs = _frame(pd.Series(["main", np.nan, "main"], dtype=object), [1.0, None, 2.0])
    assert _same_values(ours, theirs)


def test_a_text_or_number_that_differs_or_is_missing_on_one_side_only_is_not_the_same():
    ours = _frame(["main", None, "main"], [1.0, np.nan, 2.0])
    assert not _same_values(ours, _frame(["main", None, "bonus"], [1.0, np.nan, 2.0]))
    assert not _same_values(ours, _frame(["main", "main", "main"], [1.0, np.nan, 2.0]))
    assert not _same_values(ours, _frame(["main", None, "main"], [1.0, 0.0, 2.0]))
