"""Command line of the online half: ``realtime feed``, ``realtime serve``, ``realtime demo``, ``train``.

Registered on the main parser by :func:`add_parsers`. Bad input (a missing file, a bad URL)
and an unreachable server end with exit code 2 and one line, never a traceback; no message
shows a password.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from python_jobs import config

DEFAULT_FEED = config.RAW_DATA_DIR / "eurusd_h1.csv"


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


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


def build_service(args: argparse.Namespace, feed_url: str, metrics: Any = None):
    """Engine (warm-started as asked), store, intake, predictions: a ready FeatureService."""
    import redis

    from python_jobs.realtime.engine import RealTimeFeatureEngine
    from python_jobs.realtime.metrics import ServiceMetrics
    from python_jobs.realtime.predict import AsyncPredictionPipeline, load_model
    from python_jobs.realtime.service import FeatureService
    from python_jobs.realtime.store import RealTimeFeatureStore, connect
    from python_jobs.realtime.stream import StreamingDataProcessor

    metrics = metrics or ServiceMetrics()
    try:
        client, where = connect()
    except ValueError as exc:
        raise CommandError(f"REDIS_URL is not a Redis URL: {exc}") from None
    engine = RealTimeFeatureEngine(history_features=args.history_features)
    # Load the compiled kernel now, not on the first message.
    RealTimeFeatureEngine(history_features=False).update_many(["warm-up"], [0.0], [1.0])
    store = RealTimeFeatureStore(
        engine.names, engine.layout.version, client, ttl=args.ttl, timeseries=_timeseries(args, engine.names)
    )
    store.where = where
    if args.warm_start == "redis":
        try:
            saved = store.load_state()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise CommandError(f"cannot reach Redis at {where}: {type(exc).__name__}") from None
        if saved is not None:
            engine = saved
    elif args.warm_start == "postgres":
        import psycopg

        try:
            engine.warm_start_from_postgres()
        except psycopg.Error as exc:
            raise CommandError(f"cannot warm-start from PostgreSQL: {type(exc).__name__}") from None
    processor = StreamingDataProcessor(feed_url, queue_size=args.queue_size, metrics=metrics)
    predictor = None
    bundle = None if args.no_predict else load_model()
    if bundle is not None:
        predictor = AsyncPredictionPipeline(
            bundle, engine.names, client, engine.layout.version, metrics=metrics
        )
    service = FeatureService(engine, store, processor, metrics, predictor, max_batch=args.max_batch)
    return service


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
    if service.predictor is not None:
        p = service.predictor
        print(f"  predictions published {p.published:,} to {p.stream} (dropped {p.dropped})")
    try:
        keys = sorted(k.decode() for k in store.client.scan_iter(f"feature:{store.version}:*", count=1000))
        print(f"  sample of {len(keys):,} feature keys:")
        for key in keys[-sample_keys:]:
            print(f"    {key} = {store.client.get(key).decode()}")
        symbol = service.engine.keys[0] if service.engine.keys else None
        if symbol:
            latest = store.latest(symbol) or {}
            shown = {
                k: latest.get(k) for k in ("ts", "hist_y_lag1", "hist_y_roll_mean_w30", "rsi_14", "macd")
            }
            print(f"    {store.latest_key(symbol)} (hash, {len(store.names)} float64) -> {json.dumps(shown)}")
        if service.predictor is not None:
            last = store.client.xrevrange(service.predictor.stream, count=1)
            if last:
                newest = {k.decode(): v.decode() for k, v in last[0][1].items()}
                print(f"    {service.predictor.stream} newest: {newest}")
    except Exception as exc:  # a report must not turn a finished run into a failure
        print(f"  (could not read keys back: {type(exc).__name__})")


def _cmd_serve(args: argparse.Namespace) -> int:
    if not args.feed.startswith(("ws://", "wss://")):
        return _fail(f"--feed must be a ws:// or wss:// URL, got {args.feed!r}")
    try:
        service = build_service(args, args.feed)
    except CommandError as exc:
        return _fail(str(exc))
    port = service.metrics.serve(args.metrics_port)
    print(
        f"serving {args.feed} -> {service.store.where}; metrics on http://127.0.0.1:{port}/metrics",
        flush=True,
    )
    try:
        asyncio.run(service.run(args.duration))
    except KeyboardInterrupt:
        service.drain()
    if args.save_state:
        service.store.save_state(service.engine)
    print_report(service, args.duration or 0.0)
    return 0


# -- demo --------------------------------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> Any:
    import websockets

    from python_jobs.realtime.feed import CsvFeed, load_ticks, messages

    ticks = load_ticks(Path(args.file), "EURUSD")
    feed = CsvFeed(messages(ticks, args.symbols, loop=True), args.rate)
    async with websockets.serve(feed._handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        service = build_service(args, f"ws://127.0.0.1:{port}")
        metrics_port = service.metrics.serve(0)
        print(f"feed ws://127.0.0.1:{port} at {args.rate:,} msg/s over {args.symbols} symbols", flush=True)
        print(f"Redis {service.store.where}; metrics http://127.0.0.1:{metrics_port}/metrics", flush=True)
        player = asyncio.ensure_future(feed.play())
        await service.run(args.seconds)
        player.cancel()
    return service


def _cmd_demo(args: argparse.Namespace) -> int:
    from python_jobs.realtime.predict import MODEL_PATH, load_model

    if not args.no_predict and load_model() is None:
        print(f"no model at {MODEL_PATH}: training one first (python -m python_jobs train --from-files)")
        _train(from_files=True, out=MODEL_PATH)
    try:
        service = asyncio.run(_demo(args))
    except CommandError as exc:
        return _fail(str(exc))
    print_report(service, args.seconds)
    return 0


# -- train -------------------------------------------------------------------------------------


def _train(*, from_files: bool, out: Path) -> None:
    from python_jobs.realtime.layout import layout
    from python_jobs.realtime.predict import features_from_files, features_from_marts, train

    source = "the bundled files through the online engine" if from_files else "features_hist"
    features = features_from_files() if from_files else features_from_marts()
    bundle, backtest = train(features, out, layout().version)
    print(f"trained on {bundle['rows']:,} rows of {source}; {len(bundle['columns'])} inputs; saved {out}")
    print("walk-forward backtest, mean absolute error of the next value (each fold: a model fitted on")
    print("the rows before it):")
    print(backtest.report())
    total = backtest.overall()
    gain = 1 - total["model_mae"] / total["window_mean_mae"]
    print(f"The model is {100 * gain:+.1f}% against the 30-draw mean. Lottery draws are random by design,")
    print("so no model should beat the mean by more than noise: a score near it is the honest result")
    print("(and shows no future data leaks in); the last-value baseline is worse because it repeats noise.")


def _cmd_train(args: argparse.Namespace) -> int:
    import psycopg

    try:
        _train(from_files=args.from_files, out=Path(args.out))
    except psycopg.Error as exc:
        return _fail(
            f"cannot read features_hist ({type(exc).__name__}); build it with `make demo`, "
            "or train with --from-files"
        )
    return 0


# -- parsers -----------------------------------------------------------------------------------


def _service_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-batch", type=int, default=1000, help="most messages per engine call and Redis write"
    )
    p.add_argument("--queue-size", type=int, default=10_000, help="intake queue bound (backpressure)")
    p.add_argument("--ttl", type=int, default=24 * 3600, help="seconds the feature:... keys live")
    p.add_argument(
        "--timeseries",
        default="indicators",
        help="columns written as feature:{version}:{symbol}:{column}:{ts} keys: 'indicators' "
        "(default), 'none' (the latest hash only), or a comma-separated list",
    )
    p.add_argument(
        "--history-features",
        action="store_true",
        help="also the matrix profile and isolation forest (keep whole series)",
    )
    p.add_argument("--warm-start", choices=["none", "redis", "postgres"], default="none")
    p.add_argument("--no-predict", action="store_true", help="no prediction pipeline")


def add_parsers(sub: Any) -> None:
    """Add ``realtime`` (feed, serve, demo) and ``train`` to the main command's subparsers."""
    from python_jobs.realtime.feed import DEFAULT_PORT, LOOPBACK
    from python_jobs.realtime.predict import MODEL_PATH

    realtime = sub.add_parser("realtime", help="online features: WebSocket feed, service, demo")
    commands = realtime.add_subparsers(dest="realtime_command", required=True, metavar="COMMAND")

    p = commands.add_parser("feed", help="serve a CSV as a WebSocket feed on 127.0.0.1")
    p.add_argument("--file", default=str(DEFAULT_FEED), help="CSV: timestamp first, a Close or price column")
    p.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    p.add_argument("--host", default=LOOPBACK)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--symbol", default="EURUSD", help="symbol when the file has no symbol column")
    p.add_argument("--symbols", type=int, default=1, help="play the file as this many symbols")
    p.add_argument("--loop", action="store_true", help="restart the file at its end")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds of playing")
    p.add_argument("--no-wait", action="store_true", help="start playing before a client connects")
    p.set_defaults(fn=_cmd_feed)

    p = commands.add_parser("serve", help="features of a WebSocket feed into Redis, with predictions")
    p.add_argument("--feed", required=True, help="ws:// URL of the feed")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--metrics-port", type=int, default=9108, help="Prometheus /metrics on 127.0.0.1")
    p.add_argument("--save-state", action="store_true", help="save the engine to Redis at the end")
    _service_arguments(p)
    p.set_defaults(fn=_cmd_serve)

    p = commands.add_parser("demo", help="feed and service together for a few seconds, then a report")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--file", default=str(DEFAULT_FEED))
    _service_arguments(p)
    p.set_defaults(fn=_cmd_demo)

    p = sub.add_parser("train", help="train the next-value model from features_hist, with a backtest")
    p.add_argument(
        "--from-files",
        action="store_true",
        help="features from the bundled files by the online engine (no database)",
    )
    p.add_argument("--out", default=str(MODEL_PATH))
    p.set_defaults(fn=_cmd_train)
