"""Reconnect times and lost messages, over repeated broker and link faults.

For each fault, `--runs` times: an agent runs a session against a fresh mosquitto (through a TCP
proxy for the link faults); the fault strikes; while it lasts the session is stopped on the
device (an event the broker cannot take yet); the fault is removed. Measured: the time from the
fault's end to the agent's fresh `online`, whether the event made while away arrived, and
whether 20 commands sent afterwards were all answered.

Run: python bench/reconnect.py [--runs 5]. Prints a table (keepalive 2 s, reconnect backoff
capped at 2 s, as in the fault tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt

from bridge.broker import Mosquitto
from device.control.massager import Action, Command
from tests.faults.proxy import Proxy
from tests.integration.conftest import agent_settings, running_agent

BASE = "legwave/lwtest"


@dataclass
class Result:
    """One fault's runs."""

    name: str
    reconnect_s: list[float] = field(default_factory=list)
    events_made: int = 0
    events_seen: int = 0
    commands_sent: int = 0
    commands_answered: int = 0


class Watcher:
    """Every message on the device's topics, with the time it arrived."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[tuple[float, str, bytes]] = []
        self.new = asyncio.Event()

    async def pump(self) -> None:
        """Record messages until cancelled."""
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else b""
            self.seen.append((time.monotonic(), m.topic.value, payload))
            self.new.set()

    async def first(self, topic: str, match: Callable[[bytes], bool], after: float) -> float:
        """When the first message on `topic` since `after` matching `match` arrived."""
        async with asyncio.timeout(30):
            while True:
                for t, top, p in self.seen:
                    if t >= after and top == topic and match(p):
                        return t
                self.new.clear()
                await self.new.wait()


Fault = Callable[[Mosquitto, Proxy], Coroutine[Any, Any, Mosquitto]]


async def kill_restart(broker: Mosquitto, proxy: Proxy) -> Mosquitto:
    """SIGKILL the broker, start a new one on the same port 2 s later."""
    broker.kill()
    await asyncio.sleep(2.0)
    folder = Path(tempfile.mkdtemp(prefix="legwave-bench-"))
    return Mosquitto(port=broker.port, folder=folder).start()


async def freeze(broker: Mosquitto, proxy: Proxy) -> Mosquitto:
    """SIGSTOP the broker for 6 s."""
    broker.freeze()
    await asyncio.sleep(6.0)
    broker.thaw()
    return broker


async def blackhole(broker: Mosquitto, proxy: Proxy) -> Mosquitto:
    """Forward nothing for 6 s, keeping both sockets open."""
    proxy.set("blackhole")
    await asyncio.sleep(6.0)
    proxy.set("pass")
    return broker


async def reset(broker: Mosquitto, proxy: Proxy) -> Mosquitto:
    """Abort the connection with a TCP reset."""
    proxy.reset()
    return broker


FAULTS: dict[str, Fault] = {
    "broker killed (SIGKILL), restarted after 2 s": kill_restart,
    "broker frozen 6 s (SIGSTOP, past the keepalive)": freeze,
    "link blackholed 6 s": blackhole,
    "link reset (TCP RST)": reset,
}


async def one_run(name: str, fault: Fault, result: Result) -> None:
    """One agent, one broker, one fault; adds to `result`."""
    folder = Path(tempfile.mkdtemp(prefix="legwave-bench-"))
    broker = Mosquitto(folder=folder).start()
    try:
        async with Proxy(broker.port) as proxy:
            settings = agent_settings(proxy.port, folder)
            async with running_agent(settings) as agent:
                await asyncio.wait_for(agent.connected.wait(), 15)
                agent.runner.submit(Command(action=Action.START))
                await asyncio.sleep(1.0)
                made_event = False
                task: asyncio.Task[Mosquitto] = asyncio.create_task(fault(broker, proxy))
                await asyncio.sleep(0.5 if name.startswith("link reset") else 1.0)
                if not agent.connected.is_set():  # away: stop locally, the event must wait
                    agent.runner.submit(Command(action=Action.STOP))
                    made_event = True
                broker = await task
                ended = time.monotonic()
                async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                    await client.subscribe(f"{BASE}/#", qos=1)
                    watcher = Watcher(client)
                    pump = asyncio.create_task(watcher.pump())
                    back = await watcher.first(
                        f"{BASE}/availability", lambda p: p == b"online", ended + 0.05
                    )
                    result.reconnect_s.append(back - ended)
                    if made_event:
                        result.events_made += 1
                        await watcher.first(
                            f"{BASE}/event",
                            lambda p: json.loads(p)["event_type"] == "session_stopped",
                            0.0,
                        )
                        result.events_seen += 1
                    for n in range(20):
                        body = json.dumps({"intensity": n % 7 + 1, "transaction": n})
                        await client.publish(f"{BASE}/set", body, qos=1)
                        result.commands_sent += 1
                    await asyncio.sleep(2.0)
                    answered = {
                        json.loads(p).get("transaction")
                        for _, top, p in watcher.seen
                        if top == f"{BASE}/response"
                    }
                    result.commands_answered += len(answered & set(range(20)))
                    pump.cancel()
    finally:
        broker.stop()


async def run(runs: int) -> list[Result]:
    """Every fault, `runs` times."""
    results = []
    for name, fault in FAULTS.items():
        result = Result(name)
        for _ in range(runs):
            await one_run(name, fault, result)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run every fault `--runs` times and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.runs))
    print(
        "| fault | runs | reconnect median | worst | events made while away → delivered "
        "| commands after → answered |"
    )
    print("|---|---|---|---|---|---|")
    every: list[float] = []
    for r in results:
        every += r.reconnect_s
        print(
            f"| {r.name} | {len(r.reconnect_s)} | {statistics.median(r.reconnect_s):.2f} s | "
            f"{max(r.reconnect_s):.2f} s | {r.events_made} → {r.events_seen} | "
            f"{r.commands_sent} → {r.commands_answered} |"
        )
    lost = sum(
        r.events_made - r.events_seen + r.commands_sent - r.commands_answered for r in results
    )
    print(
        f"\nall faults: reconnect median {statistics.median(every):.2f} s, worst "
        f"{max(every):.2f} s; messages lost: {lost}"
    )
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
