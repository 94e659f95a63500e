"""The Home Assistant entity table: the one place each entity is defined.

Discovery payloads are generated from it (`bridge.discovery`). Its templates read the fields of
`bridge.contract`'s messages (a test fails on a field that does not exist), and the entity table
of `docs/home-assistant.md` is held to it by a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from device.control.faults import FaultCode
from device.control.massager import EventType, Status
from device.control.selftest import SELFTEST_RESULTS
from device.settings import PRESETS, Heat, Mode, Posture, Vibration

EVENT_TYPES = [e.value for e in EventType]


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity of the device.

    Args:
        key: stable key; the unique_id is ``<device_id>_<key>``. Never rename.
        platform: Home Assistant platform.
        name: the feature's name (None: the entity is named after the device).
        options: platform options (templates, classes, units…), topics excepted.
        commands: the entity sends commands to `…/set`.
        power_line: it sends to `…/power` instead: switching off, stopping and venting get
            through whatever floods `…/set`.
        reads: the topic its state comes from: `state`, `event`, `selftest` (the self-test's
            report), `stats` (minutes, streak, adherence, the last session) or `diagnostics`.
    """

    key: str
    platform: str
    name: str | None
    options: dict[str, Any] = field(default_factory=dict)
    commands: bool = False
    power_line: bool = False
    reads: Literal["state", "event", "selftest", "stats", "diagnostics", "update"] = "state"


def _select(key: str, name: str, values: list[str], **extra: Any) -> Entity:
    options: dict[str, Any] = {
        "options": values,
        "value_template": f"{{{{ value_json.{key} }}}}",
        "command_template": f'{{"{key}": "{{{{ value }}}}"}}',
    }
    options.update(extra)
    return Entity(key, "select", name, options, commands=True)


def _button(action: str, name: str, *, power_line: bool = False, **extra: Any) -> Entity:
    return Entity(
        action,
        "button",
        name,
        {"payload_press": f'{{"action": "{action}"}}', **extra},
        commands=True,
        power_line=power_line,
    )


