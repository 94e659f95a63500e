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
    """At most `burst` log lines per key and `interval_s`; the lines held back are counted.

    Args:
        log: where the lines go.
        interval_s: the window in which a key may log `burst` lines.
        burst: lines of one key let through per window (the next line says how many were held).
    """

    def __init__(self, log: logging.Logger, interval_s: float = 10.0, burst: int = 1) -> None:
        self._log = log
        self.interval_s = interval_s
        self.burst = burst
        self._window: dict[str, tuple[float, int]] = {}  # key: (window start, lines in it)
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
        """Log `message` now, or count it if `key` used up its lines in this window."""
        start, lines = self._window.get(key, (None, 0))
        if start is None or now - start >= self.interval_s:
            start, lines = now, 0
        if lines >= self.burst:
            self._held[key] = self._held.get(key, 0) + 1
            return
        self._window[key] = (start, lines + 1)
        held = self._held.pop(key, 0)
        if held:
            self._log.log(
                level,
                message + " (and %d more like it held back)",
                *args,
                held,
                exc_info=exc_info,
            )
        else:
            self._log.log(level, message, *args, exc_info=exc_info)
