"""The soak's harness in the default run (a short seed); the real soak on demand.

``LEGWAVE_SOAK=1 scripts/test -m soak tests/faults/test_soak.py`` (or ``bench/run soak``) runs
30 simulated minutes per seed for LEGWAVE_SOAK_SEEDS seeds (default 20).
"""

from __future__ import annotations

import os

import pytest

from device.control.massager import Action, Command
from device.runner import Runner
from testkit.soak import soak

ON_DEMAND = os.environ.get("LEGWAVE_SOAK") == "1"
SEEDS = range(1, int(os.environ.get("LEGWAVE_SOAK_SEEDS", "20")) + 1) if ON_DEMAND else [1]


def test_a_short_soak_holds_every_invariant() -> None:
    report = soak(seed=8, minutes=8.0)
    assert report.violations == []
    assert report.commands > 10 and report.delivered > 10 and report.sessions >= 1
    assert report.max_pressure > 20.0  # it really squeezed


def test_the_soak_catches_a_device_that_ignores_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    submit = Runner.submit

    def deaf(self: Runner, command: Command) -> object:
        if command.action in (Action.STOP, Action.VENT):
            command = Command(changes=command.changes)  # the stop is lost
        return submit(self, command)

    monkeypatch.setattr(Runner, "submit", deaf)
    report = soak(seed=8, minutes=8.0)
    assert any("after a stop" in v or "after a vent" in v for v in report.violations)


@pytest.mark.soak
@pytest.mark.skipif(not ON_DEMAND, reason="the soak runs on demand (LEGWAVE_SOAK=1)")
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("seed", SEEDS)
def test_soak(seed: int) -> None:
    report = soak(seed=seed, minutes=30.0)
    assert report.violations == [], report.violations
