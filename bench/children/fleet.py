"""A share of a simulated fleet in one process: `count` devices, the first `running` in a session.

Run: python bench/children/fleet.py PORT FIRST COUNT RUNNING SECONDS WORK. Prints "ready" once every
device is connected; after a line on stdin it starts the sessions, lets one second settle, counts
for SECONDS and prints one line of JSON: ticks, late ticks, worst lateness, CPU, states published
per topic, faults.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from bridge.config import load_settings
from bridge.service import build
from device.control.massager import ACTIVE, Action, Command
from device.settings import SettingChanges


async def main(port: int, first: int, count: int, running: int, seconds: float, work: Path) -> None:
    """Run the share and report."""
    agents = []
    published: dict[str, int] = {}
    for i in range(first, first + count):
        settings = load_settings(
            None,
            device_id=f"fleet{i:04d}",
            state_dir=work / f"fleet{i:04d}",
            telemetry_hz=0,
            state_interval_s=1,
            mqtt={"host": "127.0.0.1", "port": port},
        )
        agent = build(settings, host="127.0.0.1", port=port)
        topic = agent.topics.state
        published[topic] = 0
        original = agent.publish_state

        def counted(
            now: float, *, lead: bool = False, original: Any = original, topic: str = topic
        ) -> None:
            published[topic] += 1
            original(now, lead=lead)

        agent.publish_state = counted  # type: ignore[method-assign]
        agents.append(agent)
    gc.freeze()  # as `legwave run` does once it has started
    stop = asyncio.Event()
    tasks = [asyncio.create_task(a.run(stop)) for a in agents]
    await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 120)
    tasks += [asyncio.create_task(a.runner.run(stop=stop)) for a in agents]
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    for a in agents[:running]:
        a.runner.submit(Command(action=Action.START, changes=SettingChanges(duration_min=30)))
    await asyncio.sleep(1.0)
    for a in agents:
        a.runner.overruns = 0
        a.runner.max_lateness = 0.0
    ticks0 = sum(a.runner.ticks for a in agents)
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    report = {
        "ticks": sum(a.runner.ticks for a in agents) - ticks0,
        "late": sum(a.runner.overruns for a in agents),
        "worst_s": max(a.runner.max_lateness for a in agents),
        "cpu_s": cpu,
        "published": dict(published),  # every state since the start: the subscriber came first
        "faulted": sum(a.massager.fault is not None for a in agents),
        "in_session": sum(a.massager.status in ACTIVE for a in agents),
    }
    print(json.dumps(report), flush=True)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for a in agents:
        a.close()


if __name__ == "__main__":
    port, first, count, running = (int(a) for a in sys.argv[1:5])
    asyncio.run(main(port, first, count, running, float(sys.argv[5]), Path(sys.argv[6])))
