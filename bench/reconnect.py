"""Reconnect times and lost messages, over repeated broker and link faults.

For each fault, `--runs` times: an agent runs a session against a fresh mosquitto (through a TCP
proxy for the link faults); the fault strikes; while it lasts the session is stopped on the
device (an event the broker cannot take yet); the fault is removed. Measured: the time from the
fault's end to the agent's fresh `online`, whether the event made while away arrived, and
whether 20 commands sent afterwards were all answered.

Run: bench/run reconnect [--runs 5]. Prints a table (keepalive 2 s, reconnect backoff
capped at 2 s, as in the fault tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from bridge.agent import Agent
from bridge.broker import Mosquitto
from bridge.config import load_settings
from bridge.service import serving
from device.control.massager import Action, Command
from testkit.proxy import Proxy

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

    async def first(
        self, topic: str, match: Callable[[bytes], bool], after: float, within: float = 30
    ) -> float:
        """When the first message on `topic` since `after` matching `match` arrived."""
        async with asyncio.timeout(within):
            while True:
                for t, top, p in self.seen:
                    if t >= after and top == topic and match(p):
                        return t
                self.new.clear()
                await self.new.wait()


class Faulty:
    """A broker, a proxy in front of it, and a watcher connected to the broker directly."""

    def __init__(self, broker: Mosquitto, proxy: Proxy) -> None:
        self.broker = broker
        self.proxy = proxy
        self.client: aiomqtt.Client | None = None
        self.watcher: Watcher | None = None
        self.ended = 0.0  # when the fault was removed
        self._pump: asyncio.Task[None] | None = None

    async def watch(self) -> Watcher:
        """(Re)connect the watcher to the current broker."""
        await self.unwatch()
        self.client = aiomqtt.Client("127.0.0.1", self.broker.port, keepalive=60)
        await self.client.__aenter__()
        await self.client.subscribe(f"{BASE}/#", qos=1)
        self.watcher = Watcher(self.client)
        self._pump = asyncio.create_task(self.watcher.pump())
        return self.watcher

    async def unwatch(self) -> None:
        """Disconnect the watcher."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._pump
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.__aexit__(None, None, None)
        self.client = self.watcher = self._pump = None


Fault = Callable[[Faulty], Coroutine[Any, Any, None]]


async def kill_restart(f: Faulty) -> None:
    """SIGKILL the broker, start a new one on the same port 2 s later."""
    f.broker.kill()
    await f.unwatch()
    await asyncio.sleep(2.0)
    folder = Path(tempfile.mkdtemp(prefix="legwave-bench-"))
    f.broker = Mosquitto(port=f.broker.port, folder=folder).start()
    f.ended = time.monotonic()
    await f.watch()  # before the agent's next attempt: the queued event must be seen


async def freeze(f: Faulty) -> None:
    """SIGSTOP the broker for 6 s."""
    f.broker.freeze()
    await asyncio.sleep(6.0)
    f.broker.thaw()
    f.ended = time.monotonic()


async def blackhole(f: Faulty) -> None:
    """Forward nothing for 6 s, keeping both sockets open."""
    f.proxy.set("blackhole")
    await asyncio.sleep(6.0)
    f.proxy.set("pass")
    f.ended = time.monotonic()


async def reset(f: Faulty) -> None:
    """Abort the connection with a TCP reset."""
    f.ended = time.monotonic()
    f.proxy.reset()


FAULTS: dict[str, Fault] = {
    "broker killed (SIGKILL), restarted after 2 s": kill_restart,
    "broker frozen 6 s (SIGSTOP, past the keepalive)": freeze,
    "link blackholed 6 s": blackhole,
    "link reset (TCP RST)": reset,
}


async def _track(agent: Agent, ups: list[float], up: asyncio.Event) -> None:
    """Note every moment the agent (re)connects."""
    was = agent.connected.is_set()
    while True:
        now = agent.connected.is_set()
        if now and not was:
            ups.append(time.monotonic())
            up.set()
        was = now
        await asyncio.sleep(0.005)


async def one_run(fault: Fault, result: Result) -> None:
    """One agent, one broker, one fault; adds to `result`."""
    folder = Path(tempfile.mkdtemp(prefix="legwave-bench-"))
    f = Faulty(Mosquitto(folder=folder).start(), Proxy(0))
    try:
        async with Proxy(f.broker.port) as proxy:
            f.proxy = proxy
            await f.watch()
            settings = load_settings(
                None,
                device_id="lwtest",
                state_dir=folder / "state",
                mqtt={
                    "host": "127.0.0.1",
                    "port": proxy.port,
                    "keepalive_s": 2,
                    "reconnect_max_s": 2,
                },
            )
            async with serving(settings, host="127.0.0.1", port=proxy.port) as agent:
                await asyncio.wait_for(agent.connected.wait(), 15)
                agent.runner.submit(Command(action=Action.START))
                ups: list[float] = []
                up = asyncio.Event()
                tracker = asyncio.create_task(_track(agent, ups, up))
                task = asyncio.create_task(fault(f))
                made_event = False
                while not task.done():
                    if not agent.connected.is_set() and not made_event:
                        agent.runner.submit(Command(action=Action.STOP))  # away: it must wait
                        made_event = True
                    await asyncio.sleep(0.01)
                await task
                ended = f.ended
                async with asyncio.timeout(30):
                    while not [t for t in ups if t >= ended]:
                        up.clear()
                        await up.wait()
                tracker.cancel()
                result.reconnect_s.append(min(t for t in ups if t >= ended) - ended)
                watcher, client = f.watcher, f.client
                if watcher is None or client is None:
                    raise RuntimeError("the watcher is not connected")
                if made_event:
                    result.events_made += 1
                    with contextlib.suppress(TimeoutError):
                        await watcher.first(
                            f"{BASE}/event",
                            lambda p: json.loads(p)["event_type"] == "session_stopped",
                            0.0,
                            within=10,
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
            await f.unwatch()
    finally:
        f.broker.stop()


async def run(runs: int) -> list[Result]:
    """Every fault, `runs` times."""
    results = []
    for name, fault in FAULTS.items():
        result = Result(name)
        for _ in range(runs):
            await one_run(fault, result)
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
