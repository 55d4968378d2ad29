"""Generated frames against the intake: lone surrogates, huge integers, ``1e400``, JSON nested
100,000 deep, fields of the wrong type, random bytes, oversized frames and valid messages
mixed in. ``parse_frame`` never raises and counts every message once; over a real WebSocket
the processor keeps reading after every frame."""

from __future__ import annotations

import asyncio
import json
import math
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from python_jobs.realtime.stream import MAX_SYMBOL_CHARS, StreamingDataProcessor
from python_jobs.tests.ws_feed import ScriptedFeed, tick, until

NOW = time.time()
MAX_FRAME = 200_000

# -- what a hostile or broken feed sends -----------------------------------------------------

oddities = st.sampled_from(
    [10**400, -(10**400), 10**30, 1e308, 1e-320, 0, -1, True, False, None, "", "1e400", "NaN", "-inf"]
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | oddities
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)
symbols = st.sampled_from(["A", "B", "BINANCE:BTCUSDT", "", "\ud800", "A\udfffB", "\n", "S" * 65]) | st.text(
    max_size=MAX_SYMBOL_CHARS + 2
)
stamps = st.one_of(
    st.floats(NOW - 1e6, NOW + 1e6),
    st.integers(int(NOW * 1000) - 10**6, int(NOW * 1000) + 10**6),  # milliseconds
    st.sampled_from([1e300, -1e300, 10**400, "2024-06-01T00:00:00Z", "2024-06-01 00:00", "not a time"]),
    st.floats(),
    json_values,
)
prices = st.one_of(st.floats(), st.integers(), st.sampled_from(["150.5", "abc", "1_0", "inf"]), json_values)
messages = st.fixed_dictionaries(
    {"symbol": symbols | json_values, "ts": stamps, "price": prices},
    optional={"volume": prices, "extra": json_values},
)


def _dumps(value) -> str:
    # ensure_ascii writes a lone surrogate as the escape "\ud800", which is what a feed can send.
    return json.dumps(value, allow_nan=True)


text_frames = st.one_of(
    messages.map(_dumps),
    st.lists(messages, max_size=5).map(_dumps),
    json_values.map(_dumps),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(["[" * 100_000, '{"a":' * 100_000, "[]", "{}", "null", "1" + "0" * 400, "1e400"]),
)
byte_frames = st.binary(max_size=40)
frames = st.one_of(text_frames, byte_frames)


def messages_in(frame: str | bytes) -> int:
    """How many messages a frame counts as: an array's elements, anything else (even ``[]``) one."""
    try:
        payload = json.loads(frame)
    except (ValueError, RecursionError):
        return 1
    return len(payload) if isinstance(payload, list) and payload else 1


def _valid(symbol: str, k: int) -> str:
    return tick(symbol, NOW + k, 1.0 + k)


def _limits() -> dict:
    return {"ts_earliest": 0.0, "ts_max_ahead_s": 86400.0, "max_symbols": 1000}


def _adds_up(processor: StreamingDataProcessor) -> bool:
    return processor.received == processor.accepted + sum(processor.dropped.values())


# -- parse_frame, many examples --------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_parse_frame_never_raises_and_counts_every_message(batch):
    processor = StreamingDataProcessor("ws://127.0.0.1:9", max_frame_bytes=MAX_FRAME, **_limits())
    sent = 0
    for k, frame in enumerate(batch):
        ticks = processor.parse_frame(frame)
        sent += messages_in(frame)
        assert processor.received == sent and _adds_up(processor)
        for accepted in ticks:
            assert accepted.symbol.encode("utf-8") and 0 < len(accepted.symbol) <= MAX_SYMBOL_CHARS
            assert math.isfinite(accepted.price) and math.isfinite(accepted.volume)
            assert 0.0 <= accepted.ts <= time.time() + 86400.0
        # A valid message after it is accepted.
        processor.forget("probe")
        assert len(processor.parse_frame(_valid("probe", k))) == 1
        sent += 1
    assert processor.received == sent and _adds_up(processor)


# -- over a real WebSocket, fewer examples ---------------------------------------------------

oversized = st.just("x" * (MAX_FRAME + 1))
socket_frames = st.one_of(
    text_frames.map(lambda frame: (frame, None)),
    byte_frames.map(lambda frame: (frame, None)),  # binary frames
    byte_frames.map(lambda frame: (frame, True)),  # the same bytes as a text frame, UTF-8 or not
    oversized.map(lambda frame: (frame, None)),
)


def _counted_as(frame: str | bytes, text: bool | None) -> tuple[int, bool]:
    """Messages the frame counts as, and whether the client closes the connection over it."""
    if len(frame.encode("utf-8") if isinstance(frame, str) else frame) > MAX_FRAME:
        return 1, True
    if text and isinstance(frame, bytes):
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError:
            return 1, True
    return messages_in(frame), False


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(socket_frames, min_size=1, max_size=6))
def test_over_a_websocket_every_frame_leaves_the_processor_reading(batch):
    async def scenario() -> tuple[StreamingDataProcessor, int]:
        async with ScriptedFeed() as feed:
            processor = StreamingDataProcessor(
                feed.url, max_frame_bytes=MAX_FRAME, backoff_min=0.005, backoff_max=0.02, **_limits()
            )
            reader = asyncio.ensure_future(processor.run())
            await until(lambda: len(feed.sockets) == 1)
            sent = 0
            for k, (frame, text) in enumerate(batch):
                count, closes = _counted_as(frame, text)
                connections = len(feed.sockets)
                await feed.send(frame, text=text)
                sent += count
                await until(lambda sent=sent: processor.received == sent)
                if closes:
                    await until(lambda n=connections: len(feed.sockets) == n + 1)
                assert not reader.done()
                accepted = processor.accepted
                processor.forget("probe")
                await feed.send(_valid("probe", k))
                sent += 1
                await until(lambda n=accepted: processor.accepted == n + 1)
            processor.stop()
            await asyncio.wait_for(reader, timeout=5)
            return processor, sent

    processor, sent = asyncio.run(scenario())
    assert processor.received == sent and _adds_up(processor)
    assert processor.accepted == processor.queue.qsize()
