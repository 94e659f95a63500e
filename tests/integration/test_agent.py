"""The agent against a real mosquitto (started per test on a free port)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.broker import Mosquitto
from bridge.discovery import device_payload
from tests.integration.conftest import agent_settings, observer, running_agent

BASE = "legwave/lwtest"


def test_connect_announces_discovery_then_online_then_state(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with (
            observer(broker.port, "homeassistant/#", f"{BASE}/#") as obs,
            running_agent(agent_settings(broker, tmp_path)) as agent,
        ):
            raw = await obs.wait_for("homeassistant/device/lwtest/config")
            assert json.loads(raw) == device_payload(agent.info)
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            await obs.state(BASE, lambda s: s["status"] == "idle")
            order = [t for t, _, _ in obs.seen]
            assert order.index("homeassistant/device/lwtest/config") < order.index(
                f"{BASE}/availability"
            )
            assert order.index(f"{BASE}/availability") < order.index(f"{BASE}/state")
        # after a clean stop the retained availability says offline
        async with observer(broker.port, f"{BASE}/availability") as late:
            assert await late.wait_for(f"{BASE}/availability") == b"offline"

    asyncio.run(scenario())


def test_start_gets_ok_then_fit_check_then_running_and_stop_vents(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.agent")

    async def scenario() -> None:
        async with (
            observer(broker.port, f"{BASE}/#") as obs,
            running_agent(agent_settings(broker, tmp_path)),
        ):
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            reply = await obs.command(
                BASE, {"action": "start", "preset": "first_use", "transaction": 41}
            )
            assert reply["status"] == "ok" and reply["transaction"] == 41
            assert reply["state"]["status"] == "fit_check"
            await obs.state(BASE, lambda s: s["status"] == "fit_check")
            running = await obs.state(BASE, lambda s: s["status"] == "running", timeout=20)
            assert running["preset"] == "first_use" and running["session_id"]
            await obs.wait_for(
                f"{BASE}/event", lambda p: json.loads(p)["event_type"] == "session_started"
            )
            reply = await obs.command(BASE, {"action": "stop", "transaction": "s"})
            assert reply["status"] == "ok"
            idle = await obs.state(BASE, lambda s: s["status"] == "idle", timeout=10)
            assert max(idle["pressure_mmhg"].values()) < 5.0
            event = await obs.wait_for(
                f"{BASE}/event", lambda p: json.loads(p)["event_type"] == "session_stopped"
            )
            assert json.loads(event)["end_reason"] == "stopped"
            assert not any(r for t, _, r in obs.seen if t == f"{BASE}/event")  # never retained

    asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records if r.name == "bridge.agent"]
    assert "command start {'preset': 'first_use'}: session started" in said
    assert "command stop: session stopped" in said


BAD = [
    (b"{not json", "malformed", None),
    (b'{"intensity": "high"}', "invalid", "intensity"),
    (b'{"intensity": 9}', "invalid", "intensity"),
    (b'{"duration_min": 4}', "invalid", "duration_min"),
    (b'{"mode": "shake"}', "invalid", "mode"),
    (b'{"colour": "red"}', "invalid", "colour"),
    (b'{"action": "explode"}', "invalid", "action"),
    (b'{"zone_boost": "knee"}', "invalid", "zone_boost"),
    (b'{"preset": "sleepy"}', "invalid", "preset"),
    (b'{"power": "ON", "action": "stop"}', "invalid", "power"),
    (b"[1, 2]", "invalid", None),
    (b'{"action": "start", "ts": 1000}', "stale", "ts"),
    (b'{"action": "start", "pad": "' + b"x" * 5000 + b'"}', "too_large", None),
    (b'{"action": "pause"}', "not_running", None),
]


def test_every_kind_of_bad_input_gets_an_error_and_changes_nothing(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with (
            observer(broker.port, f"{BASE}/#") as obs,
            running_agent(agent_settings(broker, tmp_path)) as agent,
        ):
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            before = agent.massager.settings
            for payload, code, field in BAD:
                obs.forget()
                await obs.client.publish(f"{BASE}/set", payload, qos=1)
                reply = json.loads(await obs.wait_for(f"{BASE}/response"))
                assert reply["status"] == "error", payload
                assert reply["error"]["code"] == code, (payload, reply)
                if field is not None:
                    assert reply["error"]["field"] == field, (payload, reply)
                assert reply["error"]["message"]
            assert agent.massager.settings == before
            assert agent.massager.status.value == "idle"
            assert agent.stats.rejected == len(BAD)

    asyncio.run(scenario())


def test_a_retained_start_on_the_broker_does_not_start_a_session(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as c:
            await c.publish(f"{BASE}/set", b'{"action": "start"}', qos=1, retain=True)
        async with (
            observer(broker.port, f"{BASE}/#") as obs,
            running_agent(agent_settings(broker, tmp_path)) as agent,
        ):
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            await asyncio.sleep(1.0)
            assert agent.stats.ignored_retained == 1
            assert agent.massager.status.value == "idle"
            assert not any(t == f"{BASE}/response" for t, _, _ in obs.seen)

    asyncio.run(scenario())


def test_home_assistant_birth_triggers_a_re_announce(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            observer(broker.port, "homeassistant/device/#", f"{BASE}/#") as obs,
            running_agent(agent_settings(broker, tmp_path)) as agent,
        ):
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            obs.forget()
            sent = time.monotonic()
            await obs.client.publish("homeassistant/status", b"online", qos=1)
            await obs.wait_for("homeassistant/device/lwtest/config", timeout=8)
            waited = time.monotonic() - sent
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            await obs.wait_for(f"{BASE}/state")
            assert agent.stats.announces == 2
            assert 0.4 <= waited <= 6.0  # the 0.5-5 s jitter

    asyncio.run(scenario())


def test_get_republishes_the_state(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            observer(broker.port, f"{BASE}/state") as obs,
            running_agent(agent_settings(broker, tmp_path, state_interval_s=600)),
        ):
            await obs.wait_for(f"{BASE}/state")
            obs.forget()
            await obs.client.publish(f"{BASE}/get", b"", qos=1)
            await obs.wait_for(f"{BASE}/state", timeout=3)

    asyncio.run(scenario())


def test_mqtt5_response_topic_and_correlation_data_are_honoured(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with (
            running_agent(agent_settings(broker, tmp_path)) as agent,
            aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client,
        ):
            await asyncio.wait_for(agent.connected.wait(), 10)
            await client.subscribe("replies/me", qos=1)
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = "replies/me"
            props.CorrelationData = b"req-7"
            await client.publish(f"{BASE}/set", b'{"intensity": 2}', qos=1, properties=props)
            async with asyncio.timeout(5):
                async for m in client.messages:
                    assert m.topic.value == "replies/me"
                    assert getattr(m.properties, "CorrelationData", None) == b"req-7"
                    assert isinstance(m.payload, bytes)
                    assert json.loads(m.payload)["status"] == "ok"
                    break

    asyncio.run(scenario())


def test_the_session_survives_a_broker_kill_and_the_agent_comes_back(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async def scenario() -> None:
        settings = agent_settings(broker, tmp_path)
        async with running_agent(settings) as agent:
            async with observer(broker.port, f"{BASE}/#") as obs:
                await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
                await obs.command(BASE, {"action": "start", "transaction": 1})
                await obs.state(BASE, lambda s: s["status"] == "running", timeout=20)
            session = agent.massager.session
            broker.kill()
            ticks = agent.runner.ticks
            await asyncio.sleep(3.0)
            # the control loop never noticed: it kept ticking and the session kept running
            assert agent.runner.ticks - ticks >= 100
            assert agent.massager.status.value == "running"
            assert agent.massager.session is session
            assert not agent.connected.is_set()
            again = Mosquitto(port=broker.port, folder=tmp_path / "again")
            (tmp_path / "again").mkdir()
            again.start()
            try:
                async with observer(again.port, f"{BASE}/#") as obs:
                    await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online", timeout=15)
                    state = await obs.state(BASE, lambda s: s["status"] == "running")
                    assert state["session_id"] == session.id if session else False
                assert agent.stats.connects == 2
            finally:
                again.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"ON", "fit_check"),
        (b'{"power": "ON", "transaction": 7}', "fit_check"),
        (b'{"action": "start", "preset": "recovery"}', "fit_check"),
        (b'{"power": "OFF"}', "venting"),
        (b"vent", "venting"),
        (b"anything at all", "venting"),
        (b'{"action": "start", "intensity": 99}', "venting"),  # not a start it could do: a stop
    ],
)
def test_the_power_line_starts_on_on_and_stops_on_anything_else(
    broker: Mosquitto, tmp_path: Path, payload: bytes, status: str
) -> None:
    async def scenario() -> None:
        async with (
            observer(broker.port, f"{BASE}/response") as obs,
            running_agent(agent_settings(broker, tmp_path)) as agent,
        ):
            # both connections subscribed: a command sent before would reach no one
            await asyncio.wait_for(agent.connected.wait(), 10)
            await asyncio.wait_for(agent.power_line_connected.wait(), 10)
            if status == "venting":  # something to stop
                reply = await obs.command(BASE, {"action": "start", "transaction": "s"})
                assert reply["state"]["status"] == "fit_check"
                obs.forget()
            await obs.client.publish(f"{BASE}/power", payload, qos=1)
            raw = await obs.wait_for(f"{BASE}/response")
            assert json.loads(raw)["state"]["status"] == status
            if b"recovery" in payload:
                assert agent.massager.settings.preset == "recovery"

    asyncio.run(scenario())
