"""Attacks from the network on a real agent process, through a real mosquitto.

A message no MQTT client may answer, payloads of 100 MB, a flood faster than the agent can read:
the process stays up, the session goes on, `stop` and `vent` still act, memory and the log stay
bounded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.broker import BrokerUnavailableError, Mosquitto
from testkit.flooder import flooder_command
from tests.faults.conftest import BASE, Process, agent_env
from tests.integration.conftest import Observer, observer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]


@pytest.fixture
def open_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto with no packet size limit of its own: only the agent's protects it."""
    try:
        b = Mosquitto(folder=tmp_path, max_packet_bytes=0).start()
    except BrokerUnavailableError as exc:  # pragma: no cover - scripts/test installs mosquitto
        pytest.skip(str(exc))
    yield b
    b.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def online(obs: Observer) -> None:
    await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online", 30)


async def answered(obs: Observer, transaction: str, timeout: float = 10.0) -> dict[str, Any]:
    raw = await obs.wait_for(
        f"{BASE}/response", lambda p: json.loads(p).get("transaction") == transaction, timeout
    )
    reply: dict[str, Any] = json.loads(raw)
    return reply


async def start_session(obs: Observer, transaction: str = "start", line: str = "set") -> None:
    """Start a session: on `…/set`, or on the power line (which no flood on `…/set` starves)."""
    body = {"power": "ON", "transaction": transaction}
    await obs.client.publish(f"{BASE}/{line}", json.dumps(body).encode(), qos=1)
    reply = await answered(obs, transaction)
    assert reply["status"] == "ok", reply
    assert reply["state"]["status"] == "fit_check"


def attack(
    port: int,
    tmp_path: Path,
    scenario: Callable[[Process, Observer], Awaitable[None]],
    **env: str,
) -> str:
    """Run `scenario` against a new agent process; return its log once it stopped cleanly."""
    agent = Process(["run"], agent_env(port, tmp_path, **env), tmp_path / "agent.log")

    async def run() -> None:
        async with observer(port, f"{BASE}/response", f"{BASE}/availability") as obs:
            await online(obs)
            await scenario(agent, obs)

    try:
        asyncio.run(run())
    finally:
        assert agent.stop() == 0
    log = agent.log()
    assert "Traceback" not in log
    return log


def v5_publisher(port: int, name: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, identifier=name, protocol=aiomqtt.ProtocolVersion.V5)


