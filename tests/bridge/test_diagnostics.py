"""`…/diagnostics`: the control loop's last minute, the host and the broker, every minute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.agent import DIAGNOSTICS_EVERY_S, Agent
from bridge.config import load_settings
from bridge.diagnostics import cpu_temperature_c, lateness_summary
from bridge.service import build


def test_the_99th_percentile_and_the_worst_in_milliseconds() -> None:
    assert lateness_summary([]) == (None, None)
    lateness = [0.0001 * k for k in range(1, 101)]  # 0.1 … 10 ms
    assert lateness_summary(lateness) == (9.9, 10.0)
    assert lateness_summary([-0.0004, -0.0002]) == (0.0, 0.0)  # early is on time


@pytest.mark.parametrize("n", [1, 2, 99, 100, 101, 3000])
def test_only_the_top_percent_is_ordered_and_the_percentile_is_the_sorted_ones(n: int) -> None:
    import math
    import random

    rng = random.Random(n)
    lateness = [rng.uniform(-0.001, 0.02) for _ in range(n)]
    ordered = sorted(lateness)
    p99 = ordered[math.ceil(0.99 * n) - 1]
    expected = (round(1000 * max(p99, 0.0), 2), round(1000 * max(ordered[-1], 0.0), 2))
    assert lateness_summary(lateness) == expected


def zone(root: Path, n: int, kind: str, millidegrees: str) -> None:
    folder = root / f"thermal_zone{n}"
    folder.mkdir(parents=True)
    (folder / "type").write_text(kind + "\n")
    (folder / "temp").write_text(millidegrees + "\n")


def test_the_cpu_temperature_comes_from_the_cpu_zone(tmp_path: Path) -> None:
    assert cpu_temperature_c(tmp_path) is None  # no thermal zones: a VM, a container
    zone(tmp_path, 0, "acpitz", "27800")
    assert cpu_temperature_c(tmp_path) == 27.8  # the only one
    zone(tmp_path, 10, "cpu-thermal", "51234")  # a Pi's
    assert cpu_temperature_c(tmp_path) == 51.2
    (tmp_path / "thermal_zone10" / "temp").write_text("garbage")
    assert cpu_temperature_c(tmp_path) is None


def sent(agent: Agent) -> list[dict[str, Any]]:
    return [
        json.loads(m.payload) for m in agent.outbox.take() if m.topic == agent.topics.diagnostics
    ]


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    return build(load_settings(None, state_dir=tmp_path), host="127.0.0.1", port=1)


def test_a_minute_of_the_control_loop_then_the_next(agent: Agent) -> None:
    runner = agent.runner
    t = runner.clock.now()
    runner.recent.extend([0.0002] * 2990 + [0.004] * 10)  # a minute at 50 Hz, ten ticks 4 ms late
    runner.ticks, runner.overruns = 3000, 2
    agent.after_tick(t)
    (first,) = sent(agent)
    assert first["ticks"] == 3000
    assert first["lateness_p99_ms"] == 0.2 and first["lateness_max_ms"] == 4.0
    assert first["late_ticks"] == 2
    assert first["connected"] is True and first["reconnects"] == 0
    agent.after_tick(t + DIAGNOSTICS_EVERY_S / 2)
    assert sent(agent) == []  # once a minute
    runner.recent.extend([0.0003] * 600)
    runner.ticks += 600  # an idle minute at 10 Hz
    agent.after_tick(t + DIAGNOSTICS_EVERY_S)
    (second,) = sent(agent)
    assert second["ticks"] == 600 and second["lateness_max_ms"] == 0.3
    assert second["started_at"] == first["started_at"]


def test_every_connection_says_it_at_once_with_the_reconnects(agent: Agent) -> None:
    agent.after_tick(agent.runner.clock.now())
    sent(agent)
    agent.stats.connects = 3  # two reconnections
    agent.announce()
    (body,) = sent(agent)
    assert body["reconnects"] == 2
