"""Prometheus metrics of the online service, served over HTTP by ``prometheus_client``.

One registry per service (so tests and benchmarks can run several): messages received and
accepted, drops by reason (every reason of :data:`~python_jobs.realtime.stream.DROP_REASONS`
exported from the start, at 0), the message-to-Redis latency histogram, queue depth, Redis
errors, the store's buffer fill and the updates dropped from a full buffer, symbols held and
evicted, internal errors, predictions published, and the points stored in PostgreSQL (stored,
failed writes, the outbox's length and what was dropped from it when full).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from python_jobs.realtime.stream import DROP_REASONS

# Seconds: 50 us to 1 s, dense around the 2 ms and 10 ms marks.
LATENCY_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0)


class ServiceMetrics:
    """The service's counters, gauges and histogram in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter("realtime_messages", "Messages received from the feed", registry=r)
        self.accepted = Counter("realtime_messages_accepted", "Messages turned into features", registry=r)
        self.drops = Counter("realtime_drops", "Messages dropped, by reason", ["reason"], registry=r)
        for reason in DROP_REASONS:
            # A reason that never happened reads 0 rather than missing (alerts compare rates).
            self.drops.labels(reason=reason)
        self.latency = Histogram(
            "realtime_latency_seconds",
            "From message received to its features in Redis",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("realtime_queue_depth", "Messages waiting in the intake queue", registry=r)
        self.redis_errors = Counter("realtime_redis_errors", "Failed writes to Redis", registry=r)
        self.buffer_fill = Gauge("realtime_buffer_fill", "Updates waiting for Redis", registry=r)
        self.buffer_dropped = Gauge(
            "realtime_buffer_dropped", "Updates dropped because the Redis buffer was full", registry=r
        )
        self.symbols = Gauge("realtime_symbols", "Symbols whose state the engine holds", registry=r)
        self.symbols_evicted = Counter(
            "realtime_symbols_evicted", "Symbols evicted to stay within online.max_symbols", registry=r
        )
        self.internal_errors = Counter(
            "realtime_internal_errors", "Batches whose handling failed unexpectedly", registry=r
        )
        self.reconnects = Counter("realtime_feed_reconnects", "WebSocket reconnections", registry=r)
        self.predictions = Counter("realtime_predictions", "Predictions published", registry=r)
        self.points_stored = Counter(
            "realtime_points_stored", "Accepted points stored in the raw table of PostgreSQL", registry=r
        )
        self.store_errors = Counter(
            "realtime_store_errors", "Failed writes of accepted points to PostgreSQL", registry=r
        )
        self.outbox_length = Gauge(
            "realtime_outbox_length",
            "Accepted points in the Redis outbox, waiting for PostgreSQL",
            registry=r,
        )
        self.outbox_trimmed = Counter(
            "realtime_outbox_trimmed", "Points dropped from the full outbox, never stored", registry=r
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``addr:port`` (``online.host`` and ``online.metrics_port`` from
        the command line; port 0 picks a free one) in a background thread; return the port.

        Raises
        ------
        OSError
            The address cannot be bound (in use, not an address of this machine).
        """
        server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return int(server.server_address[1])
