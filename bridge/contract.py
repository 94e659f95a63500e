"""What the device says on MQTT, defined once: state, telemetry, events, responses, self-test.

Control hands over typed values (`device.control.massager.Snapshot`, `Event`); this module
shapes them as Home Assistant reads them (`"power": "ON"`, readings in tenths, times in ISO
8601). The entity table names these models' fields (a test fails on a field that does not
exist) and `docs/mqtt.md` is generated from them (`python -m bridge.contract`; a test fails
when it is out of date).

Payloads are built with `model_construct` (the values come typed from the device, and a state is
published on every change): the tests validate what goes out against the same models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from bridge.codec import Transaction
from device.control.faults import FaultCode, Priority
from device.control.massager import Event, EventType, Snapshot, Status
from device.control.patterns import Phase
from device.control.selftest import SELFTEST_RESULTS
from device.settings import DurationMin, Heat, Intensity, Mode, Posture, Vibration

SelftestResult = Literal["never_run", "running", "passed", "failed", "aborted"]
assert get_args(SelftestResult) == SELFTEST_RESULTS  # noqa: S101 - one list, two spellings


def tenth(value: float) -> float:
    """Round to 0.1 for display; a reading of -0.04 shows as 0.0, not -0.0."""
    return round(value, 1) + 0.0


class _Payload(BaseModel):
    # pydantic writes NaN and infinities as null: every payload is strict JSON (RFC 8259)
    model_config = ConfigDict(frozen=True, extra="forbid")

    def payload(self) -> bytes:
        """The compact JSON sent on MQTT."""
        return self.model_dump_json().encode()


Pressures = Annotated[dict[str, float], Field(description="measured pressure per zone, 0.1 mmHg")]
Targets = Annotated[
    dict[str, float | None],
    Field(description="set-point per zone, 0.1 mmHg; null where the zone vents or rests"),
]
HeaterC = Annotated[
    float | None, Field(description="the warmest heater, 0.1 °C; null before a reading")
]


class Telemetry(_Payload):
    """`…/telemetry`: fast readings while a session runs (not retained)."""

    pressure_mmhg: Pressures
    target_mmhg: Targets
    heater_c: HeaterC

    @classmethod
    def of(cls, snap: Snapshot) -> Telemetry:
        """The telemetry of `snap`."""
        return cls.model_construct(**_readings(snap))


class State(_Payload):
    """`…/state`: the whole device, retained; published on every change."""

    status: Status = Field(description="where the device is in its lifecycle")
    phase: Phase | None = Field(description="the pattern's phase while running")
    power: Literal["ON", "OFF"] = Field(description="ON while a session is active")
    mode: Mode = Field(description="compression pattern")
    preset: str | None = Field(description="the preset the settings came from, if any")
    intensity: Intensity
    heat: Heat = Field(description="heater level")
    vibration: Vibration = Field(description="vibration level")
    duration_min: DurationMin
    posture: Posture = Field(description="lying or seated (seated lowers the upper zones)")
    zone_boost: str = Field(description="a zone given more pressure, or none")
    remaining_s: int = Field(description="session time left, seconds")
    elapsed_s: int = Field(description="session time done, seconds")
    progress: int = Field(description="session done, percent")
    ends_at: str | None = Field(description="when the session ends (ISO 8601), while it runs")
    session_id: str | None = Field(description="the active session's id")
    pressure_mmhg: Pressures
    target_mmhg: Targets
    heater_c: HeaterC
    fault: FaultCode | None = Field(description="the latched fault, if any")
    fault_message: str | None = Field(description="what the fault means, for people")
    sessions_completed: int = Field(description="sessions run to their end, ever")
    therapy_minutes_total: float = Field(description="minutes of therapy, ever, 0.1 min")
    uptime_s: int = Field(description="seconds since the agent started")
    version: str = Field(description="legwave's version")

    @classmethod
    def of(cls, snap: Snapshot, *, uptime_s: float, version: str) -> State:
        """The state message of `snap`."""
        s = snap.settings
        return cls.model_construct(
            status=snap.status,
            phase=snap.phase,
            power="ON" if snap.active else "OFF",
            mode=s.mode,
            preset=s.preset,
            intensity=s.intensity,
            heat=s.heat,
            vibration=s.vibration,
            duration_min=s.duration_min,
            posture=s.posture,
            zone_boost=s.zone_boost,
            remaining_s=round(snap.remaining_s),
            elapsed_s=round(snap.elapsed_s),
            progress=round(100.0 * snap.progress),
            ends_at=None if snap.ends_at is None else snap.ends_at.isoformat(),
            session_id=snap.session_id,
            fault=snap.fault,
            fault_message=snap.fault_message,
            sessions_completed=snap.sessions_completed,
            therapy_minutes_total=round(snap.therapy_s_total / 60.0, 1),
            uptime_s=round(uptime_s),
            version=version,
            **_readings(snap),
        )


def _readings(snap: Snapshot) -> dict[str, Any]:
    return {
        "pressure_mmhg": {z: tenth(p) for z, p in snap.pressures.items()},
        "target_mmhg": {z: None if t is None else tenth(t) for z, t in snap.targets.items()},
        "heater_c": None if snap.heater_c is None else tenth(snap.heater_c),
    }


class EventMessage(_Payload):
    """`…/event`: something happened (never retained). Fields beyond the first two by type."""

    event_type: EventType = Field(description="what happened")
    session_id: str | None = Field(description="the session it belongs to, if any")
    preset: str | None = Field(None, description="session_started: the preset, if any")
    mode: Mode | None = Field(None, description="session_started")
    intensity: int | None = Field(None, description="session_started")
    duration_min: int | None = Field(None, description="session_started: the planned length")
    end_reason: str | None = Field(
        None,
        description=(
            "session_completed/session_stopped: completed, stopped, interrupted (the agent "
            "restarted mid-session) or fault:<code>"
        ),
    )
    duration_s: float | None = Field(
        None, description="session_completed/session_stopped/selftest_finished: seconds it ran"
    )
    code: FaultCode | None = Field(None, description="fault_raised/fault_cleared: which fault")
    priority: Priority | None = Field(
        None, description="fault_raised: high stops everything and vents"
    )
    message: str | None = Field(None, description="fault_raised: what it means, for people")
    zone: str | None = Field(None, description="fault_raised: the zone, when one is at fault")
    result: SelftestResult | None = Field(None, description="selftest_finished")
    problems: list[str] | None = Field(None, description="selftest_finished: what failed")

    @classmethod
    def of(cls, event: Event) -> EventMessage:
        """The event message of `event` (validated: events are few, and their data untyped)."""
        return cls.model_validate(
            {"event_type": event.event_type, "session_id": event.session_id, **event.data}
        )

    def payload(self) -> bytes:
        """Only the fields this event type has."""
        return self.model_dump_json(exclude_unset=True).encode()


EVENT_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.SESSION_STARTED: ("preset", "mode", "intensity", "duration_min"),
    EventType.SESSION_COMPLETED: ("end_reason", "duration_s"),
    EventType.SESSION_STOPPED: ("end_reason", "duration_s"),
    EventType.FAULT_RAISED: ("code", "priority", "message", "zone"),
    EventType.FAULT_CLEARED: ("code",),
    EventType.SELFTEST_STARTED: (),
    EventType.SELFTEST_FINISHED: ("result", "duration_s", "problems"),
}
"""The fields each event type carries beside `event_type` and `session_id`."""


class ResponseError(_Payload):
    """Why a command was refused."""

    code: str = Field(
        description=(
            "too_large, malformed, invalid, stale, rate_limited, or the device's own refusal "
            "(busy, fault, not_commissioned, …)"
        )
    )
    message: str = Field(description="names the field and the reason")
    field: str | None = Field(description="the field at fault, when one is")


class Response(_Payload):
    """`…/response` (or the MQTT 5 response topic): one answer per command."""

    status: Literal["ok", "error"] = Field(description="applied, or refused")
    transaction: Transaction | None = Field(description="the command's `transaction`, echoed")
    error: ResponseError | None = Field(None, description="set when refused")
    state: State | None = Field(None, description="the state after the command")

    def payload(self) -> bytes:
        """Without `error` on success, without `state` where none is sent."""
        return self.model_dump_json(exclude_unset=True).encode()


def response(
    *,
    ok: bool,
    transaction: Transaction | None,
    code: str | None = None,
    message: str | None = None,
    field: str | None = None,
    state: State | None = None,
) -> bytes:
    """The JSON answer to a command."""
    body: dict[str, Any] = {"status": "ok" if ok else "error", "transaction": transaction}
    if not ok:
        body["error"] = ResponseError.model_construct(
            code=code or "invalid", message=message or "", field=field
        )
    if state is not None:
        body["state"] = state
    return Response.model_construct(**body).payload()


class SelftestReport(_Payload):
    """`…/selftest`: retained; the self-test running now, else the last one's report."""

    model_config = ConfigDict(frozen=True, extra="allow")

    result: SelftestResult = Field(description="never_run until the first self-test")
    step: str | None = Field(None, description="the step running now")
    duration_s: float | None = Field(None, description="how long it took, seconds")
    aborted: str | None = Field(None, description="why it was cut short")
    problems: list[str] = Field([], description="what failed, with the likely causes")
    zones: dict[str, dict[str, Any]] = Field({}, description="per zone: fill, hold, vent")
    heaters: dict[str, dict[str, Any]] = Field({}, description="per heater: rise, supply cut")
    vibration: str | None = Field(None, description="what was done to the motor")
    finished_at: str | None = Field(None, description="when it finished (ISO 8601)")
    wiring: str | None = Field(None, description="the wiring and calibration it was run on")


