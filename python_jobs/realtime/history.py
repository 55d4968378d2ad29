"""Features that read a series' whole history: the left matrix profile and the isolation forest.

Both are columns of the Python feature job (``python_jobs/features/matrix_profile.py`` and
``anomaly.py``) with an incremental form, computed here one point at a time with the job's
definitions:

- ``hist_y_mp_left_m{m}``: the z-normalised distance from the newest length-``m`` subsequence
  to its nearest earlier one outside the exclusion zone, as ``stumpy.stumpi(..., egress=False)``
  extends its left profile. Each update compares the new subsequence with every earlier one:
  O(n m) per update, as in stumpi; it is the one online column whose cost grows with history.
- ``hist_y_iforest_score``: the model of the job's schedule (fitted on the delay-embedding
  vectors before each block boundary ``M, G M, G^2 M, ...``) scores the newest vector; a model
  is fitted when a boundary is reached, so scoring is O(trees x depth) per update and fits
  are O(log n) per series.

Saved state (:mod:`python_jobs.realtime.state`) is data only: the values, and the per-subsequence
mean, std and constant flag the profile reuses. The forest is not saved: it is a function of the
values (the same fit schedule and seed), so it is refitted from them on restore.
"""

from __future__ import annotations

import math

import numpy as np

from python_jobs.features import anomaly
from python_jobs.features.matrix_profile import P_NORM_THRESHOLD, exclusion_zone


def iforest_settings() -> dict[str, int]:
    """The isolation forest's parameters: the ``anomaly`` family's declared ones (read here only)."""
    from python_jobs.features import registry

    params = registry.family("anomaly").resolved()
    return {
        "embed": params["embed"],
        "min_train": params["min_train"],
        "growth": max(2, params["refit_growth"]),
        "n_estimators": params["n_estimators"],
        "random_state": params["random_state"],
    }


def subsequence_count(n: int, m: int) -> int:
    """Length-``m`` windows among ``n`` values whose statistics the profile keeps (none if m < 3)."""
    return max(0, n - m + 1) if m >= 3 else 0


class SeriesHistory:
    """The whole history of one series and the state of its history-wide features.

    Parameters
    ----------
    m : int
        Subsequence length of the matrix profile (dbt var ``mp_window``).
    """

    def __init__(self, m: int) -> None:
        self.m = m
        self.excl = exclusion_zone(m)
        self.iforest = iforest_settings()
        self.values = np.empty(64)
        self.n = 0
        # Per subsequence (start j): mean, population std, and whether it is constant.
        self.means = np.empty(64)
        self.stds = np.empty(64)
        self.constant = np.empty(64, dtype=bool)
        self.model: anomaly.ForestScorer | None = None
        self.next_fit = self.iforest["min_train"]

    @property
    def subsequences(self) -> int:
        """Subsequences whose mean, std and constant flag are held (those of every full window)."""
        return subsequence_count(self.n, self.m)

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``values``, ``means``, ``stds``, ``constant``: the filled part of each buffer (copies)."""
        held = self.subsequences
        return (
            self.values[: self.n].copy(),
            self.means[:held].copy(),
            self.stds[:held].copy(),
            self.constant[:held].copy(),
        )

    @classmethod
    def from_arrays(
        cls, m: int, values: np.ndarray, means: np.ndarray, stds: np.ndarray, constant: np.ndarray
    ) -> SeriesHistory:
        """The history :meth:`to_arrays` described, the forest refitted as the last boundary did.

        The arrays' lengths must be ``n`` and ``subsequence_count(n, m)`` (checked by the caller).
        """
        history = cls(m)
        n = len(values)
        while len(history.values) < n:
            history._grow()
        history.n = n
        history.values[:n] = values
        held = len(means)
        history.means[:held], history.stds[:held], history.constant[:held] = means, stds, constant
        history._restore_forest()
        return history

    def _restore_forest(self) -> None:
        # The fits happen when the newest vector's start j reaches M, G M, G^2 M, ...; j has
        # passed through every integer up to n - embed, so the last fit is the largest
        # boundary <= j, refitted here on the same values and seed (hence the same trees).
        settings = self.iforest
        newest = self.n - settings["embed"]
        fits = anomaly.block_starts(newest + 1, settings["min_train"], settings["growth"])
        if fits:
            self._fit(fits[-1])
            self.next_fit = fits[-1] * settings["growth"]

    def _grow(self) -> None:
        for name in ("values", "means", "stds", "constant"):
            old = getattr(self, name)
            new = np.empty(2 * len(old), dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def update(self, y: float) -> tuple[float, float]:
        """Append ``y``; return ``(mp_left, iforest_score)`` of the new row (NaN where undefined)."""
        if self.n == len(self.values):
            self._grow()
        self.values[self.n] = y
        self.n += 1
        return self._mp_left(), self._iforest_score()

    def replace_last(self, y: float) -> tuple[float, float]:
        """Replace the newest value by ``y``; return the row's ``(mp_left, iforest_score)`` again.

        Exact, as if the old value had never been seen: no earlier subsequence holds the
        newest value, and a forest fitted at the newest row was fitted on the values before it.
        """
        if self.n == 0:
            raise ValueError("no value to replace")
        self.values[self.n - 1] = y
        return self._mp_left(), self._iforest_score()

    def _mp_left(self) -> float:
        m, n = self.m, self.n
        if n < m or m < 3:
            return math.nan
        j = n - m
        query = self.values[j:n]
        mean = query.sum() / m
        std = math.sqrt(((query - mean) ** 2).sum() / m)
        self.means[j], self.stds[j] = mean, std
        self.constant[j] = query.min() == query.max()
        last = j - self.excl - 1
        if last < 0:
            return math.nan
        windows = np.lib.stride_tricks.sliding_window_view(self.values[: last + m], m)
        cov = ((windows - self.means[: last + 1, None]) @ (query - mean)) / m
        constant = self.constant[: last + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.minimum(1.0, cov / (self.stds[: last + 1] * std))
        # stumpy's conventions: constant vs constant is a perfect match, constant vs not 0.5.
        rho = np.where(constant, 1.0, 0.5) if self.constant[j] else np.where(constant, 0.5, rho)
        squared = abs(2 * m * (1.0 - rho.max()))
        return 0.0 if squared < P_NORM_THRESHOLD else math.sqrt(squared)

    def _iforest_score(self) -> float:
        dims = self.iforest["embed"]
        j = self.n - dims
        if j < self.iforest["min_train"]:
            return math.nan
        if j == self.next_fit:
            self._fit(j)
            self.next_fit = j * self.iforest["growth"]
        vector = self.values[j : self.n]
        if self.model is None or not np.isfinite(vector).all():
            return math.nan
        return self.model.score(vector)

    def _fit(self, start: int) -> None:
        vectors = anomaly.delay_embedding(
            self.values[: start + self.iforest["embed"] - 1], self.iforest["embed"]
        )
        train = vectors[np.isfinite(vectors).all(axis=1)]
        if len(train) < 2:
            self.model = None
            return
        forest, plan = anomaly.fit_forest(train, self.iforest["n_estimators"], self.iforest["random_state"])
        self.model = anomaly.ForestScorer(forest, plan)
