"""An explicit registry of the Python feature families.

A family is registered with :func:`register` (a decorator on its CPU function) and records
its kind, cost and output names, so the job runner, the dbt column macros and the docs all
read one list instead of scanning module dictionaries.

Kinds:

``stat``
    One row per series. The CPU function maps a 1-D float array (the series' ``y`` in ``ds``
    order) to ``{output_name: float}``.
``hist``
    One value per row, point in time. The CPU function maps the same array to
    ``{output_name: 1-D array of len(y)}``; the value at index ``i`` may use ``y[:i + 1]`` only.

A family may also name a GPU implementation (``gpu="python_jobs.gpu.spectral:spectral_batch"``),
a dotted path imported only when CuPy and a device are present. It takes a list of arrays
and returns a list of the CPU function's results, for a whole batch in few kernel launches.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["stat", "hist"]


@dataclass(frozen=True)
class Family:
    name: str
    kind: Kind
    fn: Callable
    outputs: Callable[[], list[str]]
    cost: Literal["low", "medium", "high"] = "medium"
    gpu: str | None = None
    reference: str = ""
    min_length: int = 1
    extra: dict = field(default_factory=dict)

    def gpu_fn(self) -> Callable | None:
        if self.gpu is None:
            return None
        module, _, attr = self.gpu.partition(":")
        return getattr(importlib.import_module(module), attr)


_FAMILIES: dict[str, Family] = {}

# The family modules, in the order the job runs them. Adding a family means adding it here.
FAMILY_MODULES = (
    "python_jobs.features.rolling",
    "python_jobs.features.catch22",
    "python_jobs.features.entropy",
    "python_jobs.features.spectral",
    "python_jobs.features.matrix_profile",
    "python_jobs.features.autocorrelation",
    "python_jobs.features.stl",
    "python_jobs.features.tsfresh_subset",
    "python_jobs.features.anomaly",
)


def register(
    name: str,
    *,
    kind: Kind,
    outputs: Callable[[], list[str]],
    cost: Literal["low", "medium", "high"] = "medium",
    gpu: str | None = None,
    reference: str = "",
    min_length: int = 1,
) -> Callable[[Callable], Callable]:
    def decorate(fn: Callable) -> Callable:
        if name in _FAMILIES and _FAMILIES[name].fn is not fn:
            raise ValueError(f"feature family {name!r} is registered twice")
        _FAMILIES[name] = Family(
            name=name,
            kind=kind,
            fn=fn,
            outputs=outputs,
            cost=cost,
            gpu=gpu,
            reference=reference,
            min_length=min_length,
        )
        return fn

    return decorate


def families(kind: Kind | None = None, names: list[str] | None = None) -> list[Family]:
    """The registered families (importing every family module), optionally filtered.

    In :data:`FAMILY_MODULES` order, then registration order within a module, whatever order
    the modules happened to be imported in (output column order depends on it).
    """
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    rank = {module: pos for pos, module in enumerate(FAMILY_MODULES)}
    ordered = sorted(_FAMILIES.values(), key=lambda fam: rank.get(fam.fn.__module__, len(rank)))
    selected = [fam for fam in ordered if kind is None or fam.kind == kind]
    if names:
        unknown = set(names) - {fam.name for fam in selected}
        if unknown:
            raise KeyError(f"unknown feature families {sorted(unknown)}; known: {sorted(_FAMILIES)}")
        selected = [fam for fam in selected if fam.name in names]
    return selected


def output_columns(kind: Kind) -> list[str]:
    """Every output column of the families of one kind, in registry order."""
    return [col for fam in families(kind) for col in fam.outputs()]
