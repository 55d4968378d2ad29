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
result = run_job(
    url=sys.argv[2], families=json.loads(sys.argv[3]), device="cpu", scheduler="sync",
    progress=False, quiet=True,
)
heavy = set(json.loads(sys.argv[4]))
from python_jobs.features.registry import _Deferred
modules = [
    name for name, module in list(sys.modules.items())
    if (name.startswith("python_jobs.features.") or name.split(".")[0] in heavy)
    and not isinstance(module, _Deferred)  # a stand-in is not loaded
]
print(json.dumps({"computed": result.computed_per_family, "modules": sorted(modules)}))
"""


@pytest.fixture
def catalog_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(config, "LOCAL_DIR", tmp_path)
    return tmp_path


def _run_in_fresh_interpreter(local_dir: Path, url: str, families: list[str] | None) -> dict:
    env = {**os.environ, "DBT_SCHEMA": config.target_schema()}
    done = subprocess.run(
        [sys.executable, "-c", RUN_JOB, str(local_dir), url, json.dumps(families), json.dumps(HEAVY)],
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
    swapped = catalog.materialize(listed, {"rolling"}, defs)
    assert [type(fam) is catalog.CatalogFamily for fam in swapped] == [
        fam.name != "rolling" for fam in listed
    ]
    bogus = [dataclasses.replace(fam, catalog_version="0" * 16) for fam in listed]
    with pytest.raises(catalog.StaleCatalog, match="rolling"):
        catalog.materialize(bogus, {"rolling"}, defs)


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


def test_a_run_imports_only_the_families_with_work(
    pg_url: str, loaded_schema: str, fresh_schema: Callable[[str], str], catalog_dir: Path
) -> None:
    schema = fresh_schema("catalog")
    copy_staging(pg_url, loaded_schema, schema)
    defs = definitions.load()
    catalog.save(defs, select_families(None, defs, use_catalog=False))
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
