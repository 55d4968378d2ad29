"""docs/FEED.md and docs/feed.schema.json say what the intake does: the schema is valid JSON
Schema and its examples are accepted; every frame shown in FEED.md gives the counts written
next to it; every drop reason and limit is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from python_jobs import settings
from python_jobs.realtime.stream import DROP_REASONS, StreamingDataProcessor

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "feed.schema.json").read_text(encoding="utf-8"))
FEED_MD = (DOCS / "FEED.md").read_text(encoding="utf-8")
# ```json accepted=1 duplicate=1  ...  ```: a frame and the counts it gives (``on_same_ts=drop``
# first: under that setting).
BLOCK = re.compile(r"^```json ([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _processor(on_same_ts: str | None = None) -> StreamingDataProcessor:
    # the limits of the default settings
    return StreamingDataProcessor("ws://127.0.0.1:9", on_same_ts=on_same_ts)


def _counted_blocks() -> list[tuple[dict[str, int], str, str | None]]:
    blocks = []
    for info, body in BLOCK.findall(FEED_MD):
        if info.strip() == "subscribe":
            continue
        counts = dict(item.split("=") for item in info.split())
        mode = counts.pop("on_same_ts", None)
        blocks.append(({name: int(n) for name, n in counts.items()}, body, mode))
    return blocks


def test_schema_is_draft_2020_12_and_its_examples_are_accepted():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert len(SCHEMA["examples"]) >= 3
    processor = _processor()
    for example in SCHEMA["examples"]:
        VALIDATOR.validate(example)
        sent = len(example) if isinstance(example, list) else 1
        assert len(processor.parse_frame(json.dumps(example))) == sent, example


def test_symbols_with_colons_are_in_the_schema_and_control_characters_are_not():
    symbol = {"$ref": "#/$defs/symbol", "$defs": SCHEMA["$defs"]}
    assert jsonschema.Draft202012Validator(symbol).is_valid("BINANCE:BTCUSDT")
    for bad in ("", "A\nB", "\ud800", "S" * 65):
        assert not jsonschema.Draft202012Validator(symbol).is_valid(bad)


@pytest.mark.parametrize(("counts", "frame", "mode"), _counted_blocks(), ids=lambda v: str(v)[:40])
def test_every_frame_in_feed_md_gives_the_counts_written_next_to_it(counts, frame, mode):
    assert set(counts) <= {"accepted", *DROP_REASONS}, counts
    processor = _processor(mode)
    processor.parse_frame(frame)
    got = {name: n for name, n in {"accepted": processor.accepted, **processor.dropped}.items() if n}
    assert got == counts
    # Frames the intake accepts whole are valid by the schema; wholly malformed ones are not.
    if set(counts) == {"accepted"}:
        VALIDATOR.validate(json.loads(frame))
    if set(counts) == {"malformed"}:
        assert not VALIDATOR.is_valid(json.loads(frame))


def test_feed_md_shows_frames_accepted_and_each_reason_but_oversized():
    shown = {name for counts, _, _ in _counted_blocks() for name in counts}
    assert shown == {"accepted", *DROP_REASONS} - {"oversized"}


def test_every_drop_reason_and_limit_is_documented():
    for reason in DROP_REASONS:
        assert f"| `{reason}`" in FEED_MD, reason
    online = settings.OnlineSettings()
    for name in ("max_frame_bytes", "ts_earliest", "ts_max_ahead_days", "max_symbols"):
        value = getattr(online, name)
        shown = value.isoformat() if hasattr(value, "isoformat") else str(value).removesuffix(".0")
        assert re.search(rf"\| `online\.{name}` +\| `?{re.escape(shown)}`? ", FEED_MD), name


def test_the_subscribe_example_is_json_the_intake_takes():
    (body,) = [body for info, body in BLOCK.findall(FEED_MD) if info.strip() == "subscribe"]
    assert StreamingDataProcessor("ws://127.0.0.1:9", subscribe=body).subscribe == body
