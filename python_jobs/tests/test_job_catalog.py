"""The family catalog: a run plans without importing the family modules, and imports only
the families that have work, with the same versions and columns as the registry gives."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from psycopg import sql

from python_jobs import config, db, definitions
from python_jobs.features import registry
from python_jobs.job import catalog
from python_jobs.job.planning import select_families
from python_jobs.tests.test_job import copy_staging

# Libraries that only family modules import; a run with nothing to do must not load them.
HEAVY = ("sklearn", "statsmodels", "tsfresh", "stumpy", "antropy", "pycatch22", "tsfeatures")

# Runs the job in a fresh interpreter with the catalog in argv[1], then reports what was imported.
RUN_JOB = """
import json, sys
from pathlib import Path
from python_jobs import config
config.LOCAL_DIR = Path(sys.argv[1])
from python_jobs.job import run_job
options = json.loads(sys.argv[5])
result = run_job(
    url=sys.argv[2], families=json.loads(sys.argv[3]), device="cpu", progress=False, quiet=True,
    **options,
)
heavy = set(json.loads(sys.argv[4]))
from python_jobs.features.registry import _Deferred
modules = [
    name for name, module in list(sys.modules.items())
    if (name.startswith("python_jobs.features.") or name.split(".")[0] in heavy)
    and not isinstance(module, _Deferred)  # a stand-in is not loaded
]
print(json.dumps({"computed": result.computed_per_family, "modules": sorted(modules),
                  "scheduler": result.scheduler}))
"""


@pytest.fixture
def catalog_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(config, "LOCAL_DIR", tmp_path)
    return tmp_path


def _run_in_fresh_interpreter(
    local_dir: Path, url: str, families: list[str] | None, **options: object
) -> dict:
    """The job in a new interpreter (``options``: more of run_job's arguments; by default in
    this process); what it computed and which family modules and heavy libraries it loaded."""
    env = {**os.environ, "DBT_SCHEMA": config.target_schema()}
    options = {"scheduler": "sync", **options}
    argv = [str(local_dir), url, json.dumps(families), json.dumps(HEAVY), json.dumps(options)]
    done = subprocess.run(
        [sys.executable, "-c", RUN_JOB, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_catalog_gives_what_the_registry_gives(catalog_dir: Path) -> None:
    defs = definitions.load()
    real = select_families(None, defs, use_catalog=False)
    catalog.save(defs, real)
    for names in (None, ["rolling", "anomaly"]):
        listed = catalog.load(defs, names)
        assert listed is not None
        expected = [fam for fam in real if names is None or fam.name in names]
        assert [fam.name for fam in listed] == [fam.name for fam in expected]
        for fam, ref in zip(listed, expected, strict=True):
            # In this process the modules are imported: the registry's families come back.
            assert fam.version_id() == ref.version_id()
            assert fam.output_names() == ref.output_names()


def test_catalog_entries_stand_in_until_their_module_is_needed(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = definitions.load()
    real = {fam.name: fam for fam in select_families(None, defs, use_catalog=False)}
    catalog.save(defs, list(real.values()))
    # As a fresh process sees it: nothing registered yet.
    monkeypatch.setattr(registry, "_FAMILIES", {})
    monkeypatch.setattr(catalog, "_usable", lambda entry: True)
    listed = catalog.load(defs)
    assert listed is not None and all(isinstance(fam, catalog.CatalogFamily) for fam in listed)
    for fam in listed:
        ref = real[fam.name]
        assert (fam.kind, fam.cost, fam.min_rows(), fam.gpu) == (ref.kind, ref.cost, ref.min_rows(), ref.gpu)
        assert (fam.version_id(), fam.output_names()) == (ref.version_id(), ref.output_names())
    # Re-registering happens on import; the modules are cached, so register them again here.
    monkeypatch.setattr(registry, "_FAMILIES", dict(real.items()))
    swapped = catalog.materialize(listed, {"rolling"})
    assert [type(fam) is catalog.CatalogFamily for fam in swapped] == [
        fam.name != "rolling" for fam in listed
    ]
    bogus = [dataclasses.replace(fam, catalog_version="0" * 16) for fam in listed]
    with pytest.raises(catalog.StaleCatalog, match="rolling"):
        catalog.materialize(bogus, {"rolling"})


def test_the_catalog_is_keyed_by_definitions_and_library_versions(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = definitions.load()
    catalog.save(defs, select_families(None, defs, use_catalog=False))
    assert catalog.load(definitions.load({"windows": [3, 7]})) is None
    assert catalog.load(defs, ["no_such_family"]) is None
    monkeypatch.setattr(registry, "_FAMILIES", {})
    assert catalog.load(defs) is not None
    monkeypatch.setattr(registry, "library_version", lambda name: "0.0.1")
    assert catalog.load(defs) is None  # a library changed: import everything again


def test_nothing_is_recorded_under_an_override(catalog_dir: Path) -> None:
    defs = definitions.load()
    with registry.override("anomaly", n_estimators=8):
        select_families(None, defs, use_catalog=False)
        catalog.save(defs, select_families(None, defs, use_catalog=False))
    assert not catalog.catalog_path().exists()


def _family_modules(report: dict) -> set[str]:
    return {m for m in report["modules"] if m in registry.FAMILY_MODULES}


def _staged_with_catalog(pg_url: str, loaded_schema: str, schema: str) -> str:
    """``schema`` holding the loaded staging table, and a catalog of every family; its name."""
    copy_staging(pg_url, loaded_schema, schema)
    defs = definitions.load()
    catalog.save(defs, select_families(None, defs, use_catalog=False))
    return schema


def test_a_run_imports_only_the_families_with_work(
    pg_url: str, loaded_schema: str, fresh_schema: Callable[[str], str], catalog_dir: Path
) -> None:
    schema = _staged_with_catalog(pg_url, loaded_schema, fresh_schema("catalog"))
    names = ["rolling", "spectral"]

    first = _run_in_fresh_interpreter(catalog_dir, pg_url, names)
    assert first["computed"] == {"rolling": 15, "spectral": 15}
    assert _family_modules(first) == {"python_jobs.features.rolling", "python_jobs.features.spectral"}

    idle = _run_in_fresh_interpreter(catalog_dir, pg_url, names)
    assert idle["computed"] == {"rolling": 0, "spectral": 0}
    assert _family_modules(idle) == set()

    with db.connect(pg_url, autocommit=True) as conn:
        staging = db.qualified(config.STAGING_MODEL, schema)
        conn.execute(
            sql.SQL(
                "update {} as s set y = y + 1 where loto = 'loto6' and unique_id = 'N1' "
                "and ds = (select max(ds) from {} where loto = 'loto6' and unique_id = 'N1')"
            ).format(staging, staging)
        )
    one = _run_in_fresh_interpreter(catalog_dir, pg_url, names)
    assert one["computed"] == {"rolling": 1, "spectral": 1}
    assert _family_modules(one) == {"python_jobs.features.rolling", "python_jobs.features.spectral"}
    for report in (first, idle, one):
        assert not [m for m in report["modules"] if m.split(".")[0] in HEAVY], report["modules"]


def _hist_rows(url: str, schema: str) -> list[tuple]:
    """The job's per-draw rows, without the time each was written."""
    with db.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("select * from {} order by loto, unique_id, ds").format(
                db.qualified("py_features_hist", schema)
            )
        )
        names = [column.name for column in rows.description]
        kept = [i for i, name in enumerate(names) if not name.endswith("_at")]
        assert len(kept) == len(names) - 1, names
        return [tuple(row[i] for i in kept) for row in rows.fetchall()]


