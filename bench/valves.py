"""When the order to open an exhaust valve reaches it: the end of a `stop` for the benchmarks."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.agent import Agent


def time_exhaust_orders(agent: Agent) -> list[float]:
    """A list that gets the monotonic time of every safe-state order to the first exhaust.

    The valve's own call is wrapped: the time is taken when the order reaches the part, after
    the MQTT client, the agent and the runner have done their share.
    """
    opened: list[float] = []
    exhaust = agent.runner.hardware.exhausts[0]
    safe = exhaust.safe_state

    def timed_safe_state() -> None:
        opened.append(time.monotonic())
        safe()

    exhaust.safe_state = timed_safe_state  # type: ignore[method-assign]
    return opened
