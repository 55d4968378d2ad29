"""Structured logging: key=value lines on a terminal, JSON lines with ``logging.format: json``.

Level, format and an optional rotated log file come from the settings (``logging.*``); the
file's directory must exist (the settings refuse it otherwise: nothing here creates
directories). Every text value of a line goes through :func:`python_jobs.redact.redact` before
it is written.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from python_jobs import settings
from python_jobs.redact import redact

_configured = False
# Lines below this level are dropped while :func:`quiet` is active (a module-level value, not a
# context variable: the job's writer thread logs too).
_floor = 0
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}


def _drop_below_floor(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    if _floor and _LEVELS.get(method, 20) < _floor:
        raise structlog.DropEvent
    return event


@contextmanager
def quiet(level: int = logging.WARNING) -> Iterator[None]:
    """Drop log lines below ``level`` inside the block (a command's compact output)."""
    global _floor
    previous, _floor = _floor, level
    try:
        yield
    finally:
        _floor = previous


def _mask_secrets(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        key: redact(value) if isinstance(value, str | BaseException) else value
        for key, value in event.items()
    }


class _TeeLogger:
    """Writes each rendered line to stderr and, when configured, to a rotated file."""

    def __init__(self, handler: logging.Handler | None):
        self._handler = handler

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        if self._handler is not None:
            self._handler.emit(logging.makeLogRecord({"msg": message, "levelno": logging.INFO}))

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


_handlers: dict[str, logging.Handler | None] = {}


def _file_handler(conf: settings.LoggingSettings) -> logging.Handler | None:
    # One handler per file for the whole process: two would rotate the same file under each other.
    if conf.file is None:
        return None
    key = str(conf.file.resolve())
    if key not in _handlers:
        try:
            _handlers[key] = logging.handlers.RotatingFileHandler(
                conf.file, maxBytes=conf.max_bytes, backupCount=conf.backup_count, encoding="utf-8"
            )
        except OSError as exc:
            # The settings checked the file; if it went away since, log to stderr and say so once.
            print(f"warning: not logging to {conf.file} ({exc.strerror or exc})", file=sys.stderr)
            _handlers[key] = None
    return _handlers[key]


def configure(level: str | None = None) -> None:
    global _configured
    # An explicit level (--log-level) reconfigures: modules imported earlier configured defaults.
    if _configured and level is None:
        return
    try:
        conf = settings.get().logging
    except settings.SettingsError:
        # The command line reports bad settings itself; logging must not fail before it can.
        conf = settings.LoggingSettings()
    level_name = (level or conf.level).upper()
    renderer = (
        structlog.processors.JSONRenderer()
        if conf.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    tee = _TeeLogger(_file_handler(conf))
    structlog.configure(
        processors=[
            _drop_below_floor,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=lambda *args: tee,
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    configure()
    return structlog.get_logger(name)
