"""A flood of malformed, oversize and valid commands: the agent acts on a few, answers and logs
sparingly, keeps every control deadline and its memory, and `stop` still wins."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import subprocess
from pathlib import Path

import pytest

from bridge.broker import Mosquitto
from testkit.flooder import flooder_command
from tests.integration.conftest import agent_settings, eventually, observer, running_agent

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]
BASE = "legwave/lwtest"
FLOOD_S = 10.0
PER_S = 1_000


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_ten_thousand_bad_commands_at_a_thousand_a_second(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with (
            running_agent(agent_settings(broker, tmp_path)) as agent,
            observer(broker.port, f"{BASE}/response") as user,
        ):
            await asyncio.wait_for(agent.connected.wait(), 15)
            await asyncio.sleep(0.5)
            rss_before = rss_mb()
            flooder = asyncio.create_task(  # its own client, as on a network
                asyncio.to_thread(
                    run_flooder, broker.port, f"{BASE}/set", rate=PER_S, seconds=FLOOD_S
                )
            )
            await asyncio.sleep(FLOOD_S / 2)
            # in the middle of it, a person presses stop: it must get through
            await user.client.publish(
                f"{BASE}/set", json.dumps({"action": "stop", "transaction": "stop-now"}), qos=1
            )
            sent = (await flooder)["sent"]
            assert sent >= 0.9 * FLOOD_S * PER_S
            await asyncio.sleep(2.0)
            # never the 5 late ticks in a row that trip loop_overrun (how late the ticks were
            # under a flood is a benchmark's figure: bench/flood.py)
            assert agent.massager.fault is None
            responses = [json.loads(p) for t, p, _ in user.seen if t == f"{BASE}/response"]
            # stop got through the flood, and was answered
            stops = [r for r in responses if r.get("transaction") == "stop-now"]
            assert len(stops) == 1 and stops[0]["status"] == "ok"
            # only a few were acted on and answered; the pace is the token bucket's and the log
            # limiter's, tested on a virtual clock (tests/bridge/test_ratelimit.py)
            acted = agent.stats.commands - agent.stats.rate_limited
            assert 1 <= acted < sent / 10
            limited = [r for r in responses if "rate_limited" in json.dumps(r.get("error"))]
            assert 1 <= len(limited) < sent / 100
            assert len(responses) < sent / 10
            # memory did not grow with the flood
            assert rss_mb() - rss_before < 30.0
            assert len(agent.outbox) < 100

    with caplog.at_level(logging.WARNING, logger="bridge.agent"):
        asyncio.run(scenario())
    flood_lines = [r for r in caplog.records if "too many commands" in r.getMessage()]
    assert 1 <= len(flood_lines) <= 3  # once per 10 s, with the count of what it held back
    rejected_lines = [r for r in caplog.records if "rejected command" in r.getMessage()]
    assert len(rejected_lines) <= 20


def run_flooder(
    port: int, topic: str, *, rate: float, seconds: float, payload: str | None = None
) -> dict[str, float]:
    """Run the flooder against `topic`; what it sent."""
    command = flooder_command(port, topic, rate=rate, seconds=seconds, payload=payload)
    out = subprocess.run(command, capture_output=True, check=True, timeout=60).stdout
    result: dict[str, float] = json.loads(out)
    return result


def test_a_flood_of_stops_is_applied_in_full_and_answered_and_logged_within_bounds(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with (
            running_agent(agent_settings(broker, tmp_path)) as agent,
            observer(broker.port, f"{BASE}/response") as obs,
        ):
            await asyncio.wait_for(agent.connected.wait(), 15)
            reply = await obs.command(BASE, {"action": "start", "transaction": "start"})
            assert reply["status"] == "ok"
            stops = await asyncio.to_thread(
                run_flooder,
                broker.port,
                f"{BASE}/set",
                rate=2000,
                seconds=3.0,
                payload='{"action": "stop"}',
            )
            await eventually(
                lambda: agent.stats.urgent == stops["sent"], 30, "every stop reached the agent"
            )
            assert agent.massager.status.value in ("venting", "idle")
            # every one was applied (none rate-limited away), and only a few answered: how many
            # a second is the answer budget's, tested on a virtual clock (tests/bridge)
            assert agent.stats.rate_limited == 0
            answered = agent.stats.urgent - agent.stats.unanswered
            assert 1 <= answered < stops["sent"] / 10

    with caplog.at_level(logging.INFO, logger="bridge.agent"):
        asyncio.run(scenario())
    stop_lines = [r for r in caplog.records if "stop" in r.getMessage()]
    assert 1 <= len(stop_lines) <= 8  # 6,000 stops: a few lines, with how many were held back


def test_a_flood_of_offline_is_answered_once_a_second_and_pushes_nothing_out(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """`offline` on the availability topic, again and again: not one `online` each, and the
    events and answers of the same moment all get out."""

    async def scenario() -> None:
        async with (
            running_agent(agent_settings(broker, tmp_path)) as agent,
            observer(broker.port, f"{BASE}/response", f"{BASE}/availability") as obs,
        ):
            await asyncio.wait_for(agent.connected.wait(), 15)
            await obs.wait_for(f"{BASE}/availability", lambda p: p == b"online")
            obs.forget()
            flooder = asyncio.create_task(
                asyncio.to_thread(
                    run_flooder,
                    broker.port,
                    f"{BASE}/availability",
                    rate=3000,
                    seconds=3.0,
                    payload="offline",
                )
            )
            replies = [
                await obs.command(BASE, {"intensity": 1 + i % 7, "transaction": i})
                for i in range(30)
            ]
            sent = (await flooder)["sent"]

            def heard() -> list[bytes]:
                return [p for t, p, _ in obs.seen if t == f"{BASE}/availability"]

            await eventually(lambda: heard().count(b"offline") == sent, 30, "every offline seen")
            await eventually(lambda: heard()[-1] == b"online", 30, "online the last word")
            assert [r["transaction"] for r in replies] == list(range(30))
            assert agent.stats.wills_contradicted == sent
            # contradicted in a few coalesced `online`s, not one each (the pace: a virtual-clock
            # test in tests/bridge)
            assert 1 <= heard().count(b"online") < sent / 100
            assert agent.outbox.dropped == 0

    asyncio.run(scenario())