class LastSession(_Payload):
    """The last session that ended."""

    end_reason: str = Field(
        description="completed, stopped, time_limit, interrupted, or fault: and its code"
    )
    preset: str | None = Field(description="the preset it started with, if any")
    minutes: float = Field(description="minutes it ran (pauses not counted), 0.1 min")
    planned_minutes: int = Field(description="the length it was planned for")
    peak_mmhg: float = Field(description="the highest zone pressure it reached, 0.1 mmHg")
    started_at: str = Field(description="when it started (ISO 8601, UTC)")
    ended_at: str | None = Field(description="when it ended (ISO 8601, UTC)")


class StatsMessage(_Payload):
    """`…/stats`: retained; the numbers people track, from the sessions the device remembers."""

    day: str = Field(description="the agent's local day these are for (ISO 8601 date)")
    minutes_today: float = Field(description="therapy minutes today, 0.1 min")
    minutes_7d: float = Field(description="therapy minutes today and the 6 days before")
    sessions_week: int = Field(description="sessions started this week (from Monday)")
    streak_days: int = Field(
        description="days in a row with a completed session, up to today or yesterday"
    )
    adherence_pct: int = Field(
        description="share of the last 30 days with a completed session, percent"
    )
    last_session: LastSession | None = Field(description="null before the first one ends")


