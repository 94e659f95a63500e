"""Integration fixtures: a real mosquitto per test, and the agent running in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from bridge.agent import Agent
from bridge.broker import BrokerUnavailableError, Mosquitto
from bridge.config import AgentSettings, load_settings
from bridge.service import serving

HANG_GUARD_S = 60.0
"""How long a test waits for an answer before it calls the run hung: long, because on a machine
whose cores are all busy (and with coverage tracing the agent) an answer can take seconds;
how fast answers come is the benchmarks' figure."""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    try:
        b = Mosquitto(folder=tmp_path).start()
    except BrokerUnavailableError as exc:  # pragma: no cover - scripts/test installs mosquitto
        pytest.skip(str(exc))
    yield b
    b.stop()


def agent_settings(broker: Mosquitto | int, tmp_path: Path, **overrides: Any) -> AgentSettings:
    """Settings for an agent against a broker (or any port, e.g. a proxy's) on 127.0.0.1."""
    port = broker if isinstance(broker, int) else broker.port
    return load_settings(
        None,
        device_id="lwtest",
        state_dir=tmp_path / "state",
        mqtt={"host": "127.0.0.1", "port": port, "keepalive_s": 2, "reconnect_max_s": 2},
        **overrides,
    )


@asynccontextmanager
async def running_agent(settings: AgentSettings) -> AsyncIterator[Agent]:
    """The device and its agent, running until the block ends."""
    async with serving(
        settings, host=settings.mqtt.host or "127.0.0.1", port=settings.mqtt.port
    ) as agent:
        yield agent


async def eventually(condition: Any, timeout: float, what: str) -> None:
    """Poll `condition` without blocking the event loop, for what has no event to wait on."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - counters have no event to wait on
            await asyncio.sleep(0.05)
    assert condition(), what


class Observer:
    """A plain MQTT client that records what it sees and can send commands."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[tuple[str, bytes, bool]] = []
        self._new = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            async with self._new:
                self.seen.append((m.topic.value, payload, m.retain))
                self._new.notify_all()

    async def wait_for(
        self, topic: str, predicate: Any = None, timeout: float = HANG_GUARD_S
    ) -> bytes:
        """The first message (seen before or after now) on `topic` satisfying `predicate`."""

        def match() -> bytes | None:
            for t, p, _ in self.seen:
                if t == topic and (predicate is None or predicate(p)):
                    return p
            return None

        async with asyncio.timeout(timeout), self._new:
            while (found := match()) is None:
                await self._new.wait()
            return found

    async def wait_for_topic_suffix(self, suffix: str, timeout: float = 10.0) -> bytes:
        """The first message on any topic ending in `suffix` (a device whose id is unknown)."""
        async with asyncio.timeout(timeout), self._new:
            while not (found := [p for t, p, _ in self.seen if t.endswith(suffix)]):
                await self._new.wait()
            return found[0]

    def forget(self) -> None:
        self.seen.clear()

    async def command(
        self, base: str, body: dict[str, Any], timeout: float = HANG_GUARD_S
    ) -> dict[str, Any]:
        await self.client.publish(f"{base}/set", json.dumps(body).encode(), qos=1)
        tx = body.get("transaction")
        raw = await self.wait_for(
            f"{base}/response", lambda p: json.loads(p).get("transaction") == tx, timeout
        )
        reply: dict[str, Any] = json.loads(raw)
        return reply

    async def state(
        self, base: str, predicate: Any, timeout: float = HANG_GUARD_S
    ) -> dict[str, Any]:
        raw = await self.wait_for(f"{base}/state", lambda p: predicate(json.loads(p)), timeout)
        out: dict[str, Any] = json.loads(raw)
        return out


@asynccontextmanager
async def observer(port: int, *topics: str) -> AsyncIterator[Observer]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"observer-{id(topics)}") as client:
        for t in topics:
            await client.subscribe(t, qos=1)
        obs = Observer(client)
        task = asyncio.create_task(obs._pump())
        try:
            yield obs
        finally:
            task.cancel()
