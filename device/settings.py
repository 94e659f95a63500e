"""Settings a user chooses, device configuration and the safety limits, with hard bounds.

Every number the control logic and the safety supervisor use lives here, once. Safety limits
have bounds a configuration cannot exceed: a config may only tighten them (README: safety).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


class Mode(StrEnum):
    """Compression pattern (README: Patterns)."""

    WAVE = "wave"
    PULSE = "pulse"
    SQUEEZE = "squeeze"
    KNEAD = "knead"
    GENTLE = "gentle"


class Heat(StrEnum):
    """Heat level; the skin-side set-point is in `HEAT_SETPOINT_C`."""

    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Vibration(StrEnum):
    """Vibration level; the motor duty is in `VIBRATION_DUTY`."""

    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Posture(StrEnum):
    """How the user sits; seated caps set-points at 70 mmHg."""

    LYING = "lying"
    SEATED = "seated"


HEAT_SETPOINT_C: dict[Heat, float] = {Heat.LOW: 38.0, Heat.MEDIUM: 40.0, Heat.HIGH: 41.0}
VIBRATION_DUTY: dict[Vibration, float] = {
    Vibration.OFF: 0.0,
    Vibration.LOW: 0.33,
    Vibration.MEDIUM: 0.66,
    Vibration.HIGH: 1.0,
}
SEATED_MAX_MMHG = 70
NO_BOOST = "none"

Intensity = Annotated[int, Field(ge=1, le=7, description="level 1-7")]
DurationMin = Annotated[int, Field(ge=5, le=60, description="session length, whole minutes")]
_ZONE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,23}$")


def intensity_setpoint_mmhg(level: int) -> int:
    """Distal set-point of an intensity level: 1 → 20 mmHg … 7 → 80 mmHg."""
    return 10 + 10 * level


def known_preset(value: str | None) -> str | None:
    """`value`, when it names a preset (or is None)."""
    if value is not None and value not in PRESETS:
        raise ValueError(f"unknown preset {value!r}; choose one of {', '.join(PRESETS)}")
    return value


class SessionSettings(BaseModel):
    """What the user chose for a session (README: Settings). Frozen: changes make a new object."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Mode.WAVE
    intensity: Intensity = 3
    heat: Heat = Heat.OFF
    vibration: Vibration = Vibration.OFF
    duration_min: DurationMin = 20
    zone_boost: str = NO_BOOST
    posture: Posture = Posture.LYING
    preset: str | None = None
    # Preset refinements: the rest between cycles (None: the pattern's default) and how long
    # heat runs in a session (None: until the heat limit).
    rest_s: float | None = Field(None, ge=0, le=120)
    heat_minutes: int | None = Field(None, ge=1, le=30)

    def changed(self, changes: SettingChanges) -> SessionSettings:
        """A copy with `changes` applied (a preset first); they were validated when made."""
        given = changes.given()
        preset = given.pop("preset", None)
        update: dict[str, Any] = {}
        base = self
        if preset is not None:
            base = PRESETS[preset]
        elif set(given) & {"mode", "heat", "intensity", "duration_min", "posture"}:
            update["preset"] = None  # the settings no longer are the preset's
            if "mode" in given:
                update["rest_s"] = None
            if "heat" in given:
                update["heat_minutes"] = None
        return base.model_copy(update={**update, **given})

    def with_changes(self, **changes: Any) -> SessionSettings:
        """A copy with `changes` applied, validated (the Python API's way to say `changed`).

        Raises:
            ValidationError: a change is out of range or unknown; nothing changed.
        """
        return self.changed(SettingChanges(**changes))

    _known_preset = field_validator("preset")(known_preset)


class SettingChanges(BaseModel):
    """The settings a command changes, validated once: each one not given stays as it is."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    mode: Mode | None = Field(None, description="compression pattern")
    intensity: Intensity | None = Field(None, description="pressure level")
    heat: Heat | None = Field(None, description="heater level")
    vibration: Vibration | None = Field(None, description="vibration level")
    duration_min: DurationMin | None = Field(None, description="session length, minutes")
    zone_boost: str | None = Field(None, description="a zone of this device, or none")
    posture: Posture | None = Field(None, description="seated lowers the upper zones")
    preset: str | None = Field(None, description="a preset: sets every field first")

    def given(self) -> dict[str, Any]:
        """The changes, by field, as typed values."""
        return {name: getattr(self, name) for name in self.model_fields_set}

    def __bool__(self) -> bool:
        return bool(self.model_fields_set)

    _known_preset = field_validator("preset")(known_preset)


class SettingRejectedError(ValueError):
    """Settings that do not fit this device; `field` names the setting at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


