"""One whole session on the simulator in virtual time, with the figures a person wants after it."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from device.backends.sim import FaultInjection, SimFault
from device.backends.sim.physics import Physics
from device.control.massager import Action, Command, EventType, Massager, Status
from device.harness import SimulatedDevice
from device.settings import DeviceSettings, SessionSettings

if TYPE_CHECKING:
    from collections.abc import Callable

_AFTER_CRASH_S = 10.0  # how long we watch the sleeves after the process died
_VENT_GRACE_S = 60.0  # how long after the session's end we wait for the sleeves to vent


@dataclass(slots=True)
class Trace:
    """Time series for the plot, sampled every `every` ticks."""

    every: int
    t: list[float] = field(default_factory=list)
    pressure: list[list[float]] = field(default_factory=list)
    target: list[list[float | None]] = field(default_factory=list)
    heater_c: list[float] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    phase: list[str | None] = field(default_factory=list)


@dataclass(slots=True)
class SimulationReport:
    """The outcome of `simulate()`; `to_json()` gives the CLI's `--json` object."""

    zones: list[str]
    settings: SessionSettings
    seed: int
    end_reason: str
    duration_s: float
    wall_s: float
    cycles: int
    ticks: int
    faults: list[dict[str, Any]]
    injected: list[dict[str, Any]]
    max_pressure_mmhg: dict[str, float]
    max_target_mmhg: dict[str, float]
    max_heater_c: float | None
    overshoot_mmhg: float
    vented: bool
    vent_s: float | None
    session_id: str | None
    final_status: str
    trace: Trace | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return {
            "end_reason": self.end_reason,
            "duration_s": round(self.duration_s, 2),
            "wall_s": round(self.wall_s, 3),
            "speedup": round(self.duration_s / self.wall_s) if self.wall_s > 0 else None,
            "cycles": self.cycles,
            "ticks": self.ticks,
            "faults": self.faults,
            "injected": self.injected,
            "max_pressure_mmhg": self.max_pressure_mmhg,
            "max_target_mmhg": self.max_target_mmhg,
            "max_heater_c": self.max_heater_c,
            "overshoot_mmhg": round(self.overshoot_mmhg, 2),
            "vented": self.vented,
            "vent_s": self.vent_s,
            "final_status": self.final_status,
            "session_id": self.session_id,
            "seed": self.seed,
            "settings": self.settings.model_dump(mode="json"),
        }