def entity_table(zones: list[str], *, updates: bool = False) -> list[Entity]:
    """Every entity of a device with these zones, in display order.

    `updates`: the update entity too (a release source is configured).
    """
    table = [
        Entity(
            "power",
            "switch",
            None,
            {
                "value_template": "{{ value_json.power }}",
                "payload_on": '{"power": "ON"}',
                "payload_off": '{"power": "OFF"}',
                "state_on": "ON",
                "state_off": "OFF",
            },
            commands=True,
            power_line=True,
        ),
        _button("start", "Start", icon="mdi:play"),
        _button("stop", "Stop", power_line=True, icon="mdi:stop"),
        _button("pause", "Pause", icon="mdi:pause"),
        _button("resume", "Resume", icon="mdi:play-pause"),
        _button("vent", "Vent now", power_line=True, icon="mdi:weather-windy"),
        _select("preset", "Preset", list(PRESETS), icon="mdi:playlist-star"),
        _select("mode", "Mode", [m.value for m in Mode], icon="mdi:sine-wave"),
        Entity(
            "intensity",
            "number",
            "Intensity",
            {
                "min": 1,
                "max": 7,
                "step": 1,
                "mode": "slider",
                "value_template": "{{ value_json.intensity }}",
                "command_template": '{"intensity": {{ value | int }}}',
                "icon": "mdi:gauge",
            },
            commands=True,
        ),
        Entity(
            "duration",
            "number",
            "Session length",
            {
                "min": 5,
                "max": 60,
                "step": 1,
                "mode": "box",
                "device_class": "duration",
                "unit_of_measurement": "min",
                "value_template": "{{ value_json.duration_min }}",
                "command_template": '{"duration_min": {{ value | int }}}',
            },
            commands=True,
        ),
        _select("heat", "Heat", [h.value for h in Heat], icon="mdi:heat-wave"),
        _select("vibration", "Vibration", [v.value for v in Vibration], icon="mdi:vibrate"),
        # Home Assistant reads a select value "none" as no value at all: show "off" instead.
        _select(
            "zone_boost",
            "Zone boost",
            ["off", *zones],
            entity_category="config",
            value_template=(
                "{{ 'off' if value_json.zone_boost == 'none' else value_json.zone_boost }}"
            ),
            command_template="{\"zone_boost\": \"{{ 'none' if value == 'off' else value }}\"}",
        ),
        _select("posture", "Posture", [p.value for p in Posture], entity_category="config"),
        Entity(
            "status",
            "sensor",
            "Status",
            {
                "device_class": "enum",
                "options": [s.value for s in Status],
                "value_template": "{{ value_json.status }}",
            },
        ),
        Entity(
            "remaining",
            "sensor",
            "Time remaining",
            {
                "device_class": "duration",
                "unit_of_measurement": "s",
                "suggested_display_precision": 0,
                "value_template": "{{ value_json.remaining_s }}",
            },
        ),
        Entity(
            "ends_at",
            "sensor",
            "Session ends",
            {"device_class": "timestamp", "value_template": "{{ value_json.ends_at }}"},
        ),
        Entity(
            "progress",
            "sensor",
            "Progress",
            {
                "unit_of_measurement": "%",
                "value_template": "{{ value_json.progress }}",
                "icon": "mdi:progress-clock",
            },
        ),
    ]
    for zone in zones:
        table.append(
            Entity(
                f"pressure_{zone}",
                "sensor",
                f"{zone.replace('_', ' ').capitalize()} pressure",
                {
                    "device_class": "pressure",
                    "unit_of_measurement": "mmHg",
                    "suggested_display_precision": 1,
                    "state_class": "measurement",
                    "entity_category": "diagnostic",
                    "enabled_by_default": False,
                    "value_template": f"{{{{ value_json.pressure_mmhg.{zone} }}}}",
                },
            )
        )
    table += [
        Entity(
            "heater",
            "sensor",
            "Heater temperature",
            {
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "suggested_display_precision": 1,
                "state_class": "measurement",
                "value_template": "{{ value_json.heater_c }}",
            },
        ),
        Entity(
            "problem",
            "binary_sensor",
            "Problem",
            {
                "device_class": "problem",
                "value_template": "{{ 'ON' if value_json.fault else 'OFF' }}",
                "json_attributes_template": (
                    '{{ {"fault": value_json.fault, "fault_message": value_json.fault_message}'
                    " | tojson }}"
                ),
            },
        ),
        Entity(
            "fault",
            "sensor",
            "Fault",
            {
                "device_class": "enum",
                "options": ["none", *(f.value for f in FaultCode)],
                "entity_category": "diagnostic",
                "value_template": "{{ value_json.fault or 'none' }}",
            },
        ),
        Entity("session", "event", "Session", {"event_types": EVENT_TYPES}, reads="event"),
        # A whole JSON command in one message (`notify.send_message`): how scripts, blueprints
        # and voice answers reach this device through Home Assistant, never through a topic.
        Entity(
            "command",
            "notify",
            "Command",
            {"icon": "mdi:code-json", "entity_category": "config"},
            commands=True,
        ),
        _button("selftest", "Self-test", entity_category="diagnostic", icon="mdi:stethoscope"),
        Entity(
            "selftest_result",
            "sensor",
            "Self-test result",
            {
                "device_class": "enum",
                "options": list(SELFTEST_RESULTS),
                "entity_category": "diagnostic",
                "icon": "mdi:clipboard-check-outline",
                # the whole report as attributes: time, problems, each zone, each heater
                "value_template": "{{ value_json.result }}",
            },
            reads="selftest",
        ),
        Entity(
            "sessions_completed",
            "sensor",
            "Sessions completed",
            {
                "state_class": "total_increasing",
                "value_template": "{{ value_json.sessions_completed }}",
                "icon": "mdi:counter",
            },
        ),
        *STATS_ENTITIES,
        *DIAGNOSTIC_ENTITIES,
    ]
    if updates:
        table.append(UPDATE_ENTITY)
    return table


