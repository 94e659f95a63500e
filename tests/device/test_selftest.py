"""The commissioning self-test on the simulator: it passes a sound device and names every wiring
mistake, at low pressure, with the supervisor checking every order."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.backends.sim import FaultInjection, SimFault
from device.control.massager import Action, CommandRejectedError, Status
from device.control.selftest import FILL_TARGET_MMHG
from device.harness import SimulatedDevice as Rig

ZONES = ["foot", "ankle", "calf", "upper_calf"]
SELFTEST_FAULTS = [
    SimFault.INLET_TUBES_SWAPPED,
    SimFault.SENSOR_CHANNELS_SWAPPED,
    SimFault.EXHAUST_INVERTED,
    SimFault.SENSOR_DEAD,
]
# what the report must say for each, and which zones it must name
SAYS = {
    SimFault.INLET_TUBES_SWAPPED: "inlet tubes of {a} and {b} are swapped",
    SimFault.SENSOR_CHANNELS_SWAPPED: (
        "sensor channels (or sensor tubes) of {a} and {b} are swapped"
    ),
    SimFault.EXHAUST_INVERTED: "{a}: fills only while its exhaust is told to open",
    SimFault.SENSOR_DEAD: "{a}'s sensor channel is dead",
}


class Peaks:
    """The highest true pressure of each zone while the test ran."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.values = [0.0] * len(rig.pressures)

    def __call__(self) -> bool:
        for i, p in enumerate(self.rig.pressures):
            self.values[i] = max(self.values[i], p)
        return self.rig.status is not Status.SELF_TEST


def run_selftest(rig: Rig) -> Peaks:
    rig.send(Action.SELFTEST)
    assert rig.status is Status.SELF_TEST
    peaks = Peaks(rig)
    assert rig.run_until(peaks, 300), rig.massager.selftest and rig.massager.selftest.step_name
    return peaks


def fault(kind: SimFault, zone: str) -> FaultInjection:
    return FaultInjection.parse(f"{kind.value}:{zone}", zones=ZONES, default_at_s=99)


def test_a_sound_device_passes_with_every_measurement_and_little_pressure() -> None:
    rig = Rig()
    peaks = run_selftest(rig)
    test = rig.massager.selftest
    assert test is not None
    report = test.report()
    assert report["result"] == "passed", report["problems"]
    assert rig.events == ["selftest_started", "selftest_finished"]
    assert 30 < report["duration_s"] < 180
    for zone in report["zones"].values():
        assert zone["passed"]
        assert 0 < zone["fill_s"] < 10
        assert zone["leak_mmhg_s"] < 0.5
        assert 0 < zone["vent_s"] < 3
    # bigger zones take longer to fill: the pump's flow against each zone's volume
    fills = [report["zones"][z]["fill_s"] for z in ZONES]
    assert fills == sorted(fills)
    heaters = report["heaters"].values()
    assert all(h["passed"] and h["supply_cuts_it"] and h["rise_c_s"] > 0 for h in heaters)
    assert max(peaks.values) < FILL_TARGET_MMHG
    assert rig.run_until(lambda: rig.status is Status.IDLE, 10)


@pytest.mark.parametrize("kind", SELFTEST_FAULTS, ids=str)
@pytest.mark.parametrize("zone", ["foot", "upper_calf"])
def test_each_wiring_fault_is_named(kind: SimFault, zone: str) -> None:
    rig = Rig(faults=[fault(kind, zone)])
    peaks = run_selftest(rig)
    test = rig.massager.selftest
    assert test is not None
    assert test.report()["result"] == "failed"
    i = ZONES.index(zone)
    a, b = (zone, ZONES[i + 1]) if i + 1 < len(ZONES) else (ZONES[i - 1], zone)
    expected = SAYS[kind].format(a=a if "{b}" in SAYS[kind] else zone, b=b)
    problems = test.every_problem()
    assert any(expected in p for p in problems), problems
    # no other zone is blamed
    blamed = {p.split(":")[0] for p in problems}
    assert blamed <= {a, b}, problems
    # a sensor that sees nothing lets its zone fill for the whole fill time: bounded, though
    assert max(peaks.values) < 40
    assert rig.status is Status.VENTING, rig.events


@pytest.mark.untraced
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(SELFTEST_FAULTS),
    zone=st.sampled_from(ZONES),
    seed=st.integers(0, 10_000),
)
def test_any_single_wiring_fault_fails_the_selftest(kind: SimFault, zone: str, seed: int) -> None:
    rig = Rig(faults=[fault(kind, zone)], seed=seed)
    run_selftest(rig)
    test = rig.massager.selftest
    assert test is not None
    assert not test.passed
    assert any(zone in p for p in test.every_problem())


@pytest.mark.untraced
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_sound_device_passes_whatever_the_noise(seed: int) -> None:
    rig = Rig(seed=seed)
    run_selftest(rig)
    test = rig.massager.selftest
    assert test is not None
    assert test.passed, test.every_problem()


def test_a_leaking_zone_is_reported_with_its_rate() -> None:
    rig = Rig(faults=[FaultInjection.parse("slow_leak:calf@0", zones=ZONES, default_at_s=0)])
    run_selftest(rig)
    test = rig.massager.selftest
    assert test is not None
    problems = test.every_problem()
    assert [p for p in problems if p.startswith("calf: loses") and "a leak" in p], problems


def test_stop_ends_a_selftest_and_the_device_vents() -> None:
    rig = Rig()
    rig.send(Action.SELFTEST)
    rig.run(8)
    assert rig.send(Action.STOP).message == "self-test stopped"
    assert rig.status is Status.VENTING
    test = rig.massager.selftest
    assert test is not None
    assert test.report()["result"] == "aborted"
    assert test.report()["aborted"] == "stop command"
    assert rig.orders.pump == 0
    assert rig.run_until(lambda: rig.status is Status.IDLE, 10)


def test_a_selftest_is_refused_during_a_session_and_a_session_during_a_selftest() -> None:
    rig = Rig()
    rig.start()
    with pytest.raises(CommandRejectedError, match="stop it first") as caught:
        rig.send(Action.SELFTEST)
    assert caught.value.code == "busy"
    rig.send(Action.STOP)
    assert rig.run_until(lambda: rig.status is Status.IDLE, 20)
    rig.send(Action.SELFTEST)
    for action in (Action.START, Action.PAUSE, Action.RESUME):
        with pytest.raises(CommandRejectedError, match="a self-test is running"):
            rig.send(action)
    assert rig.send(Action.SELFTEST).message == "a self-test is already running"


def test_a_latched_fault_must_be_cleared_first() -> None:
    rig = Rig(faults=[FaultInjection.parse("sensor_stuck:foot@0", zones=ZONES, default_at_s=0)])
    rig.send(Action.START)
    assert rig.run_until(lambda: rig.status is Status.FAULT, 30)
    with pytest.raises(CommandRejectedError, match="clear_fault first"):
        rig.send(Action.SELFTEST)


def test_a_high_fault_during_the_selftest_ends_it_safely() -> None:
    # the foot's sensor freezes once the test has begun: the supervisor trips while it pumps
    rig = Rig(faults=[FaultInjection.parse("sensor_stuck:foot@1", zones=ZONES, default_at_s=0)])
    run_selftest(rig)
    test = rig.massager.selftest
    assert test is not None
    assert rig.status is Status.FAULT
    assert test.report()["result"] == "aborted"
    assert (test.aborted or "").startswith("fault sensor_fault")
    assert rig.orders.is_safe()
