"""The feed keeps its rate: what `realtime feed --rate R` sends in T seconds is about R x T."""

from __future__ import annotations

import asyncio

from python_jobs.realtime.cli import DEFAULT_FEED
from python_jobs.realtime.feed import CsvFeed, load_ticks, messages


def test_feed_sends_at_its_rate_for_its_duration():
    # Several frames a second, each of more than one message: the chunking path runs.
    rate, seconds = 400.0, 1.5
    feed = CsvFeed(messages(load_ticks(DEFAULT_FEED), symbols=3, loop=True), rate, wait_for_client=False)
    feed.duration = seconds
    asyncio.run(asyncio.wait_for(feed.play(), timeout=10 * seconds))
    assert feed.finished.is_set()
    assert 0.8 * rate * seconds <= feed.sent <= rate * seconds + 1
