"""Soak: random commands, random link trouble and random hardware faults, seed after seed.

Each seed runs the device on the simulator for `minutes` of virtual time. Commands arrive as
Home Assistant would send them (JSON through the real parser), at random; the link between them
misbehaves at random (outages that drop commands, duplicates, deliveries too late to be fresh);
hardware faults strike at random times. Every tick the physics' truth is checked:

- no zone above the hard limit (120 mmHg);
- told to stop or vent, or after a fault that ends the session, the pump stops in that tick and
  every zone is below 5 mmHg within 30 s (unless a new session was started meanwhile);
- the heater pads never above the trip temperature (43 °C) plus 1 °C of thermal lag;
- heat never on without a running session, and never more than 30 minutes in one.

`bench/soak.py` runs it seed after seed and prints the table; the suite runs a short seed, and
`LEGWAVE_SOAK=1 scripts/test -m soak` the real soak.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from bridge.codec import CommandError, parse_command
from device.backends.sim import FaultInjection, SimFault
from device.control.massager import ACTIVE, Action, CommandRejectedError, Status
from device.harness import SimulatedDevice as Rig
from device.settings import PRESETS, DeviceSettings

HARDWARE_FAULTS = [f for f in SimFault if f is not SimFault.PROCESS_CRASH]
VENT_WITHIN_S = 30.0
COMMAND_EVERY_S = 15.0  # on average: far busier than any household
HEAT_MARGIN_C = 1.0


@dataclass
class SoakReport:
    """What one seed did and found."""

    seed: int
    minutes: float
    commands: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    late: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    injected: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    max_pressure: float = 0.0
    max_heater: float = 0.0
    violations: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def _command(rng: random.Random) -> dict[str, object]:
    roll = rng.random()
    if roll < 0.25:
        body: dict[str, object] = {"action": "start"}
        if rng.random() < 0.5:
            body["preset"] = rng.choice(sorted(PRESETS))
        if rng.random() < 0.3:
            body["intensity"] = rng.randint(1, 7)
        return body
    if roll < 0.40:
        return {"action": rng.choice(["stop", "vent"])}
    if roll < 0.55:
        return {"action": rng.choice(["pause", "resume", "clear_fault"])}
    if roll < 0.62:
        return {"power": rng.choice(["ON", "OFF"])}
    if roll < 0.90:
        key = rng.choice(["intensity", "mode", "heat", "vibration", "duration_min", "zone_boost"])
        value = {
            "intensity": rng.randint(1, 7),
            "mode": rng.choice(["wave", "pulse", "squeeze", "knead", "gentle"]),
            "heat": rng.choice(["off", "low", "medium", "high"]),
            "vibration": rng.choice(["off", "low", "medium", "high"]),
            "duration_min": rng.randint(5, 60),
            "zone_boost": rng.choice(["none", "foot", "calf"]),
        }[key]
        return {key: value}
    return {"intensity": rng.choice([0, 8, "max", None])}  # refused, changes nothing


def soak(seed: int, minutes: float = 30.0) -> SoakReport:
    """One seed: `minutes` of virtual time; returns the report (violations included)."""
    rng = random.Random(seed)
    report = SoakReport(seed=seed, minutes=minutes)
    device = DeviceSettings()
    limits = device.limits
    duration = minutes * 60.0
    faults = [
        FaultInjection.parse(
            f"{rng.choice(HARDWARE_FAULTS).value}@{rng.uniform(60, duration - 60):.0f}",
            zones=device.zones,
            default_at_s=0.0,
        )
        for _ in range(rng.randint(0, 3))
    ]
    faults.sort(key=lambda f: f.at_s)
    report.injected = [f"{f.fault.value}@{f.at_s:.0f}" for f in faults]
    rig = Rig(device=device, faults=faults, seed=seed)
    runner, massager, physics = rig.runner, rig.massager, rig.sim.physics
    period = runner.period
    seen_events = len(rig.events)

    next_command = rng.expovariate(1 / COMMAND_EVERY_S)
    outage_until = -1.0
    next_outage = rng.uniform(60, 600)
    pending: list[tuple[float, bytes]] = []  # (deliver at, payload)
    vent_by: float | None = None
    heat_on_s = 0.0
    session_seen: str | None = None
    wall0 = time.perf_counter()
    while rig.now < duration:
        t = rig.now + period  # the time of the tick below
        # -- the link: outages, duplicates, late deliveries ------------------------------
        if t >= next_outage:
            outage_until = t + rng.uniform(5, 120)  # the broker or the Wi-Fi is gone
            next_outage = outage_until + rng.uniform(60, 900)
        if t >= next_command:
            next_command = t + rng.expovariate(1 / COMMAND_EVERY_S)
            body = _command(rng)
            sent_at = 1_800_000_000.0 + t  # wall time in the command's `ts`
            body["ts"] = sent_at
            payload = json.dumps(body).encode()
            report.commands += 1
            if t < outage_until:
                report.dropped += 1  # clean sessions: nothing queued is replayed
            else:
                delay = 0.0
                if rng.random() < 0.05:
                    delay = rng.uniform(31, 90)  # stuck in a queue: must arrive stale
                    report.late += 1
                pending.append((t + delay, payload))
                if rng.random() < 0.05:
                    pending.append((t + rng.uniform(0, 2), payload))  # QoS 1 redelivery
                    report.duplicated += 1
        due = [p for p in pending if p[0] <= t]
        pending = [p for p in pending if p[0] > t]
        for _, payload in due:
            parsed = parse_command(payload, now=1_800_000_000.0 + t)
            report.delivered += 1
            if isinstance(parsed, CommandError):
                report.rejected[parsed.code] += 1
                continue
            try:
                runner.submit(parsed.command)
            except CommandRejectedError as exc:
                report.rejected[exc.code] += 1
                continue
            if parsed.command.action in (Action.STOP, Action.VENT):  # `power: OFF` is a stop
                if physics.pump_duty != 0.0:
                    report.violations.append(f"t={t:.1f}: pump still on right after a stop")
                vent_by = t + VENT_WITHIN_S

        rig.tick()
        for event in rig.events[seen_events:]:
            if event.startswith("fault:"):
                report.faults[event.removeprefix("fault:")] += 1
                if massager.status is Status.FAULT or massager.session is None:
                    vent_by = vent_by or t + VENT_WITHIN_S
            elif event == "session_started":
                report.sessions += 1
                vent_by = None
            elif event in ("session_stopped", "session_completed"):
                vent_by = vent_by or t + VENT_WITHIN_S
        seen_events = len(rig.events)

        # -- invariants on the physics' truth ------------------------------------------------
        pressures = [z.pressure for z in physics.zones]
        top = max(pressures)
        report.max_pressure = max(report.max_pressure, top)
        if top > limits.hard_limit_mmhg:
            report.violations.append(f"t={t:.1f}: {top:.1f} mmHg above the hard limit")
        hottest = max((pad.temperature for pad in physics.pads), default=0.0)
        report.max_heater = max(report.max_heater, hottest)
        if hottest > limits.heater_trip_c + HEAT_MARGIN_C:
            report.violations.append(f"t={t:.1f}: heater at {hottest:.1f} °C")
        heating = physics.heater_supply and any(pad.on for pad in physics.pads)
        session = massager.session
        if heating:
            if massager.status not in ACTIVE or massager.status is Status.PAUSED:
                report.violations.append(f"t={t:.1f}: heat on while {massager.status}")
            if session is not None and session.id != session_seen:
                session_seen, heat_on_s = session.id, 0.0
            heat_on_s += period
            if heat_on_s > limits.heat_max_min * 60.0 + 1.0:
                report.violations.append(f"t={t:.1f}: heat on for {heat_on_s:.0f} s")
        if vent_by is not None:
            if massager.status in ACTIVE:
                vent_by = None  # a new session started: venting is no longer owed
            elif top < limits.vent_below_mmhg:
                vent_by = None
            elif t > vent_by:
                report.violations.append(f"t={t:.1f}: still {top:.1f} mmHg after a vent")
                vent_by = None
        if len(report.violations) > 20:
            break
    report.wall_s = time.perf_counter() - wall0
    return report
