"""The flood limits: a token bucket for commands, one log line per interval."""

from __future__ import annotations

import logging

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
