"""What the agent has to publish, decoupled from the network.

The control loop puts messages here without ever waiting. State, telemetry and availability
keep only their newest payload (an old snapshot is worth nothing once a newer exists); events,
responses and discovery queue in order up to a bound, oldest dropped first and counted: no
amount of state or availability traffic can push an event or a response out. The publisher takes
them when connected.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    coalesce: bool = False  # only the newest payload on this topic matters
    response_to: bytes | None = None  # MQTT 5 correlation data to echo
    user_properties: tuple[tuple[str, str], ...] = ()  # MQTT 5 user properties
    response_topic: str | None = None  # MQTT 5: where the answer should go
    expiry_s: int | None = None  # MQTT 5: the broker drops it when undelivered this long


class Outbox:
    """Latest-wins slots plus a bounded FIFO, and a wake-up for the publisher."""

    def __init__(self, *, limit: int = 1000) -> None:
        self._slots: dict[str, Message] = {}
        self._lead: dict[str, Message] = {}
        self._queue: deque[Message] = deque()
        self._limit = limit
        self.dropped = 0
        self._ready = asyncio.Event()

    def put_latest(self, message: Message, *, first: bool = False, lead: bool = False) -> None:
        """Replace any pending message on the same topic (state, telemetry, availability).

        Args:
            message: the newest payload for its topic.
            first: send it before the other latest-wins messages (`online` before the state).
            lead: send it before everything, queued messages too (the state a person waits
                for after a command, ahead of the command's answer and events). A newer
                message on the topic of a pending lead one takes its place, in the lead.
        """
        assert message.coalesce  # noqa: S101 - a programming error, not input
        if lead or message.topic in self._lead:  # a newer one keeps the place of a lead one
            self._slots.pop(message.topic, None)
            self._lead[message.topic] = message
        elif first:
            self._slots.pop(message.topic, None)
            self._slots = {message.topic: message, **self._slots}
        else:
            self._slots[message.topic] = message
        self._ready.set()

    def put(self, message: Message) -> None:
        """Queue a message that must not be coalesced (events, responses)."""
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self._ready.set()

    def take(self, limit: int | None = None) -> list[Message]:
        """What is pending, up to `limit`: the lead messages, the queue in order, the slots."""
        out: list[Message] = []
        for source in (self._lead, self._queue, self._slots):
            while source and (limit is None or len(out) < limit):
                if isinstance(source, deque):
                    out.append(source.popleft())
                else:
                    out.append(source.pop(next(iter(source))))
        if not self:
            self._ready.clear()
        return out

    def rest(self) -> None:
        """Let `wait` block though messages are pending: the publisher has no room for them.

        A new message or `wake` ends it.
        """
        self._ready.clear()

    def give_back(self, messages: list[Message]) -> None:
        """Return messages that could not be sent (the connection dropped) to the front."""
        for m in reversed(messages):
            if m.coalesce:
                if m.topic not in self._lead:  # unless a newer one is already waiting
                    self._slots.setdefault(m.topic, m)
            else:
                self._queue.appendleft(m)
        while len(self._queue) > self._limit:
            self._queue.popleft()
            self.dropped += 1
        if messages:
            self._ready.set()

    async def wait(self) -> None:
        """Wait until something is pending (or `wake` was called)."""
        await self._ready.wait()

    def wake(self) -> None:
        """End a `wait` with nothing pending: the publisher is to look at its connection."""
        self._ready.set()

    def __len__(self) -> int:
        return len(self._lead) + len(self._queue) + len(self._slots)
