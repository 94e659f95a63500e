"""A state directory that a bad night left behind: the agent starts, keeps what it cannot use,
and says what happened. A real agent process each time."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bridge.broker import Mosquitto
from tests.faults.conftest import BASE, Process, agent_env, seed_memory
from tests.integration.conftest import observer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]
MEMORY = {"version": 1, "sessions_completed": 12, "therapy_s_total": 3600.0}


def first_state(port: int, tmp_path: Path, **env: str) -> tuple[dict[str, Any], str]:
    """Start the agent on this state directory; its first idle state (parsed strictly) and log."""
    agent = Process(["run"], agent_env(port, tmp_path, **env), tmp_path / "agent.log")

    async def state() -> bytes:
        async with observer(port, "legwave/+/state") as obs:
            return await obs.wait_for_topic_suffix("/state", 30)

    try:
        raw = asyncio.run(state())
    finally:
        assert agent.stop() == 0
    strict: dict[str, Any] = json.loads(raw, parse_constant=_refuse)
    return strict, agent.log()


def _refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def make_unreadable(path: Path) -> None:
    if os.geteuid() == 0:  # root reads any file whatever its mode: a link that loops, then
        path.unlink()
        path.symlink_to(path.name)
    else:
        path.chmod(0)


def test_an_unreadable_memory_is_kept_aside_never_overwritten(
    broker: Mosquitto, tmp_path: Path
) -> None:
    seed_memory(tmp_path, **MEMORY)
    memory = tmp_path / "state" / "memory.json"
    original = memory.read_text()
    make_unreadable(memory)
    state, log = first_state(broker.port, tmp_path)
    assert state["sessions_completed"] == 0  # started, from defaults
    aside = list(memory.parent.glob("memory.json.unreadable-*"))
    assert len(aside) == 1, sorted(p.name for p in memory.parent.iterdir())
    assert "cannot read it" in log and aside[0].name in log
    if os.geteuid() != 0:
        aside[0].chmod(0o600)
        assert aside[0].read_text() == original  # what it held is still there
    assert json.loads(memory.read_text())["sessions_completed"] == 0  # a new one beside it


def test_a_memory_file_that_is_not_utf8_is_kept_aside_and_the_agent_starts(
    broker: Mosquitto, tmp_path: Path
) -> None:
    seed_memory(tmp_path)
    memory = tmp_path / "state" / "memory.json"
    junk = b'{"version": 1, "sessions_completed": 3\xff\xfe}'
    memory.write_bytes(junk)
    state, log = first_state(broker.port, tmp_path)
    assert state["status"] == "idle"
    aside = list(memory.parent.glob("memory.json.broken-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == junk
    assert "not UTF-8" in log and "Traceback" not in log


def test_a_memory_holding_infinity_never_reaches_the_state(
    broker: Mosquitto, tmp_path: Path
) -> None:
    seed_memory(tmp_path)
    memory = tmp_path / "state" / "memory.json"
    memory.write_text('{"version": 1, "sessions_completed": 2, "therapy_s_total": Infinity}')
    state, log = first_state(broker.port, tmp_path)  # parsed as strict JSON
    assert state["therapy_minutes_total"] == 0.0
    assert list(memory.parent.glob("memory.json.broken-*"))
    assert "finite" in log


def test_an_invalid_device_id_file_is_kept_and_the_new_id_is_announced_in_the_log(
    broker: Mosquitto, tmp_path: Path
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "device_id").write_text("Bedroom Massager!\n")
    # no LEGWAVE_DEVICE_ID: the agent takes its id from the state directory
    env = agent_env(broker.port, tmp_path)
    del env["LEGWAVE_DEVICE_ID"]
    agent = Process(["run"], env, tmp_path / "agent.log")

    async def online() -> str:
        async with observer(broker.port, "legwave/+/availability") as obs:
            await obs.wait_for_topic_suffix("/availability", 30)
            return next(t for t, _, _ in obs.seen).split("/")[1]

    try:
        device_id = asyncio.run(online())
    finally:
        assert agent.stop() == 0
    assert (folder / "device_id").read_text().strip() == device_id
    kept = list(folder.glob("device_id.invalid-*"))
    assert len(kept) == 1 and kept[0].read_text() == "Bedroom Massager!\n"
    log = agent.log()
    assert "'Bedroom Massager!'" in log and kept[0].name in log and device_id in log
    assert "Home Assistant will see a new device" in log
    assert BASE not in log  # (the id came from the file, not from the test's environment)