def simulate(
    settings: SessionSettings,
    *,
    device: DeviceSettings | None = None,
    faults: list[FaultInjection] | None = None,
    seed: int = 0,
    trace_every: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> SimulationReport:
    """Run one session in virtual time, from `start` until the sleeves are vented.

    Args:
        settings: the session's settings (a preset already applied).
        device: device configuration; the default device when None.
        faults: hardware faults to inject, with their time from the start.
        seed: seed of the sensor noise and the session id.
        trace_every: record the plot trace every this many ticks (None: no trace).
        progress: called with 0-1 as the session advances.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible ids, not secrets
    harness = SimulatedDevice(
        settings,
        device=device,
        faults=faults,
        seed=seed,
        epoch=datetime(2026, 1, 1, 21, 0, tzinfo=UTC),
        new_id=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    )
    device, clock, sim = harness.device, harness.clock, harness.sim
    massager, runner = harness.massager, harness.runner
    physics = sim.physics
    n = len(device.zones)
    trace = Trace(every=trace_every) if trace_every else None
    max_p = [0.0] * n
    max_t = [0.0] * n
    max_heater: float | None = None
    overshoot = 0.0
    faults_seen: list[dict[str, Any]] = []
    period = runner.period
    planned = settings.duration_min * 60.0
    limit = device.limits.max_session_min * 60.0 + _VENT_GRACE_S
    started_wall = time.perf_counter()

    # (the harness ticked once: the sensors and the supervisor are primed)
    runner.submit(Command(action=Action.START))
    session_id = massager.session.id if massager.session else None
    ended_at: float | None = None
    vent_s: float | None = None
    next_progress = 0.0
    k = harness.ticks
    while True:
        k += 1
        now = clock.t = k * period
        if sim.crashed:
            break
        runner.tick(now)
        for ev in massager.drain_events():
            if ev.event_type is EventType.FAULT_RAISED:
                faults_seen.append({"code": ev.data["code"], "at_s": round(ev.at, 2)})
        zones = physics.zones
        targets = massager.targets
        for i in range(n):
            p = zones[i].pressure
            if p > max_p[i]:
                max_p[i] = p
            target = targets[i]
            if target is not None:
                if target > max_t[i]:
                    max_t[i] = target
                if p - target > overshoot:
                    overshoot = p - target
        for pad in physics.pads:
            if max_heater is None or pad.temperature > max_heater:
                max_heater = pad.temperature
        if trace is not None and k % trace.every == 0:
            _record(trace, now, massager, physics)
        session = massager.session
        if ended_at is None and session is not None and session.end_reason is not None:
            ended_at = now
        if ended_at is not None and massager.status in (Status.IDLE, Status.FAULT):
            if all(z.pressure < device.limits.vent_below_mmhg for z in zones):
                vent_s = round(now - ended_at, 2)
                break
            if now - ended_at > _VENT_GRACE_S:
                break
        if now > limit:
            break
        if progress is not None and session is not None:
            fraction = min(session.running_s / planned, 1.0)
            if fraction >= next_progress:
                progress(fraction)
                next_progress = fraction + 0.01
    end_reason = massager.session.end_reason if massager.session else None
    if sim.crashed:
        # The process died: nothing runs the control loop; watch the released lines vent.
        crash_at = clock.t
        vent_s = None
        below = device.limits.vent_below_mmhg
        while clock.t < crash_at + _AFTER_CRASH_S:
            clock.t += period
            physics.advance_to(clock.t)
            if vent_s is None and all(z.pressure < below for z in physics.zones):
                vent_s = round(clock.t - crash_at, 2)
            if trace is not None:
                _record(trace, clock.t, massager, physics)
        end_reason = "interrupted"
    if progress is not None:
        progress(1.0)
    wall_s = time.perf_counter() - started_wall
    names = device.zones
    return SimulationReport(
        zones=names,
        settings=settings,
        seed=seed,
        end_reason=end_reason or "running",
        duration_s=clock.t,
        wall_s=wall_s,
        cycles=massager.cycles,
        ticks=runner.ticks,
        faults=faults_seen,
        injected=[
            {"fault": inj.fault.value, "at_s": round(at, 2), "target": _target_name(inj, names)}
            for inj, at in sim.injected
        ],
        max_pressure_mmhg={z: round(v, 1) for z, v in zip(names, max_p, strict=True)},
        max_target_mmhg={z: round(v, 1) for z, v in zip(names, max_t, strict=True)},
        max_heater_c=None if max_heater is None else round(max_heater, 2),
        overshoot_mmhg=overshoot,
        vented=all(z.pressure < device.limits.vent_below_mmhg for z in physics.zones),
        vent_s=vent_s,
        session_id=session_id,
        final_status=massager.status.value,
        trace=trace,
    )


def _target_name(inj: FaultInjection, zones: list[str]) -> str | None:
    if inj.target is None:
        return None
    if inj.fault is SimFault.HEATER_RUNAWAY:
        return f"heater {inj.target}"
    return zones[inj.target]


def _record(trace: Trace, now: float, massager: Massager, physics: Physics) -> None:
    trace.t.append(now)
    trace.pressure.append([z.pressure for z in physics.zones])
    trace.target.append(list(massager.targets))
    trace.heater_c.append(max((p.temperature for p in physics.pads), default=float("nan")))
    trace.status.append(massager.status.value)
    phase = massager.phase
    trace.phase.append(phase.value if phase else None)
