"""Command line of the online half: ``realtime feed|serve|demo|api``, ``materialize``.

Registered on the main parser by :func:`add_parsers`. Bad input (a bad argument, a missing
file, a bad URL, a port in use) and an unreachable server end with exit code 2 and one line,
never a traceback; no message shows a password. ``serve`` and ``demo`` read the settings
(``redis.*``, ``online.*``) and exit 1, after saying how many, when updates never reached
Redis (dropped from the full buffer, still buffered at shutdown, or in a batch that failed).
SIGTERM and Ctrl-C stop ``serve`` the same way: drain, flush, report, exit code. With
``online.store_points`` (the default) every accepted point is also stored in PostgreSQL
(:mod:`python_jobs.realtime.sink`); points still waiting for it at shutdown, or dropped from
the full outbox, also make the exit code 1, after a line saying how many.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys
from pathlib import Path
from typing import Any

from python_jobs import config, settings
from python_jobs.realtime import serving_cli, train_cli
from python_jobs.redact import mask_url, redact

DEFAULT_FEED = config.RAW_DATA_DIR / "eurusd_h1.csv"
#: Exit code of a run whose updates did not all reach Redis.
EXIT_LOST = 1
#: Most feature keys the end-of-run report reads to pick its sample.
SAMPLE_SCAN = 10_000


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _fail(message: str) -> int:
    print(f"error: {redact(message)}", file=sys.stderr)
    return 2


class OneLineParser(argparse.ArgumentParser):
    """An argument error is one line naming the command and the reason (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535, or 0 for a free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {text!r}")
    return value


# -- feed --------------------------------------------------------------------------------------


async def _feed(args: argparse.Namespace) -> None:
    from python_jobs.realtime.feed import CsvFeed, load_ticks, messages

    ticks = load_ticks(Path(args.file), args.symbol)
    feed = CsvFeed(
        messages(ticks, args.symbols, args.loop),
        args.rate,
        wait_for_client=not args.no_wait,
        duration=args.duration,
    )
    print(
        f"feed: {len(ticks):,} rows x {args.symbols} symbol(s) at {args.rate:,.0f} msg/s on "
        f"ws://{args.host}:{args.port}",
        flush=True,
    )
    await feed.serve(args.host, args.port)
    print(f"feed: sent {feed.sent:,} messages")


def _cmd_feed(args: argparse.Namespace) -> int:
    from python_jobs.realtime.feed import DEFAULT_PORT, LOOPBACK

    args.host = args.host or LOOPBACK
    args.port = DEFAULT_PORT if args.port is None else args.port
    if not Path(args.file).is_file():
        return _fail(f"no such file: {args.file}")
    try:
        asyncio.run(_feed(args))
    except (ValueError, KeyError) as exc:
        return _fail(f"{args.file}: {exc}")
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
    return 0


# -- serve -------------------------------------------------------------------------------------


def _timeseries(args: argparse.Namespace, names: tuple[str, ...]) -> list[str] | None:
    """The columns written as per-column keys: None for the store's default (the indicators)."""
    if args.timeseries == "indicators":
        return None
    if args.timeseries == "none":
        return []
    columns = [c.strip() for c in args.timeseries.split(",") if c.strip()]
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise CommandError(f"--timeseries names unknown columns: {unknown}")
    return columns


def _intake(feed_url: str, args: argparse.Namespace, metrics: Any, current: settings.Settings):
    """The WebSocket intake with the settings' bounds (``online.*``)."""
    from python_jobs.realtime.engine import to_epoch
    from python_jobs.realtime.stream import StreamingDataProcessor

    online = current.online
    return StreamingDataProcessor(
        feed_url,
        queue_size=args.queue_size,
        metrics=metrics,
        max_frame_bytes=online.max_frame_bytes,
        ts_earliest=to_epoch(online.ts_earliest),
        ts_max_ahead_s=online.ts_max_ahead_days * 86400.0,
        max_symbols=online.max_symbols,
        subscribe=_subscription(args),
    )


def _subscription(args: argparse.Namespace) -> str | None:
    """The JSON text of ``--subscribe FILE``, checked, or None."""
    path = getattr(args, "subscribe", None)
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--subscribe {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        json.loads(text)
    except ValueError as exc:
        raise CommandError(f"--subscribe {path} is not JSON: {exc}") from None
    return text


def _warm_start(args: argparse.Namespace, engine: Any, store: Any, max_symbols: int) -> Any:
    """The engine to start from: ``engine`` itself, or the state saved in Redis or the marts."""
    import redis

    from python_jobs.realtime.state import StateError

    if args.warm_start == "redis":
        try:
            saved = store.load_state(max_keys=max_symbols)
        except redis.RedisError as exc:
            raise CommandError(f"cannot read the saved state from Redis at {store.where}: {exc}") from None
        except StateError as exc:
            raise CommandError(f"cannot warm-start from {store.state_key}: {exc}") from None
        return engine if saved is None else saved
    if args.warm_start == "postgres":
        import psycopg

        try:
            engine.warm_start_from_postgres()
        except psycopg.Error as exc:
            raise CommandError(f"cannot warm-start from PostgreSQL: {type(exc).__name__}") from None
    return engine


def build_service(
    args: argparse.Namespace,
    feed_url: str,
    metrics: Any = None,
    current: settings.Settings | None = None,
):
    """Engine (warm-started as asked), store, intake, predictions: a ready FeatureService.

    Every bound comes from ``current`` (default :func:`python_jobs.settings.get`): the Redis
    URL, key prefix and TTL, the buffer size, the service id, the symbol cap and the intake's
    limits; ``args`` holds this run's choices (``--ttl`` defaults to ``redis.ttl_s``).
    """
    from python_jobs.realtime.engine import RealTimeFeatureEngine
    from python_jobs.realtime.metrics import ServiceMetrics
    from python_jobs.realtime.predict import AsyncPredictionPipeline, ModelError, load_model
    from python_jobs.realtime.service import FeatureService
    from python_jobs.realtime.store import RealTimeFeatureStore, connect

    current = current or settings.get()
    metrics = metrics or ServiceMetrics()
    try:
        client, where = connect(current=current)
    except ValueError as exc:
        raise CommandError(f"redis.url is not a Redis URL: {exc}") from None
    max_symbols = current.online.max_symbols
    # The service writes what update_many returns, the layout's columns: the history-wide
    # columns (matrix profile, isolation forest) are computed by RealTimeFeatureEngine.update only.
    engine = RealTimeFeatureEngine(history_features=False, max_keys=max_symbols)
    names = engine.layout.names
    # Load the compiled kernel now, not on the first message.
    RealTimeFeatureEngine(history_features=False).update_many(["warm-up"], [0.0], [1.0])
    store = RealTimeFeatureStore(
        names,
        engine.layout.version,
        client,
        current=current,
        ttl=args.ttl,
        timeseries=_timeseries(args, names),
        booleans=engine.layout.boolean_columns,
        outbox=current.online.store_points,
    )
    store.where = where
    engine = _warm_start(args, engine, store, max_symbols)
    processor = _intake(feed_url, args, metrics, current)
    # A symbol evicted from the engine is forgotten by the intake too (its ordering state).
    engine.on_evict = processor.forget
    predictor = None
    try:
        bundle = None if args.no_predict else load_model(version=engine.layout.version)
    except ModelError as exc:
        raise CommandError(str(exc)) from None
    if bundle is not None:
        predictor = AsyncPredictionPipeline(bundle, names, client, engine.layout.version, metrics=metrics)
        predictor.stream = store.predictions_key
    return FeatureService(
        engine,
        store,
        processor,
        metrics,
        predictor,
        sink=_sink(store, current) if current.online.store_points else None,
        max_batch=args.max_batch,
        # Zero or less: no status lines (demo has no such option).
        status_every=max(0.0, getattr(args, "status_every", 0.0)) or None,
    )


def _sink(store: Any, current: settings.Settings) -> Any:
    """The sink that stores the store's outbox in the raw table (``online.*``)."""
    from python_jobs.realtime.sink import PointSink

    online = current.online
    return PointSink(
        store.client,
        store.outbox_key,
        loto=online.market_loto,
        source=f"stream:{online.service_id}",
        batch=online.store_batch,
        interval=online.store_interval_s,
        url=settings.secret(current.database.url),
        schema=current.database.dbt_schema,
    )


def _warn_if_unreachable(store: Any) -> None:
    """Say at start-up when Redis refuses us: the service still runs and buffers."""
    import redis

    try:
        store.client.ping()
    except (redis.RedisError, OSError) as exc:
        print(
            f"warning: Redis at {store.where} does not answer ({type(exc).__name__}): updates are "
            f"buffered (up to {store.buffer_size:,}) until it does",
            file=sys.stderr,
            flush=True,
        )


def _serve_metrics(metrics: Any, port: int, current: settings.Settings) -> int:
    host = current.online.host
    try:
        return metrics.serve(port, host)
    except OSError as exc:
        raise CommandError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None


def print_report(service: Any, seconds: float, sample_keys: int = 6) -> None:
    """Latencies, counters and a sample of the Redis keys the service wrote."""
    latency = service.latency_summary()
    counts = service.processor.counts()
    store = service.store
    print(f"\nOnline features ({store.where}, feature set {store.version}), {seconds:.1f} s")
    drops = ", ".join(f"{k[8:]} {v}" for k, v in counts.items() if k.startswith("dropped_"))
    print(f"  messages received {counts['received']:,}, accepted {counts['accepted']:,}, dropped {drops}")
    print(
        f"  message -> Redis latency: p50 {latency['p50_ms']:.3f} ms, p99 {latency['p99_ms']:.3f} ms, "
        f"max {latency['max_ms']:.3f} ms over {latency['count']:,} messages"
    )
    c = store.counters
    print(
        f"  Redis: {c.written:,} updates written in {c.batches:,} batches, {c.errors} errors, "
        f"buffer {store.buffer_fill} (dropped {c.buffer_dropped})"
    )
    if service.internal_errors:
        print(f"  internal errors {service.internal_errors} ({service.failed_updates:,} updates lost)")
    if service.sink is not None:
        sink = service.sink
        print(
            f"  PostgreSQL: {sink.counters.stored:,} points stored as loto {sink.loto!r}, "
            f"{sink.counters.errors} errors, outbox {sink.outbox_length:,}"
        )
    if service.predictor is not None:
        p = service.predictor
        print(f"  predictions published {p.published:,} to {p.stream} (dropped {p.dropped})")
    try:
        _print_sample(service, sample_keys)
    except Exception as exc:  # a report must not turn a finished run into a failure
        print(f"  (could not read keys back: {type(exc).__name__})")


def _print_sample(service: Any, sample_keys: int) -> None:
    store = service.store
    # A bounded scan: a long run holds millions of keys, and a report must not list them all.
    scanned = itertools.islice(store.client.scan_iter(store.feature_pattern(), count=1000), SAMPLE_SCAN)
    keys = sorted(k.decode() for k in scanned)
    print(f"  sample of feature keys ({len(keys):,} scanned):")
    for key in keys[-sample_keys:]:
        print(f"    {key} = {store.client.get(key).decode()}")
    symbol = service.engine.keys[0] if service.engine.keys else None
    if symbol:
        latest = store.latest(symbol) or {}
        shown = {k: latest.get(k) for k in ("ts", "hist_y_lag1", "hist_y_roll_mean_w30", "rsi_14", "macd")}
        print(f"    {store.latest_key(symbol)} (hash, {len(store.names)} float64) -> {json.dumps(shown)}")
    if service.predictor is not None:
        last = store.client.xrevrange(service.predictor.stream, count=1)
        if last:
            newest = {k.decode(): v.decode() for k, v in last[0][1].items()}
            print(f"    {service.predictor.stream} newest: {newest}")


def _outcome(service: Any) -> int:
    """0 when every update reached Redis and every accepted point PostgreSQL; else 1, after
    a line saying how many did not."""
    lost = service.lost()
    if lost["total"]:
        print(
            f"error: {lost['total']:,} updates never reached Redis ({lost['buffer_dropped']:,} dropped "
            f"from the full buffer, {lost['not_written']:,} still buffered at shutdown, "
            f"{lost['failed']:,} in failed batches)",
            file=sys.stderr,
        )
    unstored = service.unstored()
    if unstored["total"]:
        print(
            f"error: {unstored['total']:,} accepted points not stored in PostgreSQL "
            f"({unstored['waiting']:,} waiting in the outbox {service.sink.outbox_key}, stored by the "
            f"next run; {unstored['trimmed']:,} dropped from the full outbox)",
            file=sys.stderr,
        )
    return EXIT_LOST if lost["total"] or unstored["total"] else 0


async def _run_until_signalled(service: Any, duration: float | None) -> None:
    """``service.run``, stopped gracefully (drained, flushed) by SIGTERM or Ctrl-C."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, service.stop)
    try:
        await service.run(duration)
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def _cmd_serve(args: argparse.Namespace) -> int:
    if not args.feed.startswith(("ws://", "wss://")):
        return _fail(f"--feed must be a ws:// or wss:// URL, got {args.feed!r}")
    from python_jobs.realtime.metrics import ServiceMetrics

    current = settings.get()
    port = current.online.metrics_port if args.metrics_port is None else args.metrics_port
    try:
        metrics = ServiceMetrics()
        bound = _serve_metrics(metrics, port, current)
        service = build_service(args, args.feed, metrics, current)
    except CommandError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted before serving", file=sys.stderr)
        return 130
    print(
        f"serving {mask_url(args.feed)} -> {service.store.where}; "
        f"metrics on http://{current.online.host}:{bound}/metrics",
        flush=True,
    )
    _warn_if_unreachable(service.store)
    asyncio.run(_run_until_signalled(service, args.duration))
    if args.save_state:
        _save_state(service)
    print_report(service, args.duration or 0.0)
    return _outcome(service)


def _save_state(service: Any) -> None:
    import redis

    try:
        service.store.save_state(service.engine)
        print(f"engine state saved to {service.store.state_key}")
    except (redis.RedisError, OSError) as exc:
        print(f"error: engine state not saved ({type(exc).__name__})", file=sys.stderr)


# -- demo --------------------------------------------------------------------------------------


async def _demo(args: argparse.Namespace, current: settings.Settings) -> Any:
    import websockets

    from python_jobs.realtime.feed import CsvFeed, load_ticks, messages
    from python_jobs.realtime.metrics import ServiceMetrics

    ticks = load_ticks(Path(args.file), "EURUSD")
    feed = CsvFeed(messages(ticks, args.symbols, loop=True), args.rate)
    async with websockets.serve(feed._handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        metrics = ServiceMetrics()
        metrics_port = _serve_metrics(metrics, 0, current)
        service = build_service(args, f"ws://127.0.0.1:{port}", metrics, current)
        print(f"feed ws://127.0.0.1:{port} at {args.rate:,} msg/s over {args.symbols} symbols", flush=True)
        print(
            f"Redis {service.store.where}; metrics http://{current.online.host}:{metrics_port}/metrics",
            flush=True,
        )
        player = asyncio.ensure_future(feed.play())
        await _run_until_signalled(service, args.seconds)
        player.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await player
    return service


def _cmd_demo(args: argparse.Namespace) -> int:
    from python_jobs.realtime.predict import MODEL_PATH, ModelError, WindowColumnsMissing, load_model

    if not Path(args.file).is_file():
        return _fail(f"no such file: {args.file}")
    try:
        if not args.no_predict and load_model() is None:
            print(f"no model at {MODEL_PATH}: training one first (loto-features train --from-files)")
            train_cli.train_model(from_files=True, out=MODEL_PATH)
        service = asyncio.run(_demo(args, settings.get()))
    except (CommandError, ModelError, WindowColumnsMissing) as exc:
        return _fail(str(exc))
    except (ValueError, KeyError) as exc:
        return _fail(f"{args.file}: {exc}")
    print_report(service, args.seconds)
    return _outcome(service)


# -- parsers -----------------------------------------------------------------------------------


def _service_arguments(p: argparse.ArgumentParser, current: settings.Settings) -> None:
    p.add_argument(
        "--max-batch", type=positive_int, default=1000, help="most messages per engine call and Redis write"
    )
    p.add_argument(
        "--queue-size", type=positive_int, default=10_000, help="intake queue bound (backpressure)"
    )
    p.add_argument(
        "--ttl",
        type=positive_int,
        default=current.redis.ttl_s,
        help="seconds the per-indicator keys and latest hashes live (default: redis.ttl_s, %(default)s)",
    )
    p.add_argument(
        "--timeseries",
        default="indicators",
        help="columns written as {prefix}:{version}:{symbol}:{column}:{ts} keys: 'indicators' "
        "(default), 'none' (the latest hash only), or a comma-separated list",
    )
    p.add_argument("--warm-start", choices=["none", "redis", "postgres"], default="none")
    p.add_argument("--no-predict", action="store_true", help="no prediction pipeline")


def add_parsers(sub: Any) -> None:
    """Add ``realtime`` (feed, serve, demo, api), ``materialize`` and ``train`` to the subparsers."""
    # The feed's and the model's modules (pandas, scikit-learn) are imported by the commands
    # that use them, not here: building the parser must stay fast for every command.
    current = settings.get()
    realtime = sub.add_parser("realtime", help="online features: WebSocket feed, service, demo")
    commands = realtime.add_subparsers(
        dest="realtime_command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )

    p = commands.add_parser("feed", help="serve a CSV as a WebSocket feed on 127.0.0.1")
    p.add_argument("--file", default=str(DEFAULT_FEED), help="CSV: timestamp first, a Close or price column")
    p.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    p.add_argument("--host", default=None, help="address to listen on (default: loopback)")
    p.add_argument("--port", type=port_number, default=None, help="port (default: 8765)")
    p.add_argument("--symbol", default="EURUSD", help="symbol when the file has no symbol column")
    p.add_argument("--symbols", type=positive_int, default=1, help="play the file as this many symbols")
    p.add_argument("--loop", action="store_true", help="restart the file at its end")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds of playing")
    p.add_argument("--no-wait", action="store_true", help="start playing before a client connects")
    p.set_defaults(fn=_cmd_feed)

    p = commands.add_parser("serve", help="features of a WebSocket feed into Redis, with predictions")
    p.add_argument("--feed", required=True, help="ws:// URL of the feed")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--metrics-port",
        type=port_number,
        default=None,
        help=f"Prometheus /metrics on online.host (default: online.metrics_port, "
        f"{current.online.metrics_port}; 0: a free port)",
    )
    p.add_argument(
        "--status-every",
        type=float,
        default=5.0,
        help="seconds between status lines (rate, drops, p99, buffer); 0 for none",
    )
    p.add_argument(
        "--subscribe",
        metavar="FILE",
        default=None,
        help="JSON text sent on every connection before reading (a feed's subscription request)",
    )
    p.add_argument("--save-state", action="store_true", help="save the engine to Redis at the end")
    _service_arguments(p, current)
    p.set_defaults(fn=_cmd_serve)

    p = commands.add_parser("demo", help="feed and service together for a few seconds, then a report")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rate", type=positive_int, default=1000)
    p.add_argument("--symbols", type=positive_int, default=10)
    p.add_argument("--file", default=str(DEFAULT_FEED))
    _service_arguments(p, current)
    p.set_defaults(fn=_cmd_demo)

    # The feature server and what it serves (python_jobs/realtime/serving_cli.py).
    serving_cli.add_parsers(commands, sub, current, port_type=port_number)

    # The model trained from the marts and loaded by serve (python_jobs/realtime/train_cli.py).
    train_cli.add_parser(sub, current)
