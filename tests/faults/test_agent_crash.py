"""kill -9 the agent mid-session: the sleeves vent by the wiring, and a restart remembers.

The agent drives a simulated board in another process (`legwave plant`) through the Pi
backends' parts and drivers; the plant, like the kernel, releases the agent's lines when its
process dies.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bridge.broker import Mosquitto
from device.store import Store
from tests.faults.conftest import BASE, Process, agent_env, seed_memory, status, wait_until
from tests.integration.conftest import observer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


def test_kill_9_mid_session_vents_the_sleeves_and_the_restart_records_interrupted(
    broker: Mosquitto, plant: Path, tmp_path: Path
) -> None:
    seed_memory(tmp_path, sessions_completed=7, therapy_s_total=4200.0)
    env = agent_env(broker.port, tmp_path, LEGWAVE_BACKEND="plant")

    async def scenario() -> None:
        async with observer(broker.port, f"{BASE}/#") as obs:
            agent = Process(["run"], env, tmp_path / "agent.log")
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online", 30)
            reply = await obs.command(
                BASE, {"action": "start", "intensity": 5, "duration_min": 30, "transaction": 1}
            )
            assert reply["status"] == "ok", reply
            await asyncio.to_thread(
                wait_until, lambda: max(status(plant)["pressure_mmhg"]) > 15, 60, "inflating"
            )
            session = reply["state"]["session_id"]
            assert status(plant)["pump"] > 0  # pumping when it dies

            obs.forget()
            agent.kill9()
            await asyncio.to_thread(
                wait_until,
                lambda: max(status(plant)["pressure_mmhg"]) < 5.0,
                15.0,  # a hang guard: how fast they vent is the simulator's physics
                "sleeves vented after the agent died",
            )
            after = status(plant)
            assert after["claimed"] == [] and after["pump"] == 0.0
            assert all(after["exhaust_open"]) and not after["heater_supply"]
            # the broker says what happened: the last will, because the loss was unclean
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"offline", 10)

            obs.forget()
            again = Process(["run"], env, tmp_path / "agent.log")
            try:
                event = await obs.wait_for(
                    f"{BASE}/event",
                    lambda p: json.loads(p).get("end_reason") == "interrupted",
                    30,
                )
                assert json.loads(event)["session_id"] == session
                state = await obs.state(BASE, lambda s: s["status"] == "idle")
                assert state["intensity"] == 5 and state["duration_min"] == 30  # settings kept
                assert state["sessions_completed"] == 7  # counters kept
                assert state["therapy_minutes_total"] >= 70.0  # 4200 s + the interrupted run
                assert max(status(plant)["pressure_mmhg"]) < 5.0  # nothing restarted by itself
            finally:
                assert again.stop() == 0
        memory = Store(tmp_path / "state").load()
        assert [(e.id, e.end_reason) for e in memory.history] == [(session, "interrupted")]
        assert memory.active is None

    asyncio.run(scenario())