def _minutes(key: str, name: str, field: str, state_class: str) -> Entity:
    options = {
        "device_class": "duration",
        "unit_of_measurement": "min",
        "state_class": state_class,
        "suggested_display_precision": 0,
        "value_template": f"{{{{ value_json.{field} }}}}",
    }
    return Entity(key, "sensor", name, options, reads="stats")


# What people track (docs/home-assistant.md): shaped for Home Assistant's long-term statistics.
# A count that starts again each day or week is `total_increasing` (a drop is its reset).
STATS_ENTITIES = (
    _minutes("therapy_today", "Therapy today", "minutes_today", "total_increasing"),
    _minutes("therapy_7d", "Therapy, last 7 days", "minutes_7d", "measurement"),
    Entity(
        "sessions_week",
        "sensor",
        "Sessions this week",
        {
            "state_class": "total_increasing",
            "value_template": "{{ value_json.sessions_week }}",
            "icon": "mdi:calendar-check",
        },
        reads="stats",
    ),
    Entity(
        "streak",
        "sensor",
        "Streak",
        {
            "unit_of_measurement": "d",
            "state_class": "measurement",
            "value_template": "{{ value_json.streak_days }}",
            "icon": "mdi:fire",
        },
        reads="stats",
    ),
    Entity(
        "adherence",
        "sensor",
        "Adherence, 30 days",
        {
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "value_template": "{{ value_json.adherence_pct }}",
            "icon": "mdi:chart-donut",
        },
        reads="stats",
    ),
    Entity(
        "last_session",
        "sensor",
        "Last session",
        {
            "value_template": (
                "{{ value_json.last_session.end_reason if value_json.last_session else 'none' }}"
            ),
            "json_attributes_template": "{{ (value_json.last_session or {}) | tojson }}",
            "icon": "mdi:history",
        },
        reads="stats",
    ),
)


def _diagnostic(key: str, platform: str, name: str, **options: Any) -> Entity:
    return Entity(
        key, platform, name, {"entity_category": "diagnostic", **options}, reads="diagnostics"
    )


# How the agent itself is doing, on the device page's Diagnostic card (every minute).
DIAGNOSTIC_ENTITIES = (
    _diagnostic(
        "started",
        "sensor",
        "Running since",
        device_class="timestamp",
        value_template="{{ value_json.started_at }}",
    ),
    _diagnostic(
        "loop_lateness",
        "sensor",
        "Control loop lateness",
        unit_of_measurement="ms",
        state_class="measurement",
        suggested_display_precision=2,
        icon="mdi:timer-alert-outline",
        value_template="{{ value_json.lateness_p99_ms }}",
        json_attributes_template=(
            '{{ {"max_ms": value_json.lateness_max_ms, "ticks": value_json.ticks} | tojson }}'
        ),
    ),
    _diagnostic(
        "late_ticks",
        "sensor",
        "Late control ticks",
        state_class="total_increasing",
        icon="mdi:timer-sand-complete",
        value_template="{{ value_json.late_ticks }}",
    ),
    _diagnostic(
        "cpu_temperature",
        "sensor",
        "CPU temperature",
        device_class="temperature",
        unit_of_measurement="°C",
        state_class="measurement",
        suggested_display_precision=1,
        value_template="{{ value_json.cpu_temp_c }}",
    ),
    _diagnostic(
        "broker",
        "binary_sensor",
        "Broker connection",
        device_class="connectivity",
        value_template="{{ 'ON' if value_json.connected else 'OFF' }}",
        json_attributes_template='{{ {"reconnects": value_json.reconnects} | tojson }}',
    ),
)

# The installed legwave against the newest release of the configured source (`…/update` holds
# Home Assistant's own update fields: installed_version, latest_version, release_url, …).
UPDATE_ENTITY = Entity(
    "software", "update", "Software", {"entity_category": "config"}, reads="update"
)