def test_on_a_dask_cluster_only_the_workers_import_the_families(
    pg_url: str, loaded_schema: str, fresh_schema: Callable[[str], str], catalog_dir: Path
) -> None:
    schema = _staged_with_catalog(pg_url, loaded_schema, fresh_schema("catalog_dask"))
    names = ["rolling", "spectral"]

    on_cluster = _run_in_fresh_interpreter(catalog_dir, pg_url, names, scheduler="local", n_workers=1)
    assert on_cluster["scheduler"] == "local"
    assert on_cluster["computed"] == {"rolling": 15, "spectral": 15}
    # The planning process loaded no family module and no library only families use.
    assert _family_modules(on_cluster) == set()
    assert not [m for m in on_cluster["modules"] if m.split(".")[0] in HEAVY], on_cluster["modules"]
    from_workers = _hist_rows(pg_url, schema)

    here = _run_in_fresh_interpreter(catalog_dir, pg_url, names, full_refresh=True)
    assert here["computed"] == {"rolling": 15, "spectral": 15}
    assert _family_modules(here) == {"python_jobs.features.rolling", "python_jobs.features.spectral"}
    assert len(from_workers) > 0 and _hist_rows(pg_url, schema) == from_workers


def test_workers_that_find_the_catalog_stale_leave_the_import_to_this_process(
    catalog_dir: Path,
) -> None:
    distributed = pytest.importorskip("distributed")
    from python_jobs.job.executors import DaskExecutor

    defs = definitions.load()
    catalog.save(defs, select_families(None, defs, use_catalog=False))
    listed = catalog.load(defs, ["rolling"])
    if listed is None or not isinstance(listed[0], catalog.CatalogFamily):
        # Imported here already: make the stand-in the catalog would give a fresh process.
        real = registry.family("rolling").bind(defs)
        listed = [
            catalog.CatalogFamily(
                name="rolling",
                kind=real.kind,
                fn=catalog._DeferredFunction(real.fn.__module__, "rolling"),
                catalog_outputs=tuple(real.output_names()),
                catalog_min_rows=real.min_rows(),
                catalog_version=real.version_id(),
                catalog_defs=defs,
            )
        ]
    stale = [dataclasses.replace(listed[0], catalog_version="0" * 16)]
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ) as client:
        executor = DaskExecutor(client, "test", owned=[])
        assert executor.import_families(listed) is True
        assert executor.import_families(stale) is False
        # A family this process has imported travels as itself: nothing for the workers to check.
        assert executor.import_families([registry.family("rolling").bind(defs)]) is False
    assert listed[0].runnable().version_id() == listed[0].catalog_version
