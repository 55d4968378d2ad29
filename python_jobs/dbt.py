"""Running dbt as a subprocess against the same database as everything else."""

from __future__ import annotations

import os
import string
import subprocess
import sys
from pathlib import Path

from python_jobs import config, db, definitions
from python_jobs.identifiers import validate_schema
from python_jobs.log import get_logger

log = get_logger(__name__)


class DbtError(RuntimeError):
    pass


def _template_value(value: str) -> str:
    """A value for a Jinja single-quoted string inside a YAML double-quoted scalar."""
    jinja = value.replace("\\", "\\\\").replace("'", "\\'")
    return jinja.replace("\\", "\\\\").replace('"', '\\"')


def render_profile(url: str | None = None, *, path: Path | None = None) -> Path:
    """Write ``profiles.yml`` from ``profiles.yml.template`` and the database URL.

    The password is not written: the profile reads ``LOTO_PGPASSWORD`` when dbt runs
    (:func:`dbt_env` sets it). The file is still created readable by its owner only.
    """
    validate_schema(config.target_schema())  # the profile reads DBT_SCHEMA when dbt runs
    template = (config.REPO_ROOT / "profiles.yml.template").read_text(encoding="utf-8")
    params = db.connection_params(url)
    target = path or config.REPO_ROOT / "profiles.yml"
    rendered = string.Template(template).substitute(
        {key: _template_value(value) for key, value in params.items() if key != "password"}
    )
    if not target.exists() or target.read_text(encoding="utf-8") != rendered:
        # Written beside and renamed over: a dbt process starting meanwhile (another command,
        # a parallel test) reads the old file or the new one, never a truncated one.
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(rendered)
        os.replace(temporary, target)
    target.chmod(0o600)
    return target


def dbt_env(url: str | None = None) -> dict[str, str]:
    """Environment for a dbt process: the connection parameters and the target schema."""
    params = db.connection_params(url)
    env = dict(os.environ)
    env.update(
        {
            "LOTO_PGHOST": params["host"],
            "LOTO_PGPORT": params["port"],
            "LOTO_PGUSER": params["user"],
            "LOTO_PGPASSWORD": params["password"],
            "LOTO_PGDATABASE": params["dbname"],
            "DBT_SCHEMA": validate_schema(config.target_schema()),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            # A test runs only when all its parents are built: the pipeline builds staging
            # before the Python job and the marts after it, and a parity test that reads both
            # belongs to the second step.
            "DBT_INDIRECT_SELECTION": os.environ.get("DBT_INDIRECT_SELECTION", "buildable"),
            "DO_NOT_TRACK": "1",
            "DBT_PROFILES_DIR": str(config.REPO_ROOT),
            "DBT_PROJECT_DIR": str(config.REPO_ROOT),
        }
    )
    return env


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run(args: list[str], *, url: str | None = None, quiet: bool = False, check: bool = True) -> int:
    """Run ``dbt ARGS`` from the repo root. Returns the exit code; raises on failure if ``check``."""
    render_profile(url)
    cmd = [dbt_executable(), *args]
    # The overrides of this run ($LOTO_DBT_VARS), so dbt and the Python job see the same vars.
    overrides = definitions.vars_json()
    if overrides != "{}" and "--vars" not in args:
        cmd += ["--vars", overrides]
        if args[:1] == ["build"] and definitions.differ_from_project():
            # Other definitions than the project's: the unit tests pin their own vars, but their
            # empty inputs take the columns of the built tables, which follow this run's vars.
            cmd += ["--exclude-resource-type", "unit_test"]
    if quiet:
        cmd.insert(1, "--quiet")
    log.info("dbt.run", args=" ".join(args), schema=config.target_schema())
    proc = subprocess.run(cmd, cwd=config.REPO_ROOT, env=dbt_env(url), check=False)
    if check and proc.returncode != 0:
        raise DbtError(
            f"`dbt {' '.join(args)}` failed (exit {proc.returncode}); its output above names the node"
        )
    return proc.returncode
