"""The command parser is total: any bytes give a command or an error naming the field."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.codec import (
    MAX_PAYLOAD_BYTES,
    CommandError,
    ParsedCommand,
    Topics,
    parse_command,
    to_json,
)
from device.control.massager import Action

NOW = 1_800_000_000.0


def parse(body: Any) -> ParsedCommand | CommandError:
    return parse_command(json.dumps(body).encode(), now=NOW)


def test_topics() -> None:
    t = Topics("legwave/abc")
    assert (t.availability, t.state, t.set, t.get, t.response, t.event, t.telemetry) == (
        "legwave/abc/availability",
        "legwave/abc/state",
        "legwave/abc/set",
        "legwave/abc/get",
        "legwave/abc/response",
        "legwave/abc/event",
        "legwave/abc/telemetry",
    )


def test_a_combined_start_is_one_command() -> None:
    out = parse({"action": "start", "preset": "bedtime", "duration_min": 30, "transaction": "t-1"})
    assert isinstance(out, ParsedCommand)
    assert out.command.action is Action.START
    assert out.command.changes.given() == {"preset": "bedtime", "duration_min": 30}
    assert out.transaction == "t-1"


@pytest.mark.parametrize(("power", "action"), [("ON", Action.START), ("OFF", Action.STOP)])
def test_power_is_the_switch(power: str, action: Action) -> None:
    out = parse({"power": power})
    assert isinstance(out, ParsedCommand) and out.command.action is action


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"intensity": 8}, "invalid", "intensity"),
        ({"intensity": "3"}, "invalid", "intensity"),
        ({"intensity": 3.5}, "invalid", "intensity"),
        ({"intensity": True}, "invalid", "intensity"),
        ({"duration_min": 61}, "invalid", "duration_min"),
        ({"heat": "max"}, "invalid", "heat"),
        ({"action": "explode"}, "invalid", "action"),
        ({"unknown": 1}, "invalid", "unknown"),
        ({"transaction": [1]}, "invalid", "transaction"),
        ({"power": "on"}, "invalid", "power"),
        ({"power": "OFF", "action": "start"}, "invalid", "power"),
        ({"ts": NOW - 31}, "stale", "ts"),
        ({"ts": NOW + 120}, "stale", "ts"),
        ({"ts": NOW + 30}, "stale", "ts"),
        ({"ts": "2027-01-15T08:00:00"}, "invalid", "ts"),
    ],
)
def test_refusals_name_the_field(body: dict[str, Any], code: str, field: str) -> None:
    out = parse(body)
    assert isinstance(out, CommandError)
    assert (out.code, out.field) == (code, field)
    assert out.message.startswith(field)


def test_a_fresh_ts_is_accepted_in_either_form() -> None:
    assert isinstance(parse({"action": "stop", "ts": NOW - 5}), ParsedCommand)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(NOW - 5))
    assert isinstance(parse({"action": "stop", "ts": iso}), ParsedCommand)


def test_the_transaction_is_echoed_even_on_error() -> None:
    out = parse({"intensity": 99, "transaction": 17})
    assert isinstance(out, CommandError) and out.transaction == 17


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "malformed"),
        (b"{", "malformed"),
        (b"\xff\xfe\x00", "malformed"),
        (b"[" * 3_000, "malformed"),  # deep nesting: a RecursionError inside json
        (b"null", "invalid"),
        (b'"start"', "invalid"),
        (b"[1]", "invalid"),
        (b'{"a": 1}' + b" " * MAX_PAYLOAD_BYTES, "too_large"),
    ],
)
def test_broken_payloads(payload: bytes, code: str) -> None:
    out = parse_command(payload, now=NOW)
    assert isinstance(out, CommandError) and out.code == code


# Every payload that ever broke the parser, with what it must give now.
REGRESSIONS: list[tuple[bytes, str]] = [
    (b'{"transaction": true}', "invalid"),  # a bool is no transaction id (and no int)
    (b'{"duration_min": 1e400}', "invalid"),  # infinity from an overflowing float
    (b'{"intensity": NaN}', "invalid"),
]


@pytest.mark.parametrize(("payload", "code"), REGRESSIONS)
def test_regressions(payload: bytes, code: str) -> None:
    out = parse_command(payload, now=NOW)
    assert isinstance(out, CommandError) and out.code == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["start", "stop", "pause", "vent", "clear_fault", "x", 1]),
        "intensity": st.integers(-2, 10) | st.floats() | st.text(max_size=3),
        "mode": st.sampled_from(["wave", "pulse", "gentle", "WAVE", ""]),
        "duration_min": st.integers(0, 100),
        "power": st.sampled_from(["ON", "OFF", "on", None]),
        "preset": st.sampled_from(["bedtime", "recovery", "nap"]),
        "transaction": st.integers() | st.text(max_size=8),
        "ts": st.floats(NOW - 100, NOW + 100) | st.text(max_size=5),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600)
    | json_values.map(lambda v: json.dumps(v).encode())
    | near_valid.map(lambda v: json.dumps(v).encode())
)
def test_the_parser_is_total(payload: bytes) -> None:
    out = parse_command(payload, now=NOW)
    assert isinstance(out, ParsedCommand | CommandError)
    if isinstance(out, CommandError):
        assert out.code in {"too_large", "malformed", "invalid", "stale"}
        assert out.message
    else:
        # whatever passed is within bounds
        changes = out.command.changes.given()
        if "intensity" in changes:
            assert 1 <= changes["intensity"] <= 7
        if "duration_min" in changes:
            assert 5 <= changes["duration_min"] <= 60


def test_a_ts_ahead_of_the_clock_is_refused_beyond_a_little_skew() -> None:
    assert isinstance(parse({"action": "stop", "ts": NOW + 1.5}), ParsedCommand)
    late = parse({"action": "stop", "ts": NOW + 20})  # it would live 50 s, not 30
    assert isinstance(late, CommandError) and late.code == "stale"
    assert "in the future" in late.message


def test_every_payload_legwave_writes_is_strict_json() -> None:
    data = {"heater_c": math.nan, "zones": {"foot": math.inf}, "list": [1.5, -math.inf]}
    text = to_json(data)
    assert json.loads(text) == {"heater_c": None, "zones": {"foot": None}, "list": [1.5, None]}
    state = {"status": "idle"}
    assert to_json(state) == b'{"status":"idle"}'
