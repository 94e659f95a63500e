"""Pattern timings (README: Patterns) and regulator quality, measured on the simulator's trace."""

from __future__ import annotations

from itertools import pairwise

import pytest

from device.settings import DeviceSettings, Mode, SessionSettings
from device.simulate import Trace, simulate

DEVICE = DeviceSettings(soft_start=False)


def trace_of(mode: Mode, *, intensity: int = 3, minutes: int = 5) -> Trace:
    report = simulate(
        SessionSettings(mode=mode, intensity=intensity, duration_min=minutes),
        device=DEVICE,
        trace_every=1,
    )
    assert report.trace is not None
    assert report.end_reason == "completed", report.faults
    return report.trace


def phase_runs(trace: Trace) -> list[tuple[str, float, float]]:
    """(phase, start, end) for each run of one phase while running."""
    runs: list[tuple[str, float, float]] = []
    for t, phase in zip(trace.t, trace.phase, strict=True):
        if phase is None:
            continue
        if runs and runs[-1][0] == phase:
            runs[-1] = (phase, runs[-1][1], t)
        else:
            runs.append((phase, t, t))
    return runs


def durations(trace: Trace, phase: str) -> list[float]:
    runs = phase_runs(trace)
    # the first and last runs may be cut by the session's start or end
    return [b - a for p, a, b in runs[1:-1] if p == phase]


def cycle_starts(trace: Trace) -> list[float]:
    return [a for p, a, _ in phase_runs(trace) if p == "inflating"]


@pytest.mark.untraced
def test_wave_staggers_zones_and_cycles_in_45_to_60_s() -> None:
    trace = trace_of(Mode.WAVE)
    starts = cycle_starts(trace)
    periods = [b - a for a, b in pairwise(starts)]
    assert periods and all(45.0 <= p <= 62.0 for p in periods), periods
    assert all(d == pytest.approx(3.0, abs=0.05) for d in durations(trace, "holding"))
    assert all(d == pytest.approx(20.0, abs=0.05) for d in durations(trace, "resting"))
    # zone n+1 starts 0.5 s after zone n reads 90 % of its set-point (sensor lag ≈ 0.05 s)
    k0 = trace.t.index(starts[1])
    for n in range(3):
        t90 = next(
            t
            for t, p, tg in zip(trace.t[k0:], trace.pressure[k0:], trace.target[k0:], strict=True)
            if p[n] >= 0.9 * (tg[n] or float("inf"))
        )
        t_next = next(
            t
            for t, tg in zip(trace.t[k0:], trace.target[k0:], strict=True)
            if tg[n + 1] is not None
        )
        assert 0.45 <= t_next - t90 <= 0.65, (n, t90, t_next)


def test_pulse_releases_distal_zones_and_holds_the_top() -> None:
    trace = trace_of(Mode.PULSE)
    for tg, phase in zip(trace.target, trace.phase, strict=True):
        if phase == "holding":
            assert tg[:3] == [None, None, None] and tg[3] is not None
    assert all(d == pytest.approx(3.0, abs=0.05) for d in durations(trace, "holding"))
    assert all(d == pytest.approx(15.0, abs=0.05) for d in durations(trace, "resting"))


@pytest.mark.untraced
def test_squeeze_fills_all_zones_together() -> None:
    trace = trace_of(Mode.SQUEEZE)
    for tg, phase in zip(trace.target, trace.phase, strict=True):
        if phase in ("inflating", "holding"):
            assert all(t is not None for t in tg)
    assert all(d == pytest.approx(5.0, abs=0.05) for d in durations(trace, "holding"))
    assert all(d == pytest.approx(25.0, abs=0.05) for d in durations(trace, "resting"))


def test_knead_walks_one_zone_at_a_time_capped_at_level_4() -> None:
    trace = trace_of(Mode.KNEAD, intensity=7)
    order: list[int] = []
    for tg in trace.target:
        active = [i for i, t in enumerate(tg) if t is not None]
        assert len(active) <= 1
        if active and (not order or order[-1] != active[0]):
            order.append(active[0])
        assert all(t is None or t <= 50.0 for t in tg)
    assert order[:9] == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert all(d == pytest.approx(3.0, abs=0.05) for d in durations(trace, "holding"))


@pytest.mark.untraced
def test_gentle_squeezes_the_calf_zones_once_a_minute_at_30_mmhg_or_less() -> None:
    trace = trace_of(Mode.GENTLE, intensity=7)
    running = [tg for tg, ph in zip(trace.target, trace.phase, strict=True) if ph is not None]
    for tg in running:
        assert tg[0] is None and tg[1] is None
        assert all(t is None or t <= 30.0 for t in tg)
    starts = cycle_starts(trace)
    assert [round(b - a, 1) for a, b in pairwise(starts)] == [60.0] * (len(starts) - 1)
    assert all(d == pytest.approx(5.0, abs=0.05) for d in durations(trace, "holding"))


@pytest.mark.untraced
@pytest.mark.parametrize("level", range(1, 8))
def test_overshoot_stays_under_5_mmhg(level: int) -> None:
    report = simulate(SessionSettings(intensity=level, duration_min=5), device=DEVICE, seed=level)
    assert report.overshoot_mmhg < 5.0
    for zone in report.zones:
        assert report.max_target_mmhg[zone] > 0
        assert report.max_pressure_mmhg[zone] >= report.max_target_mmhg[zone] - 3.0  # it got there
    assert report.faults == []


@pytest.mark.untraced
def test_level_7_wave_holds_the_foot_under_the_60_s_limit() -> None:
    report = simulate(SessionSettings(intensity=7, duration_min=10), seed=7)
    assert report.faults == []
    assert report.end_reason == "completed"


@pytest.mark.untraced
def test_seated_posture_caps_every_zone_at_70() -> None:
    report = simulate(SessionSettings(intensity=7, posture="seated", duration_min=5), device=DEVICE)
    assert max(report.max_target_mmhg.values()) == 70.0
    assert max(report.max_pressure_mmhg.values()) < 72.0


def test_a_lower_cap_takes_effect_on_a_zone_already_inflating() -> None:
    """The cap is applied at every step, not only when a zone's inflation begins."""
    from device.control.patterns import make_pattern

    cap = [80.0]
    pattern = make_pattern(
        Mode.SQUEEZE, device=DeviceSettings(), setpoints=lambda: [60.0] * 4, cap=lambda: cap[0]
    )
    pattern.start(0.0)
    targets = pattern.step(0.02, [0.0] * 4)
    assert max(t for t in targets if t is not None) == 60.0
    cap[0] = 45.0  # seated mid-inflation, say
    targets = pattern.step(0.04, [10.0] * 4)
    assert [t for t in targets if t is not None] == [45.0] * 4
