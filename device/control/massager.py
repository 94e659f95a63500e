"""The massager: session state machine wired to patterns, regulator, heat and the supervisor.

``idle → fit_check → running ⇄ paused → venting → idle``, and ``fault`` from anywhere
(README: Session). `submit()` applies a command at once and atomically (all of it or none of it);
`step()` turns one tick's readings into the orders for the hardware, after the safety
supervisor has checked them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping  # at run time: see device/hal/hardware.py
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from device.control.faults import FaultCode, Priority
from device.control.heating import HeatController
from device.control.patterns import Knead, Pattern, Phase, make_pattern
from device.control.regulator import PressureRegulator
from device.control.selftest import HEAT_MAX_C, Drive, Observation, SelfTest
from device.control.setpoints import setpoint_cap_mmhg, zone_setpoints
from device.control.supervisor import Context, SafetySupervisor, Trip
from device.hal import Orders, Readings
from device.settings import (
    HEAT_SETPOINT_C,
    VIBRATION_DUTY,
    DeviceSettings,
    Heat,
    Mode,
    SessionSettings,
    SettingChanges,
    SettingRejectedError,
)


class Status(StrEnum):
    """Where the device is in its lifecycle."""

    IDLE = "idle"
    FIT_CHECK = "fit_check"
    RUNNING = "running"
    PAUSED = "paused"
    VENTING = "venting"
    FAULT = "fault"
    SELF_TEST = "self_test"


ACTIVE = frozenset({Status.FIT_CHECK, Status.RUNNING, Status.PAUSED})


class Action(StrEnum):
    """What a command asks the device to do."""

    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    VENT = "vent"
    CLEAR_FAULT = "clear_fault"
    SELFTEST = "selftest"


@dataclass(frozen=True, slots=True)
class Command:
    """An action and/or setting changes, applied together or not at all."""

    action: Action | None = None
    changes: SettingChanges = field(default_factory=SettingChanges)


class CommandRejectedError(Exception):
    """A command that was refused; nothing of it was applied.

    Args:
        code: machine-readable reason (``invalid``, ``fault_latched``, ``not_running``, …).
        message: for people; names the field when a value is at fault.
        field: the setting at fault, when one is.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an accepted command did."""

    changed: bool
    message: str


@dataclass(slots=True)
class SessionRecord:
    """One session: id, start, end and why it ended."""

    id: str
    started_at: datetime
    settings: SessionSettings
    ended_at: datetime | None = None
    end_reason: str | None = None
    running_s: float = 0.0
    cycles: int = 0
    peak_mmhg: float = 0.0  # the highest zone pressure it reached


class EventType(StrEnum):
    """What an event says happened (docs/mqtt.md lists each one's fields)."""

    SESSION_STARTED = "session_started"
    SESSION_COMPLETED = "session_completed"
    SESSION_STOPPED = "session_stopped"
    FAULT_RAISED = "fault_raised"
    FAULT_CLEARED = "fault_cleared"
    SELFTEST_STARTED = "selftest_started"
    SELFTEST_FINISHED = "selftest_finished"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, for the event stream."""

    event_type: EventType
    at: float
    session_id: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the device is doing at one instant, in its own types and units, unrounded.

    The bridge shapes it for MQTT and Home Assistant (`bridge.contract`).
    """

    status: Status
    phase: Phase | None
    settings: SessionSettings
    remaining_s: float
    elapsed_s: float
    progress: float
    """Share of the session done, 0 to 1 (0 when none is active)."""
    ends_at: datetime | None
    session_id: str | None
    pressures: Mapping[str, float]
    """mmHg per zone."""
    targets: Mapping[str, float | None]
    """mmHg per zone; None where the zone is venting or idle."""
    heater_c: float | None
    """The warmest heater; None before any reading."""
    fault: FaultCode | None
    fault_message: str | None
    sessions_completed: int
    therapy_s_total: float

    @property
    def active(self) -> bool:
        """A session is on (fit check, running or paused)."""
        return self.status in ACTIVE


def _drive_orders(drive: Drive, orders: Orders) -> None:
    """Write a self-test step's orders (everything it does not name stays safe)."""
    orders.pump = drive.pump
    for i in range(orders.zones):
        orders.inlet_open[i] = i in drive.inlets
        orders.exhaust_open[i] = drive.closed_exhausts is None or i not in drive.closed_exhausts
    for h in range(orders.heaters):
        orders.heater_on[h] = h in drive.heaters
    orders.heater_supply = drive.heater_supply
    orders.vibration = drive.vibration


class Massager:
    """The whole appliance's logic. Pure: time comes in with every call.

    Args:
        device: zones, timings, tuning and limits.
        settings: the session settings to start from.
        wall: maps a monotonic time to wall-clock time (for session records and `ends_at`).
        new_id: makes a session id.
    """

    def __init__(
        self,
        *,
        device: DeviceSettings,
        settings: SessionSettings | None = None,
        wall: Callable[[float], datetime],
        new_id: Callable[[], str],
    ) -> None:
        self.device = device
        self.settings = settings or SessionSettings()
        device.check_session(self.settings)
        self._wall = wall
        self._new_id = new_id
        n = len(device.zones)
        self.zones = n
        self.status = Status.IDLE
        self.session: SessionRecord | None = None
        self.history: list[SessionRecord] = []
        self.fault: FaultCode | None = None
        self.fault_message = ""
        self.sessions_completed = 0
        self.therapy_s_total = 0.0
        self.pressures = [0.0] * n
        self.targets: list[float | None] = [None] * n
        self.temperatures: list[float] = [math.nan] * device.heaters
        self.pattern: Pattern | None = None
        self.supervisor = SafetySupervisor(zones=n, heaters=device.heaters, limits=device.limits)
        self._regulator = PressureRegulator(zones=n, tuning=device.regulator)
        self._heat = HeatController(heaters=device.heaters, tuning=device.heat)
        self._events: list[Event] = []
        self._last: float | None = None
        self._since = 0.0  # when the current status began
        self._session_began = 0.0  # when the current session was started
        self._fit_vented = False  # the fit check begins with the sleeves vented
        self._cycles_before = 0
        self._pattern_mode: Mode | None = None
        self.selftest: SelfTest | None = None
        """The self-test running now, or the last one (its report)."""
        self._selftest_id = ""
        self.selftest_record: dict[str, Any] | None = None
        """The last finished self-test's report, with its time and the wiring it tested."""
        self.wiring: str | None = None
        """A fingerprint of the wiring and calibration, recorded with each self-test."""
        self.commissioning_required = False
        """Refuse sessions until a self-test has passed on this `wiring` (a Pi backend)."""
        self.uncalibrated: list[str] = []
        """Zones whose pressure channel has no calibration (with `commissioning_required`)."""
        self.held: str | None = None
        """Why no session and no self-test may start now (an update is being installed)."""

    def restore(
        self,
        *,
        settings: SessionSettings,
        sessions_completed: int,
        therapy_s_total: float,
        history: list[SessionRecord],
        interrupted: SessionRecord | None,
        now: float,
    ) -> None:
        """Take back what the device remembered from before a restart.

        Args:
            settings: the last settings; ignored when they no longer fit this device.
            sessions_completed: the counter.
            therapy_s_total: running time of every past session.
            history: past sessions, oldest first.
            interrupted: the session that was running when the agent stopped; it is recorded
                as ``interrupted`` and announced with a ``session_stopped`` event. Nothing is
                resumed: no session starts without a command.
            now: the current time.
        """
        try:
            self.device.check_session(settings)
            self.settings = settings
        except ValueError:
            pass  # e.g. a zone boost on a zone this device no longer has: keep the defaults
        self.sessions_completed = sessions_completed
        self.therapy_s_total = therapy_s_total
        self.history = list(history)
        if interrupted is not None:
            interrupted.end_reason = "interrupted"
            self.session = interrupted
            self.history.append(interrupted)
            self.therapy_s_total += interrupted.running_s
            self._emit(
                EventType.SESSION_STOPPED,
                now,
                end_reason="interrupted",
                duration_s=round(interrupted.running_s, 1),
            )

    # -- commands -------------------------------------------------------------------------
    def submit(self, command: Command, now: float) -> Outcome:
        """Apply `command` now, entirely or not at all.

        Raises:
            CommandRejectedError: the command is invalid or not possible now; nothing changed.
        """
        settings = self.settings
        if command.changes:
            settings = self.settings.changed(command.changes)
            try:
                self.device.check_session(settings)
            except SettingRejectedError as exc:
                raise CommandRejectedError("invalid", str(exc), exc.field) from None
        action = command.action
        status = self.status
        if action in (Action.START, Action.PAUSE, Action.RESUME) and status is Status.SELF_TEST:
            raise CommandRejectedError(
                "busy", "a self-test is running: wait for it, or stop it first"
            )
        if action in (Action.START, Action.SELFTEST) and status not in ACTIVE and self.held:
            raise CommandRejectedError("busy", self.held)
        if action is Action.START and status not in ACTIVE:
            why = self.not_commissioned()
            if why is not None:
                raise CommandRejectedError("not_commissioned", why)
        if action is Action.START and status is Status.FAULT:
            raise CommandRejectedError(
                "fault_latched", f"fault {self.fault} is latched: clear_fault first"
            )
        if action is Action.PAUSE and status not in (Status.RUNNING, Status.PAUSED):
            raise CommandRejectedError("not_running", f"cannot pause while {status}")
        if action is Action.RESUME and status not in (Status.RUNNING, Status.PAUSED):
            raise CommandRejectedError("not_paused", f"cannot resume while {status}")
        if action is Action.SELFTEST and status is Status.FAULT:
            raise CommandRejectedError(
                "fault_latched", f"fault {self.fault} is latched: clear_fault first"
            )
        if action is Action.SELFTEST and status in ACTIVE:
            raise CommandRejectedError(
                "busy", f"cannot run a self-test during a session ({status}): stop it first"
            )

        changed = settings != self.settings
        self.settings = settings
        message = "settings changed" if changed else "no change"
        if action is not None:
            done, message = self._act(action, now)
            changed = changed or done
        return Outcome(changed=changed, message=message)

    def _act(self, action: Action, now: float) -> tuple[bool, str]:
        status = self.status
        match action:
            case Action.START:
                if status is Status.PAUSED:
                    return self._act(Action.RESUME, now)
                if status in ACTIVE:
                    return False, f"already {status}"
                self._start(now)
                return True, "session started"
            case Action.STOP | Action.VENT:
                if status is Status.SELF_TEST:
                    self._end_selftest(now, aborted=f"{action.value} command")
                    return True, "self-test stopped"
                if status in ACTIVE:
                    self._end(now, "stopped")
                    return True, "session stopped"
                if action is Action.VENT and status is Status.IDLE:
                    self._set_status(Status.VENTING, now)
                    return True, "venting"
                return False, f"nothing to stop while {status}"
            case Action.PAUSE:
                if status is Status.PAUSED:
                    return False, "already paused"
                self._set_status(Status.PAUSED, now)
                self._heat.reset()
                return True, "paused"
            case Action.RESUME:
                if status is Status.RUNNING:
                    return False, "already running"
                self._set_status(Status.RUNNING, now)
                if self.pattern is not None:
                    # A fresh cycle, once the sleeves are down (a quick pause and resume would
                    # otherwise add the new cycle to a compression not yet vented).
                    self.pattern.start(now, vent_first=True)
                return True, "resumed"
            case Action.CLEAR_FAULT:
                return self._clear_fault(now)
            case Action.SELFTEST:
                if status is Status.SELF_TEST:
                    return False, "a self-test is already running"
                self._start_selftest(now)
                return True, "self-test started"

    def not_commissioned(self) -> str | None:
        """Why no session may start yet (no passed self-test on this wiring), or None."""
        if not self.commissioning_required:
            return None
        if self.uncalibrated:
            return (
                f"pressure channels not calibrated: {', '.join(self.uncalibrated)}: run "
                "legwave calibrate, then legwave selftest"
            )
        record = self.selftest_record
        if record is None:
            return "no self-test has passed on this device yet: run one (legwave selftest)"
        if record.get("wiring") != self.wiring:
            return (
                "the wiring or the calibration changed since the last self-test: run it again "
                "(legwave selftest)"
            )
        if record.get("result") != "passed":
            return (
                f"the last self-test {record.get('result')}: fix what it found, then run it again"
            )
        return None

    def _start_selftest(self, now: float) -> None:
        dev = self.device
        self.selftest = SelfTest(
            zones=list(dev.zones),
            heaters=dev.heaters,
            vent_below_mmhg=dev.limits.vent_below_mmhg,
        )
        self._selftest_id = f"selftest-{self._new_id()}"
        self._set_status(Status.SELF_TEST, now)
        self._emit(EventType.SELFTEST_STARTED, now)

    def _end_selftest(self, now: float, *, aborted: str | None = None) -> None:
        test = self.selftest
        if test is None or self.status is not Status.SELF_TEST:
            return
        if aborted is not None:
            test.abort(now, aborted)
        report = test.report()
        self.selftest_record = {
            **report,
            "finished_at": self._wall(now).isoformat(),
            "wiring": self.wiring,
        }
        self._emit(
            EventType.SELFTEST_FINISHED,
            now,
            result=report["result"],
            duration_s=report["duration_s"],
            problems=report["problems"],
        )
        self._heat.reset()
        self._set_status(Status.VENTING, now)

    def _selftest_orders(self, now: float, pressures: list[float]) -> tuple[Orders, Context]:
        """This tick of the self-test: its orders, and what the supervisor is told."""
        test = self.selftest
        assert test is not None  # noqa: S101 - SELF_TEST always has one
        drive = test.step(Observation(now, list(pressures), list(self.temperatures)))
        orders = Orders(zones=self.zones, heaters=self.device.heaters)
        _drive_orders(drive, orders)
        targets: list[float | None] = [drive.targets.get(i) for i in range(self.zones)]
        self.supervisor.cap_targets(targets, setpoint_cap_mmhg(self.device, self.settings))
        heating = drive.heater_supply or bool(drive.heaters)
        ctx = Context(
            session=self._selftest_id,
            running=heating,
            targets=targets,
            heat_setpoint=HEAT_MAX_C if heating else None,
        )
        self.targets = targets
        return orders, ctx

    def _start(self, now: float) -> None:
        if self.fault is not None:
            self._clear_fault(now)
        self.session = SessionRecord(
            id=self._new_id(), started_at=self._wall(now), settings=self.settings
        )
        self.pattern = None
        self._cycles_before = 0
        self._session_began = now
        # A double tap (stop, then start at once) finds the sleeves still full: the fit check
        # vents them first, so it never measures, or trips on, the last session's air.
        self._fit_vented = False
        self._set_status(Status.FIT_CHECK, now)
        self._emit(
            EventType.SESSION_STARTED,
            now,
            preset=self.settings.preset,
            mode=self.settings.mode.value,
            intensity=self.settings.intensity,
            duration_min=self.settings.duration_min,
        )

    def _end(self, now: float, reason: str) -> None:
        session = self.session
        if session is None or session.end_reason is not None:
            return
        session.ended_at = self._wall(now)
        session.end_reason = reason
        session.cycles = self.cycles
        self.history.append(session)
        self.therapy_s_total += session.running_s
        kind = EventType.SESSION_STOPPED
        if reason == "completed":
            self.sessions_completed += 1
            kind = EventType.SESSION_COMPLETED
        self._emit(kind, now, end_reason=reason, duration_s=round(session.running_s, 1))
        self._heat.reset()
        if self.status is not Status.FAULT:
            self._set_status(Status.VENTING, now)

    def _clear_fault(self, now: float) -> tuple[bool, str]:
        code = self.fault
        if code is None:
            return False, "no fault"
        self.supervisor.clear()
        self.fault = None
        self.fault_message = ""
        if self.status is Status.FAULT:
            self._set_status(Status.VENTING, now)
        self._emit(EventType.FAULT_CLEARED, now, code=code.value)
        return True, f"fault {code} cleared"

    # -- the tick -------------------------------------------------------------------------
    def step(self, now: float, readings: Readings, *, late: bool = False) -> Orders:
        """Advance to `now` with this tick's readings and return the orders for the hardware."""
        dt = 0.0 if self._last is None else max(now - self._last, 0.0)
        self._last = now
        pressures = self.pressures
        for i, sample in enumerate(readings.pressure):
            # A light filter: sensor noise should not open and close valves every tick.
            pressures[i] += 0.6 * (sample.value - pressures[i])
            if not math.isfinite(pressures[i]):
                pressures[i] = sample.value if math.isfinite(sample.value) else 0.0
        self.temperatures = [s.value for s in readings.temperature]

        if self.status is Status.SELF_TEST:
            orders, ctx = self._selftest_orders(now, pressures)
            ctx.late = late
            for trip in self.supervisor.check(now, readings, ctx, orders):
                self._on_trip(now, trip, orders)
            if self.selftest is not None and self.selftest.done:
                self._end_selftest(now)
            return orders

        targets = self._advance(now, dt, pressures)
        session = self.session
        if session is not None and session.end_reason is None:
            top = max(pressures, default=0.0)
            if top > session.peak_mmhg:
                session.peak_mmhg = top
        self.supervisor.cap_targets(targets, setpoint_cap_mmhg(self.device, self.settings))
        orders = Orders(zones=self.zones, heaters=self.device.heaters)
        self._regulator.regulate(pressures, targets, orders)
        heat_sp = self._heat_setpoint()
        if heat_sp is None:
            self._heat.reset()
        else:
            orders.heater_on = self._heat.update(now, self.temperatures, heat_sp)
            orders.heater_supply = True
        if self.status is Status.RUNNING:
            orders.vibration = VIBRATION_DUTY[self.settings.vibration]

        session_id = self.session.id if self.session and self.status in ACTIVE else None
        ctx = Context(
            session=session_id,
            running=self.status is Status.RUNNING,
            targets=targets,
            heat_setpoint=heat_sp,
            late=late,
        )
        for trip in self.supervisor.check(now, readings, ctx, orders):
            if trip.code is FaultCode.INFLATE_TIMEOUT and self.status is Status.FIT_CHECK:
                # filling the first zone got nowhere: the fit check failed, and says so
                trip = Trip(FaultCode.NO_SLEEVE, f"fit check: {trip.message}", trip.zone)
            self._on_trip(now, trip, orders)
        self.targets = targets
        return orders

    def _advance(self, now: float, dt: float, pressures: list[float]) -> list[float | None]:
        """Run the state machine; return this tick's per-zone targets."""
        dev = self.device
        vented = [None] * self.zones
        status = self.status
        if status is Status.VENTING:
            if max(pressures) < dev.limits.vent_below_mmhg:
                self._set_status(Status.IDLE, now)
            return list(vented)
        if status in ACTIVE and now - self._session_began >= dev.limits.max_session_min * 60.0:
            # Pauses add up: the session's wall time is bounded too, whatever its running time.
            self._end(now, "time_limit")
            return list(vented)
        if status is Status.FIT_CHECK and not self._fit_vented:
            if max(pressures) >= dev.limits.vent_below_mmhg:
                return list(vented)
            self._fit_vented = True
            self._since = now  # the fit check's time starts with empty sleeves
        if status is Status.FIT_CHECK:
            if pressures[0] >= dev.fit_check_mmhg - dev.regulator.reached_tolerance_mmhg:
                self._set_status(Status.RUNNING, now)
                self.pattern = self._make_pattern()
                self.pattern.start(now)
            elif now - self._since > dev.fit_check_timeout_s:
                self._raise(
                    now,
                    Trip(
                        FaultCode.NO_SLEEVE,
                        f"zone 0 did not reach {dev.fit_check_mmhg:.0f} mmHg in "
                        f"{dev.fit_check_timeout_s:.0f} s: sleeve off or hose loose",
                        0,
                    ),
                )
                return list(vented)
            else:
                return [dev.fit_check_mmhg, *vented[1:]]
        if self.status is Status.RUNNING and self.session is not None:
            session = self.session
            session.running_s += dt
            if session.running_s >= self.settings.duration_min * 60.0:
                self._end(now, "completed")
                return list(vented)
            pattern = self.pattern
            assert pattern is not None  # noqa: S101 - RUNNING always has one
            if self._pattern_mode is not self.settings.mode and (
                pattern.phase is Phase.RESTING or isinstance(pattern, Knead)
            ):
                self._cycles_before += pattern.cycles
                pattern = self.pattern = self._make_pattern()
                pattern.start(now, vent_first=True)
            return list(pattern.step(now, pressures))
        if status is Status.PAUSED and now - self._since > dev.limits.max_pause_min * 60.0:
            self._end(now, "stopped")
        return list(vented)

    def _make_pattern(self) -> Pattern:
        pattern = make_pattern(
            self.settings.mode,
            device=self.device,
            setpoints=self._current_setpoints,
            cap=lambda: setpoint_cap_mmhg(self.device, self.settings),
            rest_s=self.settings.rest_s,
        )
        self._pattern_mode = self.settings.mode
        return pattern

    def _current_setpoints(self) -> list[float]:
        ramp = 1.0
        dev = self.device
        if dev.soft_start and dev.soft_start_s > 0 and self.session is not None:
            ramp = self.session.running_s / dev.soft_start_s
        return zone_setpoints(dev, self.settings, ramp=ramp)

    def _heat_setpoint(self) -> float | None:
        s = self.settings
        if self.status is not Status.RUNNING or s.heat is Heat.OFF or self.session is None:
            return None
        if s.heat_minutes is not None and self.session.running_s >= s.heat_minutes * 60.0:
            return None
        return HEAT_SETPOINT_C[s.heat]

    def _on_trip(self, now: float, trip: Trip, orders: Orders) -> None:
        self._raise(now, trip)
        if trip.code.ends_session:
            orders.make_safe()  # act in this tick, not the next one

    def _raise(self, now: float, trip: Trip) -> None:
        self.fault = trip.code
        self.fault_message = trip.message
        self._emit(
            EventType.FAULT_RAISED,
            now,
            code=trip.code.value,
            priority=trip.priority.value,
            message=trip.message,
            zone=None if trip.zone is None else self.device.zones[trip.zone],
        )
        if trip.priority is Priority.HIGH:
            if self.status is Status.SELF_TEST:
                self._end_selftest(now, aborted=f"fault {trip.code}: {trip.message}")
            self._set_status(Status.FAULT, now)
            self._end(now, f"fault:{trip.code}")
        elif trip.code.ends_session and self.status in ACTIVE:
            self._end(now, f"fault:{trip.code}")

    def _set_status(self, status: Status, now: float) -> None:
        self.status = status
        self._since = now

    def _emit(self, event_type: EventType, now: float, **data: Any) -> None:
        session_id = self.session.id if self.session else None
        self._events.append(Event(event_type=event_type, at=now, session_id=session_id, data=data))

    # -- read-outs ------------------------------------------------------------------------
    def drain_events(self) -> list[Event]:
        """Return and forget the events since the last call."""
        events, self._events = self._events, []
        return events

    @property
    def cycles(self) -> int:
        """Pattern cycles completed in the current (or last) session."""
        return self._cycles_before + (self.pattern.cycles if self.pattern else 0)

    @property
    def phase(self) -> Phase | None:
        """The pattern's phase while running (venting, too, before a fit check), else None."""
        if self.status is Status.RUNNING and self.pattern is not None:
            return self.pattern.phase
        if self.status is Status.FIT_CHECK and not self._fit_vented:
            return Phase.VENTING
        return None

    @property
    def hottest_c(self) -> float | None:
        """The warmest heater reading; None while no sensor has a reading (NaN is not JSON)."""
        return max((t for t in self.temperatures if math.isfinite(t)), default=None)

    @property
    def quiet(self) -> bool:
        """Nothing to regulate: idle or latched in a fault, every zone vented, no pad warm.

        The runner may then tick at the idle rate (docs/device.md, idle rate). A zone at or
        above `vent_below_mmhg`, a pad within `heater_over_setpoint_c` of the trip, or any
        other status (a command that starts something) means the full rate again.
        """
        if self.status is not Status.IDLE and self.status is not Status.FAULT:
            return False
        lim = self.device.limits
        vented = lim.vent_below_mmhg
        if not all(p < vented for p in self.pressures):  # NaN counts as air held
            return False
        warm = lim.heater_trip_c - lim.heater_over_setpoint_c
        return not any(t >= warm for t in self.temperatures)

    def remaining_s(self) -> float:
        """Seconds of session time left (0 when no session is active)."""
        if self.session is None or self.status not in ACTIVE:
            return 0.0
        return max(self.settings.duration_min * 60.0 - self.session.running_s, 0.0)

    def snapshot(self, now: float) -> Snapshot:
        """What the device is doing now (the basis of the MQTT `state` and `telemetry`)."""
        s = self.settings
        zones = self.device.zones
        active = self.status in ACTIVE and self.session is not None
        elapsed = self.session.running_s if active and self.session else 0.0
        remaining = self.remaining_s()
        ends_at = None
        if self.status in (Status.RUNNING, Status.FIT_CHECK):
            ends_at = self._wall(now) + timedelta(seconds=remaining)
        return Snapshot(
            status=self.status,
            phase=self.phase,
            settings=s,
            remaining_s=remaining,
            elapsed_s=elapsed,
            progress=elapsed / (s.duration_min * 60.0) if active else 0.0,
            ends_at=ends_at,
            session_id=self.session.id if active and self.session else None,
            pressures=dict(zip(zones, self.pressures, strict=True)),
            targets=dict(zip(zones, self.targets, strict=True)),
            heater_c=self.hottest_c,
            fault=self.fault,
            fault_message=self.fault_message or None,
            sessions_completed=self.sessions_completed,
            therapy_s_total=self.therapy_s_total,
        )
