"""Command line of serving: ``materialize`` and ``realtime api``.

Registered by :func:`python_jobs.realtime.cli.add_parsers`. A missing mart, an unreachable
Redis or a port in use ends with exit code 2 and one line, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from python_jobs import settings
from python_jobs.redact import redact


def _fail(message: str) -> int:
    print(f"error: {redact(message)}", file=sys.stderr)
    return 2


def _cmd_materialize(args: argparse.Namespace) -> int:
    import psycopg
    import redis

    from python_jobs.realtime.materialize import MaterializeError, materialize

    try:
        result = materialize(args.loto)
    except MaterializeError as exc:
        return _fail(str(exc))
    except psycopg.Error as exc:
        return _fail(f"cannot read the marts ({type(exc).__name__}): run `make demo` first")
    except (redis.RedisError, OSError) as exc:
        return _fail(f"cannot write to Redis ({type(exc).__name__}: {exc})")
    print(
        f"materialized {result.series:,} series (feature set {result.version}): {result.written:,} "
        f"written, {result.unchanged:,} unchanged, in {result.seconds:.2f} s"
    )
    return 0


def _cmd_api(args: argparse.Namespace) -> int:
    from python_jobs.realtime import api

    current = settings.get()
    host = args.host or current.serving.host
    port = current.serving.port if args.port is None else args.port
    try:
        sock = api.bind(host, port)
    except OSError as exc:
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound = sock.getsockname()[1]
    print(f"feature API on http://{host}:{bound} (POST /get-online-features, /docs)", flush=True)
    api.run(sock, current)
    return 0


def add_parsers(
    commands: Any, sub: Any, current: settings.Settings, *, port_type: Callable[[str], int]
) -> None:
    """``api`` under ``realtime`` (``commands``) and ``materialize`` at the top (``sub``)."""
    p = commands.add_parser("api", help="the feature server: POST /get-online-features over HTTP")
    p.add_argument(
        "--host", default=None, help=f"address to listen on (default: serving.host, {current.serving.host})"
    )
    p.add_argument(
        "--port",
        type=port_type,
        default=None,
        help=f"port (default: serving.port, {current.serving.port}; 0: a free port)",
    )
    p.set_defaults(fn=_cmd_api)

    p = sub.add_parser("materialize", help="each series' latest marts rows into Redis, for the feature API")
    p.add_argument("--loto", default=None, help="only this lottery's series (default: every series)")
    p.set_defaults(fn=_cmd_materialize)
