"""Random command and fault sequences: the safety invariants hold at every tick."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.backends.sim import FaultInjection, SimFault
from device.backends.sim.faults import WIRING_FAULTS
from device.control.massager import Action, CommandRejectedError, Status
from device.harness import SimulatedDevice as Rig
from device.settings import Heat, Mode

HARD_LIMIT = 120.0
VENT_WITHIN_S = 10.0  # 5 s to notice a stuck exhaust, then it vents through the manifold
HOT_C = 43.0
HOT_FOR_S = 10.0

commands = st.one_of(
    st.sampled_from(list(Action)).map(lambda a: {"action": a}),
    st.integers(1, 7).map(lambda v: {"intensity": v}),
    st.sampled_from(list(Mode)).map(lambda v: {"mode": v.value}),
    st.sampled_from(list(Heat)).map(lambda v: {"heat": v.value}),
    st.integers(5, 10).map(lambda v: {"duration_min": v}),
    st.just({"action": Action.START, "preset": "warm_up"}),
)
# Faults of a device at work. Wiring mistakes are the self-test's and the calibration's to find
# before any session (tests/device/test_selftest.py); a Pi backend starts none until they pass.
faults = st.sampled_from(
    [f for f in SimFault if f is not SimFault.PROCESS_CRASH and f not in WIRING_FAULTS]
)
steps = st.lists(
    st.tuples(st.floats(0.1, 40.0), st.one_of(commands, faults)),
    min_size=1,
    max_size=12,
)


class Watch:
    """Checks the invariants after every tick."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.hot_since: float | None = None

    def run(self, seconds: float) -> None:
        rig = self.rig
        for _ in range(round(seconds / rig.runner.period)):
            rig.tick()
            self.check()

    def check(self) -> None:
        rig = self.rig
        physics = rig.sim.physics
        assert max(rig.pressures) <= HARD_LIMIT
        hottest = max(p.temperature for p in physics.pads)
        if hottest > HOT_C:
            self.hot_since = rig.now if self.hot_since is None else self.hot_since
            assert rig.now - self.hot_since <= HOT_FOR_S, f"{hottest:.1f} °C for too long"
        else:
            self.hot_since = None
        if rig.status is Status.FAULT:
            assert rig.orders.pump == 0.0 and not rig.orders.heater_supply
        if rig.status not in (Status.RUNNING, Status.SELF_TEST):  # the self-test tests them
            assert not rig.orders.heater_supply and rig.orders.vibration == 0.0


@pytest.mark.untraced
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(plan=steps, seed=st.integers(0, 2**16))
def test_invariants_hold_under_random_commands_and_faults(
    plan: list[tuple[float, dict[str, Any] | SimFault]], seed: int
) -> None:
    rig = Rig(seed=seed)
    watch = Watch(rig)
    for wait, what in plan:
        watch.run(wait)
        if isinstance(what, SimFault):
            rig.sim.inject(
                FaultInjection.parse(what.value, zones=list(rig.device.zones), default_at_s=rig.now)
            )
            continue
        changes = dict(what)
        action = changes.pop("action", None)
        try:
            rig.send(action, **changes)
        except CommandRejectedError as exc:
            assert exc.code in {"invalid", "fault_latched", "not_running", "not_paused", "busy"}
            continue
        if action in (Action.STOP, Action.VENT):
            # stop always vents: nothing pumps or heats again, the sleeves are down in time
            assert rig.status not in (Status.FIT_CHECK, Status.RUNNING, Status.PAUSED)
            end = rig.now + VENT_WITHIN_S
            while rig.now < end:
                watch.run(rig.runner.period)
                assert rig.sim.physics.pump_duty == 0.0
                assert not rig.sim.physics.heater_supply
            assert max(rig.pressures) < 5.0, (rig.pressures, rig.events)


@pytest.mark.untraced
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(at_s=st.floats(0.0, 300.0), heat=st.sampled_from([Heat.LOW, Heat.MEDIUM, Heat.HIGH]))
def test_a_runaway_heater_never_stays_hot(at_s: float, heat: Heat) -> None:
    rig = Rig(seed=int(at_s))
    rig.sim.inject(FaultInjection(SimFault.HEATER_RUNAWAY, at_s=at_s, target=0))
    rig.send(Action.START, heat=heat.value, duration_min=8)
    watch = Watch(rig)
    end = rig.now + 8 * 60.0  # the session's own length: the trip must come before
    while rig.status is not Status.FAULT and rig.now < end:
        watch.run(1.0)  # the watch checks every tick
    watch.run(60.0)  # and the pads cool, and stay so
    assert rig.status is Status.FAULT
    assert max(p.temperature for p in rig.sim.physics.pads) < HOT_C + 0.5
