"""Incoming messages, handled the moment they are read from the socket.

aiomqtt hands every message paho reads to its incoming queue (`queue_type`, a documented way to
change how messages are queued). The agent's queue queues nothing: it hands each message straight
to the agent's handler. So there is no queue for a flood to overflow, and no backlog to wait
behind: `stop` and `vent` act as soon as they are read, and the cost of a flood is the cost of
weighing each message and dropping it, paid as fast as the messages arrive.

The handler must never raise: an exception out of paho's read callback would end the connection.
The inbox catches any that does and counts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Generic, TypeVar

from bridge.ratelimit import LogLimiter

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiomqtt

log = logging.getLogger(__name__)

T = TypeVar("T")


class Inbox(asyncio.Queue["aiomqtt.Message"], Generic[T]):
    """A queue that hands every message to `handler` instead of keeping it.

    Args:
        handler: called once per message, in the order they were read; must not block.
        wrap: turns paho's message into what `handler` takes.
        maxsize: what aiomqtt asks for; unused, nothing is ever kept.
    """

    def __init__(
        self,
        handler: Callable[[T], None],
        wrap: Callable[[aiomqtt.Message], T],
        maxsize: int = 0,
    ) -> None:
        super().__init__()
        self._handler = handler
        self._wrap = wrap
        self.failures = 0
        self._log = LogLimiter(log)

    def put_nowait(self, item: aiomqtt.Message) -> None:
        """Handle `item` now (called from paho's read callback, on the event loop)."""
        try:
            self._handler(self._wrap(item))
        except Exception:  # no input may end the connection, let alone the process
            self.failures += 1
            self._log.error(
                "inbox",
                time.monotonic(),
                "a message on %s could not be handled; it was dropped",
                getattr(getattr(item, "topic", None), "value", "?"),
            )

    async def put(self, item: aiomqtt.Message) -> None:
        """As `put_nowait`."""
        self.put_nowait(item)


def inbox_for(
    handler: Callable[[T], None], wrap: Callable[[aiomqtt.Message], T]
) -> type[asyncio.Queue[aiomqtt.Message]]:
    """The `queue_type` for an aiomqtt client whose messages go to `handler`."""

    class _Inbox(Inbox[T]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(handler, wrap, maxsize)

    return _Inbox