def test_a_response_topic_nobody_can_publish_to_never_ends_the_agent(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario(agent: Process, obs: Observer) -> None:
        await start_session(obs)
        async with v5_publisher(broker.port, "attacker") as attacker:
            for i, topic in enumerate(
                ["legwave/x/#", "+", "a/+/b", f"{BASE}/set", f"{BASE}/power"] * 2
            ):
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.ResponseTopic = topic
                props.CorrelationData = b"c"
                body = {"intensity": 3, "transaction": f"hostile-{i}"}
                await attacker.publish(
                    f"{BASE}/set", json.dumps(body).encode(), qos=1, properties=props
                )
        await asyncio.sleep(1.0)
        assert agent.proc.poll() is None, agent.log()
        # the agent still serves: the hostile commands were applied, answered nowhere
        obs.forget()
        reply = await obs.command(BASE, {"intensity": 4, "transaction": "after"})
        assert reply["status"] == "ok"
        assert reply["state"]["status"] in ("fit_check", "running")
        assert reply["state"]["session_id"] is not None  # the session went on
        assert not [p for t, p, _ in obs.seen if b"hostile" in p]
        assert obs.seen[-1][0] != f"{BASE}/availability" or obs.seen[-1][1] == b"online"

    log = attack(broker.port, tmp_path, scenario)
    # one line says what happened (the rest of the burst is counted into the next one)
    assert log.count("where none can go") == 1, log


def test_payloads_of_100_mb_never_reach_the_agent(open_broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario(agent: Process, obs: Observer) -> None:
        await start_session(obs)
        await asyncio.sleep(1.0)
        before = rss_mb(agent.proc.pid)
        huge = b'{"intensity": "' + b"7" * (100 * 1024 * 1024) + b'"}'

        async def send(i: int) -> None:
            async with aiomqtt.Client(
                "127.0.0.1", open_broker.port, identifier=f"big-{i}", timeout=60
            ) as c:
                await c.publish(f"{BASE}/set", huge, qos=1, timeout=60)

        # one, then six at once (each read whole would cost the agent 100 MB, and its tick)
        await send(0)
        await asyncio.gather(*(send(i) for i in range(1, 7)))
        await asyncio.sleep(1.0)
        after = rss_mb(agent.proc.pid)
        assert agent.proc.poll() is None
        assert after - before < 20.0, (before, after)
        obs.forget()
        reply = await obs.command(BASE, {"intensity": 3, "transaction": "after"})
        assert reply["state"]["fault"] is None  # no loop_overrun, or anything else
        assert reply["state"]["status"] in ("fit_check", "running")

    attack(open_broker.port, tmp_path, scenario)


async def flood(port: int, rate: float, seconds: float) -> asyncio.subprocess.Process:
    """A flooder process on `…/set` (see testkit/flooder.py)."""
    command = flooder_command(port, f"{BASE}/set", rate=rate, seconds=seconds)
    return await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)


def test_a_stop_on_set_is_never_lost_in_a_flood_of_6000_a_second(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Before, the MQTT client's queue of 1,000 overflowed at this rate and lost the stop."""

    async def scenario(agent: Process, obs: Observer) -> None:
        sent = 0
        for i, action in enumerate(["stop", "vent"]):
            await asyncio.sleep(2.5)  # the rate limit refills after the last flood
            reply = await obs.command(
                BASE, {"action": "start", "duration_min": 30, "transaction": f"start-{i}"}
            )
            assert reply["status"] == "ok", reply
            flooder = await flood(broker.port, 6000, 3.0)
            await asyncio.sleep(1.5)
            body = {"action": action, "transaction": f"{action}-{i}"}
            await obs.client.publish(f"{BASE}/set", json.dumps(body).encode(), qos=1)
            reply = await answered(obs, f"{action}-{i}")
            assert reply["status"] == "ok"
            assert reply["state"]["status"] in ("venting", "idle")
            out, _ = await flooder.communicate()
            sent += json.loads(out)["sent"]
        assert sent >= 30_000

    log = attack(broker.port, tmp_path, scenario)
    assert len(log.splitlines()) < 80  # 36,000 junk commands: a few lines, not one each


def test_stop_and_vent_on_the_power_line_get_through_the_fastest_flood(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """As fast as this machine can send: the broker then drops every packet for the agent's
    main connection (mosquitto's outgoing queue is full); the power line has its own."""

    async def scenario(agent: Process, obs: Observer) -> None:
        flooder = await flood(broker.port, 0, 120.0)  # 0: as fast as it can, until told
        await asyncio.sleep(1.5)
        for i in range(3):
            await start_session(obs, f"on-{i}", line="power")
            action = "stop" if i % 2 == 0 else "vent"
            body = {"action": action, "transaction": f"{action}-{i}"}
            await obs.client.publish(f"{BASE}/power", json.dumps(body).encode(), qos=1)
            reply = await answered(obs, f"{action}-{i}")
            assert reply["status"] == "ok"
            assert reply["state"]["status"] in ("venting", "idle")
        assert flooder.returncode is None  # all of it during the flood
        flooder.terminate()
        out, _ = await flooder.communicate()
        # far more than the broker queues for a client (1,000): its queue for the main
        # connection overflowed. (How fast a flooder sends is the machine's business: over
        # 100,000 in this test on a quiet one, 97,280 with eight test workers on two cores.)
        assert json.loads(out)["sent"] >= 20_000
        # and after it (once the rate limit has refilled), the main connection serves again
        await asyncio.sleep(2.5)
        reply = await obs.command(BASE, {"intensity": 5, "transaction": "after"}, 30)
        assert reply["status"] == "ok"

    attack(broker.port, tmp_path, scenario)


def test_seated_mid_inflation_never_stalls_the_running_agent(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """A clumsy user: `seated` while every zone inflates towards 80 mmHg. Before, the pattern
    waited for 80 while the supervisor held 70, until `hold_too_long` vented 60 s later."""

    async def scenario(agent: Process, obs: Observer) -> None:
        start = {"action": "start", "mode": "squeeze", "intensity": 7, "transaction": "go"}
        assert (await obs.command(BASE, start))["status"] == "ok"
        await obs.client.subscribe(f"{BASE}/telemetry", qos=0)
        await obs.client.subscribe(f"{BASE}/state", qos=1)
        # the zone close to 80 mmHg, still inflating
        await obs.wait_for(
            f"{BASE}/telemetry", lambda p: json.loads(p)["pressure_mmhg"]["calf"] > 72, 60
        )
        obs.forget()
        reply = await obs.command(BASE, {"posture": "seated", "transaction": "seated"})
        assert reply["state"]["phase"] == "inflating"
        # within the pattern's own time (not the 60 s of hold_too_long) it holds, then vents
        await obs.state(BASE, lambda s: s["phase"] == "holding", 20)
        await obs.state(BASE, lambda s: s["phase"] == "venting", 20)
        targets = [json.loads(p)["target_mmhg"] for t, p, _ in obs.seen if t.endswith("/telemetry")]
        assert all(v is None or v <= 70.0 for t in targets for v in t.values())
        state = await obs.state(BASE, lambda s: True)
        assert state["fault"] is None

    # one zone and no soft start: 80 mmHg at the first squeeze, in a few seconds
    attack(
        broker.port,
        tmp_path,
        scenario,
        LEGWAVE_DEVICE__SOFT_START="false",
        LEGWAVE_DEVICE__ZONES='["calf"]',
    )
