"""Limits for a flood: how many commands are acted on, answered and logged.

A broken automation or a hostile client can publish thousands of commands a second. The agent
then acts on a steady few, answers the rest with one `rate_limited` error a second, and writes
one log line per interval saying how many it dropped: neither the control loop, nor the broker,
nor the log pays for the flood.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` a second on average, bursts of `burst`.

    Args:
        rate: tokens added per second.
        burst: the most tokens kept.
    """

    rate: float
    burst: float
    tokens: float = field(init=False)
    at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def allow(self, now: float) -> bool:
        """Take a token if there is one."""
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class LogLimiter:
    """At most one log line per key and `interval_s`; the lines in between are counted.

    Args:
        log: where the lines go.
        interval_s: the shortest time between two lines of one key.
    """

    def __init__(self, log: logging.Logger, interval_s: float = 10.0) -> None:
        self._log = log
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def info(self, key: str, now: float, message: str, *args: object) -> None:
        """`emit` at INFO."""
        self.emit(logging.INFO, key, now, message, *args)

    def warning(self, key: str, now: float, message: str, *args: object) -> None:
        """`emit` at WARNING."""
        self.emit(logging.WARNING, key, now, message, *args)

    def error(self, key: str, now: float, message: str, *args: object) -> None:
        """`emit` at ERROR, with the exception being handled, if any."""
        self.emit(logging.ERROR, key, now, message, *args, exc_info=True)

    def emit(
        self, level: int, key: str, now: float, message: str, *args: object, exc_info: bool = False
    ) -> None:
        """Log `message` now, or count it if `key` was logged less than `interval_s` ago."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        if held:
            self._log.log(
                level,
                message + " (and %d more like it in the last %.0f s)",
                *args,
                held,
                now - last if last is not None else 0.0,
                exc_info=exc_info,
            )
        else:
            self._log.log(level, message, *args, exc_info=exc_info)
