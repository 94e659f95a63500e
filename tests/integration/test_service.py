"""`serve()`, the body of `legwave run`, in-process against a real mosquitto."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from bridge.broker import Mosquitto
from bridge.service import serve
from tests.integration.conftest import agent_settings, observer

BASE = "legwave/lwtest"


def test_what_start_up_built_is_kept_out_of_the_collectors_sight(
    broker: Mosquitto, tmp_path: Path
) -> None:
    # A full collection over everything imported and built at start-up pauses the control loop
    # for milliseconds (tens of them on a Pi Zero 2 W): once running, the agent has frozen it.
    async def scenario() -> int:
        stop = asyncio.Event()
        async with observer(broker.port, f"{BASE}/availability") as obs:
            task = asyncio.create_task(serve(agent_settings(broker, tmp_path), stop=stop))
            try:
                await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
                return gc.get_freeze_count()
            finally:
                stop.set()
                await asyncio.wait_for(task, timeout=10)

    gc.unfreeze()
    try:
        frozen = asyncio.run(scenario())
    finally:
        gc.unfreeze()
    assert frozen > 10_000  # the modules, settings and device objects of start-up
