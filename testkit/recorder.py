"""Every message a subscriber receives, with the time it arrived.

What the fault tests and the benchmarks watch the device with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiomqtt

Match = Callable[[str, bytes, bool], bool]
"""Topic, payload, retained → whether this is the message awaited."""


class Recorder:
    """Records what `client` receives once `pump` runs; `wait_for` waits for a message."""

    def __init__(self, client: aiomqtt.Client, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.seen: list[tuple[float, str, bytes, bool]] = []
        self.changed = asyncio.Event()

    async def pump(self) -> None:
        """Record every message until cancelled."""
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.seen.append((self.clock(), m.topic.value, payload, m.retain))
            self.changed.set()

    async def wait_for(self, match: Match, after: float, within: float) -> float:
        """When the first message at or after `after` that `match`es arrived."""
        start = 0
        async with asyncio.timeout(within):
            while True:
                for k in range(start, len(self.seen)):
                    t, topic, payload, retain = self.seen[k]
                    if t >= after and match(topic, payload, retain):
                        return t
                start = len(self.seen)
                self.changed.clear()
                await self.changed.wait()
