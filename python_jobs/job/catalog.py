"""What the job knows about the families before importing them: a catalog on disk.

Importing every family module costs seconds (scikit-learn, statsmodels, tsfresh, stumpy,
antropy), and a run with nothing new to compute needs none of that: planning reads only each
family's name, kind, output columns, minimum length, cost and version. The first run that
imports the families writes those into ``.local/family_catalog.json``; later runs plan from
the catalog and import a family's module only when some series needs it computed.

An entry is used only when it still describes what an import would register: it is keyed by
a hash of the source of every module under ``python_jobs/features/`` and of the feature
definitions in force (``dbt_project.yml`` vars and ``--vars``), and it records the installed
versions of the libraries each family names, which are compared again when it is read. A
family already imported in this process (a changed parameter under ``registry.override``,
say) is always taken from the registry, never from the catalog.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from python_jobs import config, definitions
from python_jobs.features import registry
from python_jobs.features.registry import Family
from python_jobs.log import get_logger

log = get_logger(__name__)

CATALOG_FORMAT = 1
# Entries kept per file: one per combination of family sources and definitions recently used.
MAX_ENTRIES = 8
FEATURES_DIR = Path(registry.__file__).resolve().parent


def catalog_path() -> Path:
    return config.LOCAL_DIR / "family_catalog.json"


def catalog_key(defs: definitions.FeatureDefinitions) -> str:
    """A hash of the family modules' source and of the definitions ``defs``."""
    digest = hashlib.sha256(f"format {CATALOG_FORMAT}".encode())
    for path in sorted(FEATURES_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    fields = {f.name: getattr(defs, f.name) for f in dataclasses.fields(defs)}
    digest.update(json.dumps(fields, sort_keys=True, default=repr).encode())
    return digest.hexdigest()


class _DeferredFunction:
    """A family's CPU function, imported from its module at the first call."""

    def __init__(self, module: str, name: str):
        self.__module__ = module
        self.__qualname__ = name
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return registered(self.__module__, self._name).fn(*args, **kwargs)


def registered(module: str, name: str) -> Family:
    """The registered family ``name``, importing its module ``module`` (only) if needed."""
    if name not in registry._FAMILIES:
        importlib.import_module(module)
    return registry.family(name)


@dataclasses.dataclass(frozen=True)
class CatalogFamily(Family):
    """A family as the catalog describes it: enough to plan, not to compute.

    ``fn`` is a stand-in. :func:`materialize` swaps the family for the registered one in this
    process; a Dask worker handed the stand-in itself imports and binds the registered one
    (:meth:`runnable`), so the process that plans need not import any family.
    """

    catalog_outputs: tuple[str, ...] = ()
    catalog_min_rows: int = 1
    catalog_version: str = ""
    catalog_defs: definitions.FeatureDefinitions | None = None

    def runnable(self) -> Family:
        """The registered family, imported and bound to the catalog's definitions (once per
        process).

        Raises
        ------
        StaleCatalog
            The registered family is not the one the catalog describes.
        """
        key = (self.name, self.catalog_version)
        real = _RUNNABLE.get(key)
        if real is None:
            real = registered(self.fn.__module__, self.name).bind(self.catalog_defs)
            if (real.version_id(), real.output_names(), real.kind) != (
                self.catalog_version,
                list(self.catalog_outputs),
                self.kind,
            ):
                raise StaleCatalog(self.name)
            _RUNNABLE[key] = real
        return real

    def bind(self, defs: definitions.FeatureDefinitions | None = None) -> Family:
        return self

    def output_names(self, defs: definitions.FeatureDefinitions | None = None) -> list[str]:
        return list(self.catalog_outputs)

    def min_rows(self, defs: definitions.FeatureDefinitions | None = None) -> int:
        return self.catalog_min_rows

    def version_id(self, defs: definitions.FeatureDefinitions | None = None) -> str:
        return self.catalog_version


# (name, catalog version) -> the registered family bound to the catalog's definitions.
_RUNNABLE: dict[tuple[str, str], Family] = {}


def _entry(fam: Family) -> dict[str, Any]:
    return {
        "name": fam.name,
        "kind": fam.kind,
        "module": fam.fn.__module__,
        "cost": fam.cost,
        "gpu": fam.gpu,
        "reference": fam.reference,
        "libraries": {lib: registry.library_version(lib) for lib in fam.libraries},
        "outputs": fam.output_names(),
        "min_rows": fam.min_rows(),
        "version": fam.version_id(),
    }


def _read() -> dict[str, Any]:
    try:
        data = json.loads(catalog_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == CATALOG_FORMAT else {}


def save(defs: definitions.FeatureDefinitions, bound: Sequence[Family]) -> None:
    """Record the families ``bound`` to ``defs``; a failure to write is only logged.

    Nothing is recorded while a parameter is changed with ``registry.override``: the catalog
    describes the registrations as imported, which another process would get.
    """
    if registry.overridden():
        return
    data = _read()
    entries = data.get("entries", {})
    entries.pop(key := catalog_key(defs), None)
    # What a fresh process registers: the families of the family modules (not, say, one a
    # test registered from its own module).
    entries[key] = [_entry(fam) for fam in bound if fam.fn.__module__ in registry.FAMILY_MODULES]
    # Dicts keep insertion order: the oldest entries go first.
    entries = dict(list(entries.items())[-MAX_ENTRIES:])
    path = catalog_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed: a concurrent reader sees the old file or the new one.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump({"format": CATALOG_FORMAT, "entries": entries}, tmp)
        os.replace(tmp.name, path)
    except OSError as exc:
        log.info("job.catalog_not_written", path=str(path), error=str(exc))


def _usable(entry: dict[str, Any]) -> bool:
    if entry["name"] in registry._FAMILIES:
        return False  # imported here already: the registry is the truth
    return all(registry.library_version(lib) == ver for lib, ver in entry["libraries"].items())


def load(defs: definitions.FeatureDefinitions, names: Sequence[str] | None = None) -> list[Family] | None:
    """The families (``names``, default all) from the catalog, or ``None`` where it cannot say.

    Families already imported in this process come from the registry, bound to ``defs``.
    """
    entries = _read().get("entries", {}).get(catalog_key(defs))
    if not entries:
        return None
    by_name = {entry["name"]: entry for entry in entries}
    wanted = list(names) if names else list(by_name)
    if any(name not in by_name for name in wanted):
        return None
    out: list[Family] = []
    for name in [entry["name"] for entry in entries if entry["name"] in wanted]:
        entry = by_name[name]
        if not _usable(entry):
            if name not in registry._FAMILIES:
                return None  # an installed library changed: import everything again
            out.append(registry._FAMILIES[name].bind(defs))
            continue
        out.append(
            CatalogFamily(
                name=name,
                kind=entry["kind"],
                fn=_DeferredFunction(entry["module"], name),
                cost=entry["cost"],
                gpu=entry["gpu"],
                reference=entry["reference"],
                libraries=tuple(entry["libraries"]),
                catalog_outputs=tuple(entry["outputs"]),
                catalog_min_rows=int(entry["min_rows"]),
                catalog_version=entry["version"],
                catalog_defs=defs,
            )
        )
    return out


def materialize(fams: Sequence[Family], needed: set[str]) -> list[Family]:
    """``fams`` with each catalog family in ``needed`` replaced by the registered one, bound to
    the definitions the catalog was read with.

    Raises
    ------
    StaleCatalog
        When a registered family differs from what the catalog said (its module changed in a
        way the key did not see): the run must plan again from the registry.
    """
    return [fam.runnable() if isinstance(fam, CatalogFamily) and fam.name in needed else fam for fam in fams]


def runnable_everywhere(fams: Sequence[Family]) -> None:
    """On a Dask worker: import and bind each of ``fams`` now (this module, and with it the
    registry, which defers libraries the families never call, is loaded before); raises
    :class:`StaleCatalog` as :meth:`runnable` does."""
    for fam in fams:
        fam.runnable()


class StaleCatalog(Exception):
    """The catalog's description of a family no longer matches its registration."""

    def __init__(self, family: str):
        super().__init__(f"the family catalog is out of date for {family!r}")
        self.family = family
