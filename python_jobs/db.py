"""Database connection: ``DATABASE_URL`` when set, else an embedded PostgreSQL (pgserver).

The embedded server keeps its data under ``.local/pgdata`` and listens on a unix socket in
that folder only. It is started on first use and left running, so that dbt, the ingest
command and the Python jobs, which run as separate processes, share it; ``python -m
python_jobs db stop`` stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from python_jobs import config, settings
from python_jobs.identifiers import validate_schema
from python_jobs.log import get_logger
from python_jobs.redact import mask_url, redact

log = get_logger(__name__)
T = TypeVar("T")

# Errors worth a retry: the server went away or is starting, or a serialization conflict.
# Other OperationalErrors ("index row too big", out of disk, a refused password) fail the
# same way every time: they are reported at once, not retried as if the server were down.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)
# SQLSTATE classes and codes of the transient ones: connection exceptions, shutdowns,
# too many connections, serialization failures and deadlocks.
TRANSIENT_SQLSTATE_CLASSES = ("08",)
TRANSIENT_SQLSTATES = {"57P01", "57P02", "57P03", "53300", "40001", "40P01"}
PERMANENT_CONNECT_ERRORS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "invalid ",
)
WHAT_TO_DO = (
    "Check that the server at DATABASE_URL is up and reachable (or unset DATABASE_URL to use "
    "the embedded one: `make db-start`)."
)


class DatabaseError(RuntimeError):
    """A database problem with a message that says what to do."""


@contextmanager
def _first_start_lock() -> Iterator[None]:
    """One process at a time creates, initialises or starts the embedded server.

    pgserver locks only part of its start: two commands started together on a new checkout
    (two test workers, or a user's two shells) raced on creating the data folder, on adding its
    system user (as root) and on ``initdb``, and one of them failed. An exclusive ``flock`` on a
    file beside the data folder makes the others wait; the kernel releases it if the holder dies.
    """
    import fcntl

    config.PGDATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(config.PGDATA_DIR.parent / "pgdata.start.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _embedded_server():
    # pgserver warns at import when XDG_RUNTIME_DIR is unset (it falls back to /tmp): harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - the lock file installs it
            raise DatabaseError(
                "DATABASE_URL is not set and the embedded server (pgserver) is not installed: "
                "run `make install`, or set DATABASE_URL=postgresql://user@host/db"
            ) from exc
        with _first_start_lock():
            return pgserver.get_server(config.PGDATA_DIR, cleanup_mode=None)


def database_url() -> str:
    """The URL every command uses: ``DATABASE_URL``, or the embedded server's (started if needed).

    It may hold a password: show it only through :func:`python_jobs.redact.mask_url`.
    """
    url = settings.secret(settings.get().database.url)
    if url:
        return url
    try:
        return _embedded_server().get_uri()
    except DatabaseError:
        raise
    except Exception as exc:  # pgserver raises bare exceptions (assertions, subprocess errors)
        raise DatabaseError(
            f"the embedded PostgreSQL under {config.PGDATA_DIR} did not start ({redact(exc)}). "
            "Run `loto-features db stop` and try again, or set DATABASE_URL."
        ) from None


def is_embedded() -> bool:
    return settings.get().database.url is None


def _postmaster_pid() -> int | None:
    """The embedded server's process id, when its pid file names a live process."""
    pid_file = config.PGDATA_DIR / "postmaster.pid"
    try:
        pid = int(pid_file.read_text(encoding="utf-8").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _pg_ctl() -> str:
    """The pg_ctl of the pgserver wheel."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "pg_ctl")


def stop_embedded(timeout_s: float = 30.0) -> bool:
    """Stop the embedded server. Returns False if none was running.

    pgserver's own cleanup stops the server only from the last process that started a handle
    on it, and silently does nothing after such a process was killed; this asks pg_ctl
    directly, then signals the postmaster, and checks the process is gone.

    Raises
    ------
    DatabaseError
        The server is still running after ``timeout_s`` seconds.
    """
    pid = _postmaster_pid()
    if pid is None:
        return False
    with contextlib.suppress(OSError, subprocess.SubprocessError, KeyError, ImportError):
        subprocess.run(
            [_pg_ctl(), "stop", "-D", str(config.PGDATA_DIR), "-m", "fast", "-w", "-t", str(int(timeout_s))],
            capture_output=True,
            timeout=timeout_s + 5,
            check=False,
            # pgserver runs the server as user "pgserver" when started by root; so must pg_ctl.
            user="pgserver" if os.geteuid() == 0 else None,
        )
    deadline = time.monotonic() + timeout_s
    signalled = False
    while _postmaster_pid() is not None:
        if not signalled:
            # A fast shutdown by signal: what pg_ctl -m fast sends, for when pg_ctl could not run.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)
            signalled = True
        if time.monotonic() > deadline:
            raise DatabaseError(
                f"the embedded PostgreSQL (pid {pid}, data {config.PGDATA_DIR}) is still running "
                f"after {timeout_s:.0f} s; stop it with `kill {pid}`"
            )
        time.sleep(0.2)
    return True


def connection_params(url: str | None = None) -> dict[str, str]:
    """host, port, user, password and dbname of a URL (a unix socket directory is a host)."""
    target = url or database_url()
    try:
        params = conninfo_to_dict(target)
    except psycopg.ProgrammingError as exc:
        raise DatabaseError(
            f"DATABASE_URL={mask_url(target)} is not a valid connection URL ({redact(exc)}); "
            "expected postgresql://user:password@host:port/dbname (percent-encode special "
            "characters in the password)"
        ) from None
    return {
        "host": str(params.get("host") or "localhost"),
        "port": str(params.get("port") or "5432"),
        "user": str(params.get("user") or os.environ.get("USER", "postgres")),
        "password": str(params.get("password") or ""),
        "dbname": str(params.get("dbname") or params.get("user") or "postgres"),
    }


def connect(
    url: str | None = None, *, autocommit: bool = False, attempts: int | None = None
) -> psycopg.Connection:
    """Open a connection, retrying transient failures (``errors.retry_attempts`` by default)."""
    target = url or database_url()
    connection_params(target)  # a malformed URL: one clear message, no retries
    return retry(
        lambda: psycopg.connect(target, autocommit=autocommit, application_name="loto_features"),
        attempts=attempts,
        what="connect",
    )


def is_transient(exc: BaseException) -> bool:
    """Whether retrying can help: the server went away or is busy, not a failing statement."""
    if not isinstance(exc, TRANSIENT_ERRORS):
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is None:
        # No answer from the server: the connection failed or dropped, unless the login was
        # refused or the URL itself is wrong (those fail the same way on every attempt).
        text = str(exc).lower()
        return not any(marker in text for marker in PERMANENT_CONNECT_ERRORS)
    return sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES or sqlstate in TRANSIENT_SQLSTATES


def retry(
    fn: Callable[[], T], *, attempts: int | None = None, base_delay: float | None = None, what: str = "db"
) -> T:
    """Call ``fn`` until it succeeds, retrying the transient errors (:func:`is_transient`).

    ``attempts`` and ``base_delay`` default to the settings' ``errors.retry_attempts`` and
    ``errors.retry_delay_s``; the delay doubles after each failure.
    """
    attempts = attempts or settings.get().errors.retry_attempts
    base_delay = settings.get().errors.retry_delay_s if base_delay is None else base_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except psycopg.Error as exc:
            message = redact(str(exc).strip())
            if not is_transient(exc):
                hint = (
                    " Check DATABASE_URL (user, password, host, port, database name)."
                    if what == "connect"
                    else ""
                )
                raise DatabaseError(f"{what} failed: {message}.{hint}") from None
            if attempt == attempts:
                raise DatabaseError(
                    f"{what} failed after {attempts} attempts: {message}. {WHAT_TO_DO}"
                ) from None
            delay = base_delay * 2 ** (attempt - 1)
            log.warning("db.retry", what=what, attempt=attempt, delay_s=delay, error=message)
            time.sleep(delay)
    raise AssertionError("unreachable")


@contextmanager
def transaction(url: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection inside one transaction, with ``search_path`` set to the target schema."""
    with connect(url) as conn:
        ensure_schema(conn)
        with conn.transaction():
            yield conn


def ensure_schema(conn: psycopg.Connection, schema: str | None = None) -> str:
    schema = validate_schema(schema or config.target_schema())
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("set search_path to {}, public").format(sql.Identifier(schema)))
    return schema


def qualified(table: str, schema: str | None = None) -> sql.Composed:
    return sql.SQL("{}.{}").format(
        sql.Identifier(validate_schema(schema or config.target_schema())), sql.Identifier(table)
    )


def table_exists(conn: psycopg.Connection, table: str, schema: str | None = None) -> bool:
    name = sql.SQL("{}.{}").format(
        sql.Identifier(validate_schema(schema or config.target_schema())), sql.Identifier(table)
    )
    row = conn.execute("select to_regclass(%s) is not null", (name.as_string(conn),)).fetchone()
    return bool(row and row[0])
