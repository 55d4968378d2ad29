"""What a run computes: the families, their versions, and the (series, family) pairs to do.

Each family gets a version (:meth:`python_jobs.features.registry.Family.version_id`: its
resolved parameters, output names, explicit version number and library versions). One
aggregate query gives each series' row count, last date and checksum. A (series, family) is
computed when its bookkeeping row (``py_job_state``) is missing, failed, or has another version
or checksum; ``full_refresh`` computes everything. A re-run with nothing new reads no draws.
For per-draw families, when the old rows are an unchanged prefix of the series (a draw was
appended), only the new rows are written: values are point in time, so old rows stand.
Per-series families are computed per snapshot (:mod:`python_jobs.job.snapshots`): a series'
item lists the snapshots whose (snapshot, family) bookkeeping differs, and always its latest.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from python_jobs import definitions
from python_jobs.features import registry
from python_jobs.features.registry import Family
from python_jobs.job import catalog, reading, snapshots, tables
from python_jobs.job.errors import JobError
from python_jobs.job.reading import SeriesInfo, StateRow
from python_jobs.log import get_logger

log = get_logger(__name__)


def load_families(names: Sequence[str] | None = None) -> list[Family]:
    """The registered families (all kinds), optionally only ``names``.

    While some family modules of :data:`registry.FAMILY_MODULES` do not exist yet, the ones that
    import are used and each missing one is logged; an error in a module that exists is raised.
    """
    if names and _import_named(names):
        # Asked-for families found in modules of the same names: the other modules (some
        # take seconds to import) are not needed.
        return [fam for fam in _in_registry_order() if fam.name in names]
    try:
        found = registry.families()
    except ModuleNotFoundError:
        found = []
        for module in registry.FAMILY_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                log.warning("job.family_module_missing", module=module)
        found = _in_registry_order()
    if names:
        unknown = sorted(set(names) - {fam.name for fam in found})
        if unknown:
            raise JobError(f"unknown feature families {unknown}; known: {sorted(fam.name for fam in found)}")
        found = [fam for fam in found if fam.name in names]
    if not found:
        raise JobError(
            "no feature families are registered: the modules of "
            "python_jobs.features.registry.FAMILY_MODULES could not be imported"
        )
    return found


def _in_registry_order() -> list[Family]:
    """The families registered so far, in FAMILY_MODULES order (as registry.families gives them)."""
    rank = {module: pos for pos, module in enumerate(registry.FAMILY_MODULES)}
    return sorted(registry._FAMILIES.values(), key=lambda fam: rank.get(fam.fn.__module__, len(rank)))


def _import_named(names: Sequence[str]) -> bool:
    """Import the family modules named like ``names``; whether that registered all of them."""
    modules = {module.rsplit(".", 1)[-1]: module for module in registry.FAMILY_MODULES}
    if not all(name in modules for name in names):
        return False
    for name in names:
        importlib.import_module(modules[name])
    return all(name in registry._FAMILIES for name in names)


@dataclass
class Planned:
    info: SeriesInfo
    families: tuple[str, ...]
    cutoff: dt.datetime | None = None
    # The snapshots its stat families are computed on, in as_of order, the latest last.
    snapshots: tuple[snapshots.SnapshotInfo, ...] = ()


def plan(
    summary: list[SeriesInfo],
    state: dict[tuple[str, str, str], StateRow],
    fams: list[Family],
    versions: dict[str, str],
    full_refresh: bool,
) -> list[Planned]:
    planned = []
    for info in summary:
        dirty = []
        for fam in fams:
            row = state.get((info.loto, info.unique_id, fam.name))
            if (
                full_refresh
                or row is None
                or row.status != "ok"
                or row.feature_version != versions[fam.name]
                or row.checksum != info.checksum
            ):
                dirty.append(fam.name)
        if dirty:
            planned.append(Planned(info, tuple(dirty)))
    return planned


def append_candidates(
    planned: list[Planned],
    state: dict[tuple[str, str, str], StateRow],
    kinds: dict[str, str],
    versions: dict[str, str],
) -> list[tuple[Planned, dt.datetime, str]]:
    """Series whose per-draw families all last ran, at this version, on one shorter prefix."""
    out = []
    for item in planned:
        hist = [name for name in item.families if kinds[name] == "hist"]
        if not hist:
            continue
        rows = [state.get((item.info.loto, item.info.unique_id, name)) for name in hist]
        if any(
            row is None
            or row.status != "ok"
            or row.feature_version != versions[name]
            or row.max_ds is None
            or row.checksum is None
            or row.n_rows >= item.info.n_rows
            for name, row in zip(hist, rows, strict=True)
        ):
            continue
        marks = {(row.max_ds, row.checksum) for row in rows if row is not None}
        if len(marks) == 1:
            max_ds, checksum = marks.pop()
            out.append((item, max_ds, checksum))
    return out


def plan_snapshots(
    planned: list[Planned],
    summary: list[SeriesInfo],
    snaps: dict[tuple[str, str], list[snapshots.SnapshotInfo]],
    state: dict[tuple[str, str, dt.datetime, str], snapshots.SnapshotState],
    fams: list[Family],
    versions: dict[str, str],
    full_refresh: bool,
) -> list[Planned]:
    """``planned`` with each series' stat snapshots to compute, and the series that only need those.

    A (snapshot, family) is computed when its bookkeeping row is missing, failed, or has another
    version or checksum. A series computes its stat families that have such a snapshot, or that
    :func:`plan` found to do, on the union of those snapshots and its latest one (whose values
    are also its ``py_features_stat`` row).
    """
    stat_names = [fam.name for fam in fams if fam.kind == "stat"]
    order = [fam.name for fam in fams]
    by_key = {(item.info.loto, item.info.unique_id): item for item in planned}
    out = list(planned)
    for info in summary:
        key = (info.loto, info.unique_id)
        series_snaps = snaps.get(key, [])
        dirty_names: set[str] = set()
        dirty_as_of = set()
        for name in stat_names:
            for snap in series_snaps:
                row = state.get((*key, snap.as_of, name))
                if (
                    full_refresh
                    or row is None
                    or row.status != "ok"
                    or row.feature_version != versions[name]
                    or row.checksum != snap.checksum
                ):
                    dirty_names.add(name)
                    dirty_as_of.add(snap.as_of)
        item = by_key.get(key)
        needed = dirty_names | {name for name in (item.families if item else ()) if name in stat_names}
        if not needed or not series_snaps:
            continue
        if item is None:
            item = Planned(info, ())
            out.append(item)
        item.families = tuple(name for name in order if name in item.families or name in needed)
        item.snapshots = tuple(
            snap for snap in series_snaps if snap.as_of in dirty_as_of or snap is series_snaps[-1]
        )
    return out


def batches(planned: list[Planned], batch_size: int) -> Iterator[list[Planned]]:
    groups: dict[tuple[str, ...], list[Planned]] = {}
    for item in planned:
        groups.setdefault(item.families, []).append(item)
    for items in groups.values():
        for start in range(0, len(items), batch_size):
            yield items[start : start + batch_size]


def plan_run(
    conn: Any,
    fams: list[Family],
    versions: dict[str, str],
    kinds: dict[str, str],
    full_refresh: bool,
    period: str = "year",
) -> tuple[list[SeriesInfo], list[Planned]]:
    """What to compute: the changed (series, family) pairs and stat snapshots, and where
    appending is enough. ``period`` is the snapshot period (``year`` or ``month``)."""
    names = [fam.name for fam in fams]
    summary = reading.series_summary(conn)
    state = reading.load_state(conn, names)
    live = {(s.loto, s.unique_id) for s in summary}
    tables.delete_series(conn, sorted({(k[0], k[1]) for k in state} - live))
    planned = plan(summary, state, fams, versions, full_refresh)
    stat_names = [name for name in names if kinds[name] == "stat"]
    if stat_names:
        snaps = snapshots.snapshot_summary(conn, period)
        deleted = snapshots.delete_stale(conn, snaps)
        if deleted:
            log.info("job.snapshots_removed", snapshots=deleted)
        snap_state = snapshots.load_state(conn, stat_names)
        planned = plan_snapshots(planned, summary, snaps, snap_state, fams, versions, full_refresh)
    candidates = append_candidates(planned, state, kinds, versions)
    if candidates:
        sums = reading.prefix_checksums(
            conn, [(c[0].info.loto, c[0].info.unique_id, c[1]) for c in candidates]
        )
        for (item, max_ds, checksum), got in zip(candidates, sums, strict=True):
            if got == checksum:
                item.cutoff = max_ds
    return summary, planned


def select_families(
    families: Sequence[Family | str] | None,
    defs: definitions.FeatureDefinitions,
    *,
    use_catalog: bool = True,
) -> list[Family]:
    """The run's families bound to ``defs``: all registered ones, or those named or given.

    Registered families (all, or by name) come from the catalog where it has them, without
    importing their modules (see :mod:`python_jobs.job.catalog`); otherwise they are imported,
    and a full import refreshes the catalog.
    """
    if families is None or all(isinstance(f, str) for f in families):
        names = None if families is None else list(families)
        if use_catalog and (names is None or 0 < len(set(names)) == len(names)):
            found = catalog.load(defs, names)
            if found is not None:
                _check_unique(found)
                return found
        if names is None:
            bound = [fam.bind(defs) for fam in load_families()]
            catalog.save(defs, bound)
            return bound
    names = [f for f in families if isinstance(f, str)]
    objects = [f for f in families if not isinstance(f, str)]
    chosen = [fam.bind(defs) for fam in objects + (load_families(names) if names else [])]
    return _check_unique(chosen)


def _check_unique(chosen: list[Family]) -> list[Family]:
    seen: set[str] = set()
    for fam in chosen:
        if fam.name in seen:
            raise JobError(f"feature family {fam.name!r} given twice")
        seen.add(fam.name)
    if not chosen:
        raise JobError("no feature families to run")
    return chosen
