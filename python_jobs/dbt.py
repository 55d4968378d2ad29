"""Running dbt against the same database as everything else.

dbt runs inside this process (dbt's ``dbtRunner``): a dbt process would spend seconds starting
Python and importing dbt before its first query, for every command of the pipeline and every
test that builds a schema. Its output, exit codes and files are those of the ``dbt`` command.
dbt runs one command at a time in a process; a command asked for while another is running here
(another thread) runs as a ``dbt`` subprocess instead, as does every command where dbt is not
importable beside this package or where ``LOTO_DBT_SUBPROCESS=1`` asks for it.
"""

from __future__ import annotations

import contextlib
import os
import string
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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


# Settings of dbt's sessions (libpq's PGOPTIONS), each unless the user's PGOPTIONS sets it:
#   jit: PostgreSQL compiles a query's expressions with LLVM when its plan costs more than
#     jit_above_cost, which every model over a large table does. The models are one pass over
#     their rows with hundreds of expressions: compiling them costs more than it saves (the
#     SELECT of features_hist on 1,000 x 1,000 rows, alternated: 20.5 and 20.8 s with JIT, 19.5
#     and 18.6 s without).
#   work_mem: the grain and freshness tests group or join a million keys; with the server's
#     default 4 MB their hash tables spill to disk (a grain test on 1,000 x 1,000 rows: 1.38 s,
#     0.85 s with 64 MB; on a slower machine 1.76 s with 64 MB, 1.06 s with 128 MB, 1.00 s
#     with 192 MB). Per hash or sort of a session, a few at a time per dbt thread; a hash may
#     take twice as much (hash_mem_multiplier).
SESSION_OPTIONS = {"jit": "off", "work_mem": "128MB"}


def _session_options(options: str) -> str:
    """libpq's ``PGOPTIONS`` for dbt's sessions: ``options`` plus each of SESSION_OPTIONS that
    they do not set already."""
    given = options.replace(" ", "")
    added = [f"-c {name}={value}" for name, value in SESSION_OPTIONS.items() if f"{name}=" not in given]
    return " ".join([options.strip(), *added]).strip()


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
            "PGOPTIONS": _session_options(os.environ.get("PGOPTIONS", "")),
            "DBT_PROFILES_DIR": str(config.REPO_ROOT),
            "DBT_PROJECT_DIR": str(config.REPO_ROOT),
        }
    )
    return env


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


# dbt-core keeps its flags, adapters and loggers in globals: one command at a time per process.
_IN_PROCESS = threading.Lock()
# dbt's exit codes (dbt.utils.ExitCodes): a node failed, or dbt itself stopped.
_MODEL_ERROR = 1
_UNHANDLED_ERROR = 2


