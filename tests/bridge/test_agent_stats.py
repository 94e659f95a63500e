"""`…/stats`: the therapy numbers, from the memory the agent starts with and what it does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.agent import STATS_EVERY_S, Agent
from bridge.config import load_settings
from bridge.service import build
from device.control.massager import SessionRecord
from device.settings import SessionSettings
from device.store import Memory, SessionEntry, Store

NOW = datetime(2026, 12, 2, 21, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))


def record(days_ago: int, minutes: float, reason: str = "completed") -> SessionRecord:
    start = (NOW - timedelta(days=days_ago)).replace(hour=20).astimezone(UTC)
    return SessionRecord(
        id=f"s{days_ago}-{minutes}",
        started_at=start,
        settings=SessionSettings(duration_min=20),
        ended_at=start + timedelta(minutes=minutes),
        end_reason=reason,
        running_s=60.0 * minutes,
        peak_mmhg=40.0,
    )


def stats_sent(agent: Agent) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in agent.outbox.take() if m.topic == agent.topics.stats]


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Agent:
    """An agent whose memory holds three days in a row of sessions, at a fixed local time."""
    history = [record(2, 20), record(1, 20), record(0, 20), record(0, 4, "stopped")]
    Store(tmp_path).save(Memory(history=[SessionEntry.of(r) for r in history]))
    agent = build(load_settings(None, state_dir=tmp_path), host="127.0.0.1", port=1)
    monkeypatch.setattr(agent, "local_now", lambda: NOW)
    return agent


def test_the_numbers_are_there_from_the_start_retained(agent: Agent) -> None:
    agent.after_tick(agent.runner.clock.now())
    sent = [m for m in agent.outbox.take() if m.topic == agent.topics.stats]
    assert len(sent) == 1 and sent[0].retain
    body = json.loads(sent[0].payload)
    assert body["minutes_today"] == 24.0
    assert body["minutes_7d"] == 64.0
    assert body["sessions_week"] == 4  # Monday to Wednesday
    assert body["streak_days"] == 3
    assert body["adherence_pct"] == 10  # 3 days of 30
    assert body["last_session"]["end_reason"] == "completed"  # it ended last (20:20)


def test_a_session_ending_sends_the_new_numbers_at_once_and_nothing_twice(agent: Agent) -> None:
    clock = agent.runner.clock
    agent.after_tick(clock.now())
    stats_sent(agent)
    agent.after_tick(clock.now())
    assert stats_sent(agent) == []  # nothing changed, nothing sent
    agent.massager.history.append(record(0, 30))
    agent.after_tick(clock.now())
    (body,) = stats_sent(agent)
    assert body["minutes_today"] == 54.0
    assert body["last_session"]["minutes"] == 30.0


def test_a_new_day_is_noticed_within_a_minute(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = agent.runner.clock.now()
    agent.after_tick(t)
    stats_sent(agent)
    monkeypatch.setattr(agent, "local_now", lambda: NOW + timedelta(hours=3))  # 00:30 next day
    agent.after_tick(t + STATS_EVERY_S / 2)
    assert stats_sent(agent) == []  # not looked at again yet
    agent.after_tick(t + STATS_EVERY_S)
    (body,) = stats_sent(agent)
    assert body["day"] == "2026-12-03"
    assert body["minutes_today"] == 0.0
    assert body["streak_days"] == 3  # today is not over


def test_the_memory_keeps_a_sessions_peak_across_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save(Memory(history=[SessionEntry.of(record(0, 20))]))
    (entry,) = store.load().history
    assert entry.record().peak_mmhg == 40.0
    old = json.loads((tmp_path / "memory.json").read_text())
    del old["history"][0]["peak_mmhg"]  # a memory written before peaks were kept
    (tmp_path / "memory.json").write_text(json.dumps(old))
    (entry,) = Store(tmp_path).load().history
    assert entry.peak_mmhg == 0.0
