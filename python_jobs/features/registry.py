"""An explicit registry of the Python feature families.

A family is registered with :func:`register` (a decorator on its CPU function). The
registration is the family's identity: its kind, cost, output names, declared parameters, the
libraries it calls and an explicit version number. The job runner, the generated dbt column
macros (``python -m python_jobs generate-macros``), the table DDL and the docs all read this one
list instead of scanning module dictionaries.

Kinds:

``stat``
    One row per series. The CPU function maps a 1-D float array (the series' ``y`` in ``ds``
    order) to ``{output_name: float}``.
``hist``
    One value per row, point in time. The CPU function maps the same array to
    ``{output_name: 1-D array of len(y)}``; the value at index ``i`` may use ``y[:i + 1]`` only.

Parameters. ``params`` maps each parameter name to its value; the family function is called as
``fn(y, **params)``. A value may be :func:`definition` ``("windows")``: a feature definition
of ``dbt_project.yml`` (see :mod:`python_jobs.definitions`), resolved when the job runs, so
``--vars`` reaches the family as it reaches dbt. Tests change parameters with
:func:`override`, never by patching module globals.

Output names are templates over the parameters: ``"hist_y_roll_median_w{windows}"`` gives one
name per window, ``"stat_mp_m{mp_window}_min"`` one name, ``"stat_acf_lag{1..acf_nlags}"`` one
per ``k`` in ``1 .. acf_nlags``; a name without braces is itself. Where several placeholders
appear, the first one is the outer loop. ``outputs`` may instead be a function of the family's
own parameters returning such templates (for name lists built from a settings mapping).

Version (:meth:`Family.version_id`): a hash of what determines the values: the resolved
parameters, the output names, the minimum length, the explicit ``version`` (bump it when the
arithmetic changes) and the installed versions of the ``libraries`` the family calls. The
module's source text is not part of it, so reformatting a module never forces a recompute.

A family may also name a GPU implementation (``gpu="python_jobs.gpu.spectral:spectral_batch"``),
a dotted path imported only when CuPy and a device are present. It is called as
``gpu_fn(ys, **params)`` with a list of arrays and returns a list of the CPU function's results,
for a whole batch in few kernel launches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import itertools
import json
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from python_jobs import definitions

Kind = Literal["stat", "hist"]
Cost = Literal["low", "medium", "high"]

# {name} or {1..name}: a parameter (looped over when it is a sequence) or a range up to it.
PLACEHOLDER = re.compile(r"\{(?:(\d+)\.\.)?([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Definition:
    """A parameter whose value is the feature definition ``name`` (a dbt var)."""

    name: str


def definition(name: str) -> Definition:
    """Declare a parameter as the dbt var ``name`` (``windows``, ``mp_window``, ``season_length``...)."""
    known = {f.name for f in dataclasses.fields(definitions.FeatureDefinitions)} | set(
        definitions.DERIVED_JINJA
    )
    if name not in known:
        raise ValueError(f"{name!r} is not a feature definition of dbt_project.yml")
    return Definition(name)


Outputs = Sequence[str] | Callable[[Mapping[str, Any]], Sequence[str]]


@dataclass(frozen=True)
class Family:
    """One registered feature family (see the module docstring).

    Attributes
    ----------
    name, kind, fn
        Registered name, ``stat`` or ``hist``, and the CPU function ``fn(y, **params)``.
    outputs
        Output name templates, or a function of the family's own parameters returning them.
    params
        Declared parameters; :class:`Definition` values are resolved at run time.
    version
        Bumped by the author whenever the arithmetic changes.
    libraries
        Distribution names of the libraries the family calls (their versions enter the hash).
    min_length
        Shortest series with values (shorter ones get NULLs); an int or a function of the
        resolved parameters.
    """

    name: str
    kind: Kind
    fn: Callable
    outputs: Outputs = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    libraries: tuple[str, ...] = ()
    cost: Cost = "medium"
    gpu: str | None = None
    reference: str = ""
    min_length: int | Callable[[Mapping[str, Any]], int] = 1

    def resolved(self, defs: definitions.FeatureDefinitions | None = None) -> dict[str, Any]:
        """The parameters with every definition replaced by its value (``defs`` or the project's)."""
        if any(isinstance(value, Definition) for value in self.params.values()):
            defs = defs or definitions.load()
        return {
            key: getattr(defs, value.name) if isinstance(value, Definition) else value
            for key, value in self.params.items()
        }

    def bind(self, defs: definitions.FeatureDefinitions | None = None) -> Family:
        """This family with its parameters resolved: what a worker runs, needing no definitions."""
        return dataclasses.replace(self, params=self.resolved(defs))

    def templates(self) -> list[str]:
        """The output name templates (placeholders not expanded)."""
        if callable(self.outputs):
            return list(self.outputs(self.params))
        return list(self.outputs)

    def output_names(self, defs: definitions.FeatureDefinitions | None = None) -> list[str]:
        """The output column names, placeholders expanded with the resolved parameters."""
        params = self.resolved(defs)
        return [name for template in self.templates() for name in expand(template, params)]

    def min_rows(self, defs: definitions.FeatureDefinitions | None = None) -> int:
        """The minimum series length, with the resolved parameters."""
        return self.min_length(self.resolved(defs)) if callable(self.min_length) else self.min_length

    def compute(self, y: Any, params: Mapping[str, Any] | None = None) -> Any:
        """``fn(y, **params)``; default the resolved declared parameters."""
        return self.fn(y, **(self.resolved() if params is None else params))

    def runnable(self) -> Family:
        """The family that computes: itself (a stand-in that only describes one, such as the
        job's catalog entries, returns the registered family it stands for)."""
        return self

    def gpu_fn(self) -> Callable | None:
        if self.gpu is None:
            return None
        module, _, attr = self.gpu.partition(":")
        return getattr(importlib.import_module(module), attr)

    def version_id(self, defs: definitions.FeatureDefinitions | None = None) -> str:
        """A hash of what determines the family's values (see the module docstring)."""
        params = self.resolved(defs)
        payload = {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "params": _canonical(params),
            "outputs": self.output_names(defs),
            "min_length": self.min_rows(defs),
            "libraries": {lib: library_version(lib) for lib in sorted(self.libraries)},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    """``value`` as JSON-able data with a stable order (dict keys sorted by json.dumps)."""
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, range)):
        return [_canonical(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def library_version(name: str) -> str:
    """The installed version of distribution ``name``; ``missing`` where it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def slot_values(start: str | None, value: Any) -> list[Any]:
    """The values one placeholder takes: a range ``start .. value``, the items of a sequence, or ``value``."""
    if start:
        return list(range(int(start), int(value) + 1))
    if isinstance(value, (list, tuple, range)):
        return list(value)
    return [value]


def expand(template: str, params: Mapping[str, Any]) -> list[str]:
    """The names of one template with ``params`` (resolved) substituted; see the module docstring."""
    slots = PLACEHOLDER.findall(template)
    missing = [name for _, name in slots if name not in params]
    if missing:
        raise KeyError(f"output template {template!r} names undeclared parameter(s) {missing}")
    pieces = PLACEHOLDER.split(template)
    # split() yields text, start, name, text, start, name, ..., text.
    texts = pieces[::3]
    names = []
    for combo in itertools.product(*(slot_values(start, params[name]) for start, name in slots)):
        out = texts[0]
        for value, text in zip(combo, texts[1:], strict=True):
            out += f"{value}{text}"
        names.append(out)
    return names


# Libraries a family module imports only indirectly, that no family calls on the job's path
# and that take seconds to load: stumpy, imported by tsfresh's feature calculators, parses
# its own source files at import (4 s). They are loaded at their first use instead.
DEFERRED_LIBRARIES = ("stumpy",)


class _Deferred(types.ModuleType):
    """Stands in for a library in ``sys.modules`` until one of its attributes is used.

    ``importlib.util.LazyLoader`` does not do here: on Python 3.11 a second ``import name``
    reads the module's ``__spec__`` and so loads it at once.
    """

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        return getattr(real, attr)


def _defer_import(name: str) -> None:
    """Put a stand-in for ``name`` into ``sys.modules`` that loads it at its first use."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = _Deferred(name)
    stand_in.__spec__ = None  # an import of `name` then returns the stand-in as it is
    sys.modules[name] = stand_in


# Here, because every path to a family module (the job, planning, a Dask worker unpickling a
# task of python_jobs.job.compute) imports this module first.
for _name in DEFERRED_LIBRARIES:
    _defer_import(_name)

_FAMILIES: dict[str, Family] = {}
# Families whose parameters an `override` block changes right now.
_OVERRIDDEN: set[str] = set()

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
    outputs: Outputs,
    params: Mapping[str, Any] | None = None,
    version: int = 1,
    libraries: Sequence[str] = (),
    cost: Cost = "medium",
    gpu: str | None = None,
    reference: str = "",
    min_length: int | Callable[[Mapping[str, Any]], int] = 1,
) -> Callable[[Callable], Callable]:
    """Register the decorated function as feature family ``name`` (see the module docstring)."""

    def decorate(fn: Callable) -> Callable:
        if name in _FAMILIES and _FAMILIES[name].fn is not fn:
            raise ValueError(f"feature family {name!r} is registered twice")
        fam = Family(
            name=name,
            kind=kind,
            fn=fn,
            outputs=outputs if callable(outputs) else tuple(outputs),
            params=dict(params or {}),
            version=version,
            libraries=tuple(libraries),
            cost=cost,
            gpu=gpu,
            reference=reference,
            min_length=min_length,
        )
        # Fail at import, not half-way through a job, when a template names no parameter.
        for template in fam.templates():
            unknown = [slot for _, slot in PLACEHOLDER.findall(template) if slot not in fam.params]
            if unknown:
                raise ValueError(f"family {name!r}: output {template!r} names undeclared {unknown}")
        _FAMILIES[name] = fam
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


def family(name: str) -> Family:
    """The registered family ``name`` (importing its module if needed)."""
    if name not in _FAMILIES:
        families()
    if name not in _FAMILIES:
        raise KeyError(f"unknown feature family {name!r}; known: {sorted(_FAMILIES)}")
    return _FAMILIES[name]


def param(family_name: str, key: str, given: Any = None) -> Any:
    """``given``, or where it is ``None`` the resolved declared parameter ``key`` of the family.

    Lets a family's public function be called without arguments (``anomaly(y)``) while its
    parameters stay declared in one place, the registration.
    """
    if given is not None:
        return given
    return family(family_name).resolved()[key]


@contextlib.contextmanager
def override(family_name: str, **params: Any) -> Iterator[Family]:
    """Change declared parameters of a registered family for the duration of a ``with`` block.

    The family's version changes with them, so a job run inside the block recomputes it.
    """
    original = family(family_name)
    unknown = set(params) - set(original.params)
    if unknown:
        raise KeyError(f"family {family_name!r} declares no parameter(s) {sorted(unknown)}")
    changed = dataclasses.replace(original, params={**original.params, **params})
    _FAMILIES[family_name] = changed
    _OVERRIDDEN.add(family_name)
    try:
        yield changed
    finally:
        _FAMILIES[family_name] = original
        _OVERRIDDEN.discard(family_name)


def overridden() -> bool:
    """Whether some family's parameters are changed by an :func:`override` block right now."""
    return bool(_OVERRIDDEN)


def output_columns(kind: Kind, defs: definitions.FeatureDefinitions | None = None) -> list[str]:
    """Every output column of the families of one kind, in registry order."""
    return [col for fam in families(kind) for col in fam.output_names(defs)]