PRESETS: dict[str, SessionSettings] = {}
"""Named presets (README: Settings); choosing one sets every field in one step."""


def _preset(name: str, **fields: Any) -> None:
    PRESETS[name] = SessionSettings.model_construct(
        **{**SessionSettings().model_dump(), **fields, "preset": name}
    )


_preset("recovery", duration_min=20, intensity=3, mode=Mode.WAVE)
_preset(
    "bedtime", duration_min=45, intensity=2, mode=Mode.GENTLE, heat=Heat.MEDIUM, heat_minutes=20
)
_preset(
    "desk_break",
    duration_min=15,
    intensity=3,
    posture=Posture.SEATED,
    mode=Mode.WAVE,
    heat=Heat.LOW,
)
_preset(
    "warm_up",
    duration_min=10,
    intensity=3,
    mode=Mode.WAVE,
    rest_s=10.0,
    heat=Heat.MEDIUM,
    vibration=Vibration.LOW,
)
_preset("circulation", duration_min=20, intensity=4, mode=Mode.PULSE)
_preset("first_use", duration_min=10, intensity=1, mode=Mode.WAVE)
for _p in PRESETS.values():  # the table above must itself be valid
    SessionSettings.model_validate(_p.model_dump())


class Limits(BaseModel):
    """Safety limits (README: safety). The bounds are hard: configuration may only tighten them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_setpoint_mmhg: int = Field(80, ge=20, le=80)
    max_session_min: int = Field(90, ge=5, le=90)
    overpressure_margin_mmhg: float = Field(15.0, ge=5, le=15)
    overpressure_abs_mmhg: float = Field(100.0, ge=30, le=100)
    hard_limit_mmhg: float = Field(120.0, ge=40, le=120)
    vent_below_mmhg: float = Field(5.0, ge=1, le=5)
    vent_timeout_s: float = Field(5.0, ge=1, le=5)
    heater_trip_c: float = Field(43.0, ge=30, le=43)
    heater_over_setpoint_c: float = Field(2.0, ge=0.5, le=2)
    heater_over_setpoint_s: float = Field(30.0, ge=1, le=30)
    heat_max_min: float = Field(30.0, ge=1, le=30)
    hold_max_s: float = Field(60.0, ge=10, le=60)
    hold_above_mmhg: float = Field(15.0, ge=5, le=15)
    leak_rate_mmhg_s: float = Field(2.0, ge=0.5, le=2)
    inflate_timeout_s: float = Field(30.0, ge=5, le=30)
    no_rise_s: float = Field(5.0, ge=1, le=5)
    """Pump time (a zone's share) within which filling must raise its reading by `no_rise_mmhg`:
    else a sleeve is off, a hose loose or the sensor dead, and the zone may hold any pressure."""
    no_rise_mmhg: float = Field(2.0, ge=2, le=10)
    sensor_min_mmhg: float = Field(-10.0, ge=-20, le=0)
    sensor_max_mmhg: float = Field(250.0, ge=120, le=300)
    sensor_jump_mmhg: float = Field(30.0, ge=5, le=30)
    sensor_stuck_s: float = Field(5.0, ge=1, le=5)
    sensor_frozen_s: float = Field(30.0, ge=5, le=30)
    sensor_stale_ticks: int = Field(5, ge=2, le=5)
    temperature_stale_s: float = Field(5.0, ge=1, le=5)
    temperature_range_c: tuple[float, float] = (-20.0, 85.0)
    overrun_ticks: int = Field(5, ge=2, le=5)
    max_pause_min: float = Field(30.0, ge=1, le=60)


class PatternTimings(BaseModel):
    """Pattern timings (README: Patterns); all configurable, the defaults are the README's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stagger_s: float = Field(0.5, ge=0, le=10)
    start_next_at: float = Field(0.9, gt=0, le=1)
    wave_hold_s: float = Field(3.0, ge=0, le=30)
    wave_rest_s: float = Field(20.0, ge=0, le=120)
    pulse_hold_s: float = Field(3.0, ge=0, le=30)
    pulse_rest_s: float = Field(15.0, ge=0, le=120)
    squeeze_hold_s: float = Field(5.0, ge=0, le=30)
    squeeze_rest_s: float = Field(25.0, ge=0, le=120)
    knead_hold_s: float = Field(3.0, ge=0, le=30)
    knead_max_level: int = Field(4, ge=1, le=7)
    gentle_squeeze_s: float = Field(5.0, ge=1, le=30)
    gentle_period_s: float = Field(60.0, ge=10, le=300)
    gentle_max_mmhg: float = Field(30.0, ge=10, le=80)
    gentle_zones: list[str] | None = None
    gradient_mmhg: float = Field(5.0, ge=0, le=20)
    gradient_floor_mmhg: float = Field(10.0, ge=5, le=40)
    zone_boost_mmhg: float = Field(10.0, ge=0, le=20)


class RegulatorTuning(BaseModel):
    """Per-zone pressure regulator tuning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stop_early_mmhg: float = Field(0.5, ge=0, le=5)
    refill_below_mmhg: float = Field(3.0, ge=0.5, le=10)
    bleed_above_mmhg: float = Field(3.0, ge=0.5, le=10)
    bleed_until_mmhg: float = Field(1.0, ge=0, le=10)
    pump_min_duty: float = Field(0.55, ge=0.1, le=1)
    pump_ramp_mmhg: float = Field(12.0, ge=0.5, le=50)
    reached_tolerance_mmhg: float = Field(1.5, ge=0, le=10)
    share_band_mmhg: float = Field(4.0, ge=0, le=20)


class HeatTuning(BaseModel):
    """Heater PI controller and time-proportioning window (2-10 s, never fast PWM)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_s: float = Field(4.0, ge=2, le=10)
    kp_per_c: float = Field(0.35, ge=0, le=5)
    ki_per_c_s: float = Field(0.004, ge=0, le=1)
    integral_max: float = Field(0.7, ge=0, le=1)


class DeviceSettings(BaseModel):
    """Configuration of one device: zones, control rate, timings, tuning and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zones: list[str] = Field(
        default_factory=lambda: ["foot", "ankle", "calf", "upper_calf"], min_length=1, max_length=8
    )
    heaters: int = Field(2, ge=0, le=2, description="one per sleeve")
    control_hz: float = Field(50.0, ge=10, le=200)
    idle_hz: float = Field(
        10.0,
        ge=10,
        le=200,
        description="tick rate while quiet (idle, every zone vented): docs/device.md, idle rate",
    )
    soft_start: bool = True
    soft_start_s: float = Field(120.0, ge=0, le=600)
    fit_check_mmhg: float = Field(20.0, ge=5, le=40)
    fit_check_timeout_s: float = Field(15.0, ge=3, le=15)
    timings: PatternTimings = PatternTimings()
    regulator: RegulatorTuning = RegulatorTuning()
    heat: HeatTuning = HeatTuning()
    limits: Limits = Limits()

    @property
    def period_s(self) -> float:
        """Control period in seconds."""
        return 1.0 / self.control_hz

    @property
    def idle_period_s(self) -> float:
        """Period while the device is quiet (`Massager.quiet`), in seconds."""
        return 1.0 / self.idle_hz

    @field_validator("idle_hz")
    @classmethod
    def _idle_not_faster(cls, idle_hz: float, info: ValidationInfo) -> float:
        control_hz = info.data.get("control_hz")
        if control_hz is not None and idle_hz > control_hz:
            raise ValueError(f"must not exceed control_hz ({control_hz:g})")
        return idle_hz

    @field_validator("zones")
    @classmethod
    def _zone_names(cls, zones: list[str]) -> list[str]:
        for name in zones:
            if not _ZONE_NAME.match(name) or name == NO_BOOST:
                raise ValueError(f"zone name {name!r} must match [a-z][a-z0-9_]* and not be 'none'")
        if len(set(zones)) != len(zones):
            raise ValueError("zone names must be unique")
        return zones

    @model_validator(mode="after")
    def _gentle_zones_exist(self) -> Self:
        unknown = set(self.timings.gentle_zones or ()) - set(self.zones)
        if unknown:
            raise ValueError(f"timings.gentle_zones names unknown zones: {sorted(unknown)}")
        return self

    def check_session(self, settings: SessionSettings) -> None:
        """Refuse `settings` that do not fit this device (e.g. an unknown boost zone).

        Raises:
            SettingRejectedError: naming the setting.
        """
        if settings.zone_boost != NO_BOOST and settings.zone_boost not in self.zones:
            raise SettingRejectedError(
                "zone_boost",
                f"unknown zone {settings.zone_boost!r}; choose none or one of "
                f"{', '.join(self.zones)}",
            )