@contextlib.contextmanager
def _process_state(env: Mapping[str, str], cwd: Path) -> Iterator[None]:
    """The environment and working directory a ``dbt`` process would be started with, restored
    afterwards (dbt reads its flags and ``env_var()`` from ``os.environ``)."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env)
    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _frame_module_source() -> str:
    """The module that created a behavior flag: the first frame outside ``behavior_flags``.

    What dbt-common's ``BehaviorFlagRendered._default_source`` returns, read from the frames'
    ``__name__`` instead of ``inspect.stack()``, which loads the source lines of every frame of
    the stack: 0.1-0.15 s per flag under a test's or a pipeline's stack, eight flags per dbt
    command (1.1 s of a 3.6 s incremental run of the marts).
    """
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != "dbt_common.behavior_flags":
            return name
        frame = frame.f_back
    return "Unknown"


_DBT_COMMON_DEFAULT_SOURCE: list[object] = []  # dbt-common's own, kept where it is replaced


def _quick_behavior_flags() -> None:
    with contextlib.suppress(ImportError, AttributeError):
        from dbt_common.behavior_flags import BehaviorFlagRendered

        if BehaviorFlagRendered._default_source is not _frame_module_source:
            if not _DBT_COMMON_DEFAULT_SOURCE:
                _DBT_COMMON_DEFAULT_SOURCE.append(BehaviorFlagRendered.__dict__["_default_source"])
            BehaviorFlagRendered._default_source = staticmethod(_frame_module_source)


def _run_in_process(args: list[str], env: Mapping[str, str]) -> int | None:
    """``dbt ARGS`` by dbt's ``dbtRunner``, with the exit code the ``dbt`` command would have;
    None where it cannot run here (dbt not importable, or a dbt command running already)."""
    try:
        from dbt.cli.exceptions import DbtUsageException
        from dbt.cli.main import dbtRunner
    except ImportError:
        return None
    if not _IN_PROCESS.acquire(blocking=False):
        return None
    _quick_behavior_flags()
    try:
        with _process_state(env, config.REPO_ROOT):
            result = dbtRunner(manifest=_shared_manifest(args, dbtRunner)).invoke(list(args))
    finally:
        _IN_PROCESS.release()
    if isinstance(result.exception, (KeyboardInterrupt, SystemExit)):
        raise result.exception
    if isinstance(result.exception, DbtUsageException):
        # What the command prints for a bad option before exiting with 2.
        print(f"Error: {result.exception}", file=sys.stderr)
    if result.success:
        return 0
    return _MODEL_ERROR if result.exception is None else _UNHANDLED_ERROR


# Inside shared_parse(): the manifests parsed there, by the vars they were parsed with.
_SHARED_PARSE: dict[str, Any] | None = None


@contextlib.contextmanager
def shared_parse() -> Iterator[None]:
    """The in-process dbt commands run inside the block parse the project once.

    The first command parses it (``dbt parse``, with the command's vars), and every command is
    handed that manifest (``dbtRunner(manifest=...)``) instead of parsing and writing it again:
    ``build`` saves one parse and one manifest write (1.5 s) for its second dbt command. For a
    block in which nothing changes the project's files, as ``build``'s stages do not.
    """
    global _SHARED_PARSE
    _SHARED_PARSE = {}
    try:
        yield
    finally:
        _SHARED_PARSE = None


def _shared_manifest(args: list[str], runner: Any) -> Any:
    """The block's manifest for a command with ``args`` (parsed now if it is the first), or None
    outside a block or where the parse fails (the command then parses, and reports, itself)."""
    if _SHARED_PARSE is None:
        return None
    vars_given = args[args.index("--vars") : args.index("--vars") + 2] if "--vars" in args else []
    key = " ".join(vars_given)
    if key not in _SHARED_PARSE:
        quiet = ["--quiet"] if "--quiet" in args else []
        parsed = runner().invoke([*quiet, "parse", *vars_given])
        if not parsed.success:
            return None
        _SHARED_PARSE[key] = parsed.result
    return _SHARED_PARSE[key]


def _run_subprocess(args: list[str], env: Mapping[str, str]) -> int:
    proc = subprocess.run([dbt_executable(), *args], cwd=config.REPO_ROOT, env=dict(env), check=False)
    return proc.returncode


def run(args: list[str], *, url: str | None = None, quiet: bool = False, check: bool = True) -> int:
    """Run ``dbt ARGS`` from the repo root. Returns the exit code; raises on failure if ``check``."""
    render_profile(url)
    cmd = list(args)
    # The overrides of this run ($LOTO_DBT_VARS), so dbt and the Python job see the same vars.
    overrides = definitions.vars_json()
    if overrides != "{}" and "--vars" not in args:
        cmd += ["--vars", overrides]
        if args[:1] == ["build"] and definitions.differ_from_project():
            # Other definitions than the project's: the unit tests pin their own vars, but their
            # empty inputs take the columns of the built tables, which follow this run's vars.
            cmd += ["--exclude-resource-type", "unit_test"]
    if quiet:
        cmd.insert(0, "--quiet")
    log.info("dbt.run", args=" ".join(args), schema=config.target_schema())
    env = dbt_env(url)
    code = None if env.get("LOTO_DBT_SUBPROCESS") == "1" else _run_in_process(cmd, env)
    if code is None:
        code = _run_subprocess(cmd, env)
    if check and code != 0:
        raise DbtError(f"`dbt {' '.join(args)}` failed (exit {code}); its output above names the node")
    return code
