"""Connections of the feature job: reopened after a transient error, with the work retried.

Transient errors (connection lost, serialization failure, deadlock) are retried through
:func:`python_jobs.db.retry`, each attempt on a fresh connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import psycopg

from python_jobs import db

T = TypeVar("T")


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    conn = db.connect(url, autocommit=autocommit)
    # Dates as ISO text, whatever the server's default DateStyle (psycopg parses ISO dates).
    conn.execute("set datestyle to 'ISO, YMD'")
    if not autocommit:
        conn.commit()
    return conn


class Session:
    """A connection that is reopened after a transient error, with the work retried on it.

    ``on_connect`` runs on every new connection (e.g. to take the job's lock again: a lock
    held by a dead session is gone with it).
    """

    def __init__(
        self,
        url: str,
        *,
        autocommit: bool = False,
        on_connect: Callable[[psycopg.Connection], None] | None = None,
    ):
        self.url = url
        self.autocommit = autocommit
        self.on_connect = on_connect
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.reset()
            conn = connect(self.url, autocommit=self.autocommit)
            if self.on_connect is not None:
                self.on_connect(conn)
            self._conn = conn
        return self._conn

    def run(self, fn: Callable[[psycopg.Connection], T], what: str) -> T:
        def attempt() -> T:
            conn = self.connection()
            try:
                return fn(conn)
            except db.TRANSIENT_ERRORS:
                self.reset()
                raise

        return db.retry(attempt, what=what)

    def reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self.reset()
