"""Database connection: ``DATABASE_URL`` when set, else an embedded PostgreSQL (pgserver).

The embedded server keeps its data under ``.local/pgdata`` and listens on a unix socket in
that folder only. It is started on first use and left running, so that dbt, the ingest
command and the Python jobs, which run as separate processes, share it; ``python -m
python_jobs db stop`` stops it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from python_jobs import config, settings
from python_jobs.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")

# Errors worth a retry: the server went away or is starting, or a serialization conflict.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)


class DatabaseError(RuntimeError):
    """A database problem with a message that says what to do."""


def _embedded_server():
    config.PGDATA_DIR.parent.mkdir(parents=True, exist_ok=True)
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
        return pgserver.get_server(config.PGDATA_DIR, cleanup_mode=None)


def database_url() -> str:
    """The URL every command uses: ``DATABASE_URL``, or the embedded server's (started if needed)."""
    url = settings.secret(settings.get().database.url)
    if url:
        return url
    return _embedded_server().get_uri()


def is_embedded() -> bool:
    return settings.get().database.url is None


def stop_embedded() -> bool:
    """Stop the embedded server if it runs. Returns whether one was stopped."""
    pid_file = config.PGDATA_DIR / "postmaster.pid"
    if not pid_file.exists():
        return False
    server = _embedded_server()
    server.cleanup_mode = "stop"
    server.cleanup()
    return True


def connection_params(url: str | None = None) -> dict[str, str]:
    """host, port, user, password and dbname of a URL (a unix socket directory is a host)."""
    params = conninfo_to_dict(url or database_url())
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
    return retry(
        lambda: psycopg.connect(target, autocommit=autocommit, application_name="loto_features"),
        attempts=attempts,
        what="connect",
    )


def retry(
    fn: Callable[[], T], *, attempts: int | None = None, base_delay: float | None = None, what: str = "db"
) -> T:
    """Call ``fn`` until it succeeds, retrying the errors in ``TRANSIENT_ERRORS``.

    ``attempts`` and ``base_delay`` default to the settings' ``errors.retry_attempts`` and
    ``errors.retry_delay_s``; the delay doubles after each failure.
    """
    attempts = attempts or settings.get().errors.retry_attempts
    base_delay = settings.get().errors.retry_delay_s if base_delay is None else base_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TRANSIENT_ERRORS as exc:
            if attempt == attempts:
                raise DatabaseError(
                    f"{what} failed after {attempts} attempts: {exc}. Check that the server at "
                    "DATABASE_URL is up (or unset DATABASE_URL to use the embedded one)."
                ) from exc
            delay = base_delay * 2 ** (attempt - 1)
            log.warning("db.retry", what=what, attempt=attempt, delay_s=delay, error=str(exc).strip())
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
    schema = schema or config.target_schema()
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("set search_path to {}, public").format(sql.Identifier(schema)))
    return schema


def qualified(table: str, schema: str | None = None) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema or config.target_schema()), sql.Identifier(table))


def table_exists(conn: psycopg.Connection, table: str, schema: str | None = None) -> bool:
    row = conn.execute(
        "select to_regclass(%s) is not null", (f'"{schema or config.target_schema()}"."{table}"',)
    ).fetchone()
    return bool(row and row[0])
