"""The self-test through MQTT: the command starts it, `…/selftest` says what it does and did, and
the report outlives the agent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bridge.broker import Mosquitto
from bridge.discovery import device_payload
from device.store import Store
from tests.integration.conftest import agent_settings, observer, running_agent

BASE = "legwave/lwtest"


def test_the_command_starts_it_the_topic_follows_it_and_stop_ends_it(
    broker: Mosquitto, tmp_path: Path
) -> None:
    settings = agent_settings(broker, tmp_path)

    async def scenario() -> None:
        async with (
            observer(broker.port, f"{BASE}/#", "homeassistant/#") as obs,
            running_agent(settings) as agent,
        ):
            raw = await obs.wait_for(f"{BASE}/selftest")
            assert json.loads(raw) == {"result": "never_run"}
            components = device_payload(agent.info)["components"]
            assert components["lwtest_selftest"]["payload_press"] == '{"action": "selftest"}'
            assert components["lwtest_selftest_result"]["state_topic"] == f"{BASE}/selftest"

            reply = await obs.command(BASE, {"action": "selftest", "transaction": 7})
            assert reply["status"] == "ok", reply
            assert reply["state"]["status"] == "self_test"
            running = json.loads(
                await obs.wait_for(
                    f"{BASE}/selftest", lambda p: json.loads(p).get("step") == "foot: filling"
                )
            )
            assert running["result"] == "running"
            refused = await obs.command(BASE, {"action": "start", "transaction": 8})
            assert refused["status"] == "error"
            assert "a self-test is running" in refused["error"]["message"]

            reply = await obs.command(BASE, {"action": "stop", "transaction": 9})
            assert reply["status"] == "ok"
            done = json.loads(
                await obs.wait_for(
                    f"{BASE}/selftest", lambda p: json.loads(p)["result"] == "aborted"
                )
            )
            assert done["aborted"] == "stop command"
            assert done["finished_at"]
            events = [json.loads(p) for t, p, _ in obs.seen if t == f"{BASE}/event"]
            kinds = [e["event_type"] for e in events]
            assert kinds[:2] == ["selftest_started", "selftest_finished"]
        # the report is kept, and said again (retained) by the next agent
        memory = Store(settings.state_dir).load()
        assert memory.selftest is not None and memory.selftest["result"] == "aborted"
        async with (
            observer(broker.port, f"{BASE}/selftest") as late,
            running_agent(settings),
        ):
            raw = await late.wait_for(
                f"{BASE}/selftest", lambda p: json.loads(p)["result"] == "aborted"
            )
            assert json.loads(raw)["finished_at"] == done["finished_at"]

    asyncio.run(scenario())
