"""The flood limits: a token bucket for commands, one log line per interval."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from bridge.ratelimit import LogLimiter, TokenBucket


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=20, burst=40)
    assert sum(bucket.allow(0.0) for _ in range(100)) == 40  # the burst
    assert sum(bucket.allow(1.0) for _ in range(100)) == 20  # one second later: the rate
    assert sum(bucket.allow(100.0) for _ in range(100)) == 40  # never more than the burst


def test_the_log_says_once_per_interval_how_many_it_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = LogLimiter(logging.getLogger("legwave.test"), interval_s=10.0)
    with caplog.at_level(logging.WARNING):
        for i in range(1000):
            limiter.warning("flood", i * 0.01, "dropping %s", "commands")
        limiter.warning("other", 5.0, "another kind")
        limiter.warning("flood", 10.5, "dropping %s", "commands")
    assert [r.getMessage() for r in caplog.records] == [
        "dropping commands",
        "another kind",
        "dropping commands (and 999 more like it held back)",
    ]


def test_a_burst_of_lines_then_one_per_window_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = LogLimiter(logging.getLogger("legwave.test"), interval_s=10.0, burst=3)
    with caplog.at_level(logging.INFO):
        for i in range(10):
            limiter.info("cmd", i * 0.1, "command %d", i)
        limiter.info("cmd", 12.0, "command %d", 99)
    assert [r.getMessage() for r in caplog.records] == [
        "command 0",
        "command 1",
        "command 2",
        "command 99 (and 7 more like it held back)",
    ]


def test_a_flood_of_offline_is_contradicted_once_a_second_with_the_last_word(
    tmp_path: Path,
) -> None:
    """The agent's pace against `offline` on its availability, on a virtual clock."""
    from bridge.agent import CONTRADICT_EVERY_S
    from bridge.config import load_settings
    from bridge.service import build

    agent = build(load_settings(None, state_dir=tmp_path), host="127.0.0.1", port=1)
    topic = agent.topics.availability
    said: list[float] = []
    for ms in range(3001):  # an `offline` every millisecond for 3 s, a tick every 20 ms
        now = 100.0 + ms / 1000
        agent._contradicted(now)
        if ms % 20 == 0:
            agent.after_tick(now)
        said += [now for m in agent.outbox.take() if m.topic == topic and m.payload == b"online"]
    assert agent.stats.wills_contradicted == 3001
    assert said[0] == 100.0  # at once
    gaps = [b - a for a, b in itertools.pairwise(said)]
    assert all(gap >= CONTRADICT_EVERY_S - 1e-9 for gap in gaps)  # once a second at most
    assert len(said) == 4  # 100, 101, 102, 103: the last `offline` is answered too