class DiagnosticsMessage(_Payload):
    """`…/diagnostics`: retained, every minute; how the agent itself is doing."""

    started_at: str = Field(description="when the agent started (ISO 8601, UTC)")
    uptime_s: int = Field(description="seconds since the agent started")
    ticks: int = Field(description="control ticks in the last minute")
    lateness_p99_ms: float | None = Field(
        description="99th percentile of the control ticks' lateness in the last minute, ms"
    )
    lateness_max_ms: float | None = Field(description="the latest tick of the last minute, ms")
    late_ticks: int = Field(description="ticks more than one period late since the start")
    cpu_temp_c: float | None = Field(description="the CPU's temperature, where the board says")
    connected: bool = Field(description="connected to the broker (always true when received)")
    reconnects: int = Field(description="connections to the broker after the first")


class UpdateMessage(_Payload):
    """`…/update`: retained; Home Assistant's update entity reads these fields as they are.

    Its schema takes a string or nothing for each text field, never null: a field not known yet
    is left out, and a summary with nothing to say is empty (which clears the one shown).
    """

    installed_version: str = Field(description="the legwave this agent runs")
    latest_version: str | None = Field(
        description="the newest release of the configured source; absent until it answered"
    )
    title: str = Field(description="what is updated")
    release_url: str | None = Field(description="where the release notes are; absent if unknown")
    release_summary: str = Field(
        description=(
            "the release in a line, after what became of the last install or why it was "
            "refused (at most 255 characters; empty when there is nothing to say)"
        )
    )
    in_progress: bool = Field(description="an install is running")
    update_percentage: int | None = Field(
        description="how far the install is, 0–100; null when none runs"
    )

    def payload(self) -> bytes:
        """The JSON, without the text fields not known yet."""
        unknown = {k for k in ("latest_version", "release_url") if getattr(self, k) is None}
        return self.model_dump_json(exclude=unknown).encode()


__all__ = [
    "EVENT_FIELDS",
    "DiagnosticsMessage",
    "EventMessage",
    "LastSession",
    "Response",
    "ResponseError",
    "SelftestReport",
    "State",
    "StatsMessage",
    "Telemetry",
    "UpdateMessage",
    "response",
    "tenth",
]
