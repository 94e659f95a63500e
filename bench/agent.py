"""Agent figures on loopback: start → online, command → state latency, memory.

Run: python bench/agent.py [--samples N]. Starts its own mosquitto and `legwave run` (a separate
process, as users run it) and prints a table. Numbers depend on the machine: compare runs made
side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

from bridge.agent import NO_DELAY
from bridge.broker import Mosquitto

BASE = "legwave/benchdev"


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(samples: int) -> dict[str, float]:
    """Start a broker and `legwave run`, then measure; returns the figures by name."""
    broker = Mosquitto().start()
    state_dir = tempfile.mkdtemp(prefix="legwave-bench-")
    env = {
        **os.environ,
        "LEGWAVE_DEVICE_ID": "benchdev",
        "LEGWAVE_STATE_DIR": state_dir,
        "LEGWAVE_MQTT__HOST": "127.0.0.1",
        "LEGWAVE_MQTT__PORT": str(broker.port),
    }
    out: dict[str, float] = {}
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, socket_options=NO_DELAY) as client:
            await client.subscribe(f"{BASE}/availability", qos=1)
            await client.subscribe(f"{BASE}/state", qos=1)
            started = time.perf_counter()
            agent = subprocess.Popen(  # noqa: ASYNC220 - started once, before timing matters
                [sys.executable, "-m", "bridge.cli", "run"], env=env, stderr=subprocess.DEVNULL
            )
            try:
                async with asyncio.timeout(20):
                    async for m in client.messages:
                        if m.topic.value.endswith("/availability") and m.payload == b"online":
                            out["start_to_online_s"] = time.perf_counter() - started
                            break
                await asyncio.sleep(1.0)
                latencies: list[float] = []
                for i in range(samples):
                    level = 1 + i % 7  # a different level each time: every command changes state
                    sent = time.perf_counter()
                    await client.publish(
                        f"{BASE}/set", json.dumps({"intensity": level}).encode(), qos=1
                    )
                    async with asyncio.timeout(5):
                        async for m in client.messages:
                            payload = m.payload if isinstance(m.payload, bytes) else b"{}"
                            if (
                                m.topic.value.endswith("/state")
                                and json.loads(payload).get("intensity") == level
                            ):
                                latencies.append(time.perf_counter() - sent)
                                break
                latencies.sort()
                out["command_to_state_p50_ms"] = 1000 * statistics.median(latencies)
                out["command_to_state_p99_ms"] = 1000 * latencies[int(0.99 * (len(latencies) - 1))]
                out["rss_idle_mb"] = rss_mb(agent.pid)
                await client.publish(
                    f"{BASE}/set", b'{"action": "start", "duration_min": 5}', qos=1
                )
                await asyncio.sleep(10)
                out["rss_running_mb"] = rss_mb(agent.pid)
            finally:
                agent.terminate()
                agent.wait(timeout=10)
    finally:
        broker.stop()
    return out


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    results = asyncio.run(measure(args.samples))
    print(f"{'figure':<28} value")
    for key, value in results.items():
        print(f"{key:<28} {value:8.2f}")


if __name__ == "__main__":
    main()
