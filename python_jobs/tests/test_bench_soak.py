"""The soak's arithmetic: memory read back, the latency quantile of a histogram, the slope."""

from __future__ import annotations

import builtins
import math
import os

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from bench import soak
from python_jobs.realtime.metrics import LATENCY_BUCKETS


def test_rss_without_psutil_reads_proc(monkeypatch):
    if not os.path.exists(f"/proc/{os.getpid()}/status"):
        pytest.skip("no /proc here")
    with_psutil = soak.rss_mb(os.getpid())
    real_import = builtins.__import__

    def no_psutil(name, *args, **kwargs):
        if name == "psutil":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psutil)
    assert soak.rss_mb(os.getpid()) == pytest.approx(with_psutil, rel=0.05)


def _scraped_buckets(values: np.ndarray) -> list[tuple[float, float]]:
    """Buckets as a scrape of a real prometheus_client histogram gives them."""
    registry = CollectorRegistry()
    histogram = Histogram("realtime_latency_seconds", "test", buckets=LATENCY_BUCKETS, registry=registry)
    for value in values:
        histogram.observe(value)
    (family,) = registry.collect()
    return sorted((float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket"))


def test_histogram_quantile_lands_in_the_bucket_of_the_exact_quantile():
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=np.log(1.5e-3), sigma=0.6, size=20_000)
    buckets = _scraped_buckets(values)
    bounds = (0.0, *LATENCY_BUCKETS)
    for q in (0.5, 0.9, 0.99):
        exact = float(np.quantile(values, q))
        estimate = soak.histogram_quantile(q, buckets)
        upper = next(b for b in LATENCY_BUCKETS if b >= exact)
        lower = bounds[bounds.index(upper) - 1]
        assert lower <= estimate <= upper, (q, exact, estimate)


def test_histogram_quantile_interpolates_like_prometheus():
    # 100 observations: 50 in (0, 1], 50 in (1, 2]; the 0.75 quantile is half way into (1, 2].
    buckets = [(1.0, 50.0), (2.0, 100.0), (math.inf, 100.0)]
    assert soak.histogram_quantile(0.75, buckets) == pytest.approx(1.5)
    assert soak.histogram_quantile(0.25, buckets) == pytest.approx(0.5)
    assert math.isnan(soak.histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))
    # In the open top bucket: its lower bound.
    assert soak.histogram_quantile(0.99, [(1.0, 10.0), (math.inf, 100.0)]) == 1.0


def test_summarize_slope_after_warm_up_and_latency_after_warm_up():
    # RSS rises 50 MB during the first minute, then 0.5 MB a minute: the slope is the latter.
    bounds = [*LATENCY_BUCKETS, math.inf]
    samples = []
    for step in range(1, 31):
        t_s = 10.0 * step
        rss = 100 + 50 * min(t_s, 60) / 60 + 0.5 * max(t_s - 60, 0) / 60
        # Slow messages (0.5 s) only during the warm-up; 1 ms ones after.
        slow = 100.0 * min(step, 6)
        fast = 1000.0 * max(step - 6, 0)
        buckets = [(b, (slow if b >= 0.5 else 0.0) + (fast if b >= 1e-3 else 0.0)) for b in bounds]
        values = {"realtime_messages_total": slow + fast, "realtime_messages_accepted_total": slow + fast}
        samples.append({"t_s": t_s, "rss_mb": rss, "values": values, "drops": {}, "buckets": buckets})
    report = "  message -> Redis latency: p50 0.500 ms, p99 0.900 ms, max 3.000 ms over 1 messages"
    result = soak.summarize(samples, 300.0, "status: 1 msg/s, p99 7.000 ms\n" + report)
    assert result["warm_up_seconds"] == 60.0
    assert result["rss_after_warm_up_mb"] == pytest.approx(150.0)
    assert result["rss_slope_mb_per_min"] == pytest.approx(0.5, abs=1e-3)
    assert result["p99_ms_after_warm_up"] <= 1.0  # the slow warm-up is not in it
    assert result["p99_ms_histogram"] > 100.0  # the whole run's is
    assert result["p99_ms_last_200k"] == 0.9  # the final report's, not a status line's
