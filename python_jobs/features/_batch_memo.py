"""Intermediate results that the families of one batch share.

Two families may need the same costly intermediate of a series: the ``matrix_profile`` (stat)
and ``matrix_profile_left`` (hist) families both come from one self-join. The job computes a
batch family by family (:func:`python_jobs.job.compute.compute_family`), and opens
:func:`batch_scope` around each with the batch's :class:`BatchMemo`; a family asks
:func:`current` for it and computes only what no family of the batch has computed yet.

Only values computed from one of the batch's whole series are kept: a stat family also sees
each series cut at its earlier snapshots, and those prefixes are never shared (the hist
families see whole series only), so keeping them would hold a batch's worth of profiles per
snapshot for nothing. Outside a scope (a family called on its own) nothing is kept.

Entries are keyed by what they are computed from: a tag naming the value and its parameters
(and the array module that computed it, so a CPU fallback never reads a GPU result), and a
digest of the series' values, so a hit is the same arithmetic on the same numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Hashable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np


def digest(y: np.ndarray) -> tuple[int, bytes]:
    """The length and a 128-bit hash of the float64 values of ``y``."""
    values = np.ascontiguousarray(y, dtype=np.float64)
    return len(values), hashlib.blake2b(values, digest_size=16).digest()


class BatchMemo:
    """Values computed from the whole series of one batch, for its other families to reuse."""

    def __init__(self, series: Iterable[np.ndarray]):
        self._whole = {digest(y) for y in series}
        self._values: dict[tuple[Hashable, tuple[int, bytes]], Any] = {}

    def __len__(self) -> int:
        return len(self._values)

    def get(self, tag: Hashable, y: np.ndarray) -> Any | None:
        """The value stored for ``(tag, y)``, or ``None``."""
        return self._values.get((tag, digest(y)))

    def put(self, tag: Hashable, y: np.ndarray, value: Any) -> None:
        """Keep ``value`` for ``(tag, y)`` where ``y`` is one of the batch's whole series."""
        key = digest(y)
        if key in self._whole:
            self._values[(tag, key)] = value


_current: ContextVar[BatchMemo | None] = ContextVar("loto_features_batch_memo", default=None)


@contextlib.contextmanager
def batch_scope(memo: BatchMemo | None) -> Iterator[None]:
    """Make ``memo`` the one :func:`current` returns inside the ``with`` block."""
    token = _current.set(memo)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> BatchMemo | None:
    """The memo of the batch being computed, or ``None`` outside :func:`batch_scope`."""
    return _current.get()
