"""A command's way through the agent, on the agent's own clock and outbox (no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import aiomqtt
import pytest

from bridge.agent import Agent
from bridge.config import load_settings
from bridge.service import build
from bridge.transport import Incoming
from device.store import Memory


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    """An agent past its first tick, with its outbox emptied."""
    agent = build(load_settings(None, state_dir=tmp_path), host="127.0.0.1", port=1)
    agent.after_tick(agent.runner.clock.now())
    agent.outbox.take()
    return agent


@pytest.fixture
def handed(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> list[Memory]:
    """What the agent hands to its memory writer from now on."""
    memories: list[Memory] = []
    assert agent.store is not None
    monkeypatch.setattr(agent.store, "save_soon", memories.append)
    return memories


def command(agent: Agent, payload: bytes) -> None:
    agent.receive(Incoming(aiomqtt.Message(agent.topics.set, payload, 1, False, 1, None)))


def test_a_commands_state_leads_and_the_memory_follows_at_the_next_tick(
    agent: Agent, handed: list[Memory]
) -> None:
    """The state goes first; the memory writer is handed the change only at the next tick.

    Waking the writer thread while the state is on its way cost about half of a command's round
    trip (the two hand the interpreter back and forth); a tick later costs nothing but up to one
    period of a crash window, the same as any change the loop itself makes.
    """
    command(agent, b'{"intensity": 5, "transaction": "t1"}')
    sent = agent.outbox.take()
    assert sent[0].topic == agent.topics.state
    state = json.loads(sent[0].payload)
    assert state["intensity"] == 5
    (answer,) = (json.loads(m.payload) for m in sent if m.topic == agent.topics.response)
    assert answer["transaction"] == "t1"
    assert answer["state"] == state  # the one snapshot, queued and answered
    assert handed == []

    agent.after_tick(agent.runner.clock.now())
    assert [m.settings.intensity for m in handed] == [5]


def test_a_refused_command_hands_nothing_to_the_memory(agent: Agent, handed: list[Memory]) -> None:
    command(agent, b'{"intensity": 99}')
    (answer,) = (json.loads(m.payload) for m in agent.outbox.take())
    assert answer["status"] == "error" and answer["error"]["field"] == "intensity"
    agent.after_tick(agent.runner.clock.now())
    assert handed == []
