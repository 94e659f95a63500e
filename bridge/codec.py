"""The MQTT contract (README: MQTT): topics, the command parser, and the response/event payloads.

`parse_command` is total: any bytes give a `ParsedCommand` or a `CommandError` naming the field
and the reason. It never raises, and it checks everything before anything is applied.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from device.control.massager import Action, Command
from device.settings import SettingChanges

MAX_PAYLOAD_BYTES = 4096
STALE_AFTER_S = 30.0
"""A command whose `ts` is older than this is refused as stale."""
AHEAD_LIMIT_S = 2.0
"""How far a `ts` may lie ahead (clock skew); a command further ahead would outlive the limit."""
MAX_RESPONSE_TOPIC = 256
DEVICE_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
Transaction = str | int | float


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one device under its base topic."""

    base: str

    @property
    def availability(self) -> str:
        """Retained `online`/`offline`; the last will."""
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        """Retained full JSON snapshot."""
        return f"{self.base}/state"

    @property
    def telemetry(self) -> str:
        """Fast per-zone data, not retained."""
        return f"{self.base}/telemetry"

    @property
    def event(self) -> str:
        """Session and fault events, never retained."""
        return f"{self.base}/event"

    @property
    def set(self) -> str:
        """Commands in."""
        return f"{self.base}/set"

    @property
    def power(self) -> str:
        """The power line: `ON` starts, anything else stops and vents (a connection of its own)."""
        return f"{self.base}/power"

    @property
    def get(self) -> str:
        """Anything here re-publishes the state."""
        return f"{self.base}/get"

    @property
    def selftest(self) -> str:
        """Retained: the last self-test's report, or the one running now."""
        return f"{self.base}/selftest"

    @property
    def stats(self) -> str:
        """Retained: therapy minutes, sessions, streak, adherence and the last session."""
        return f"{self.base}/stats"

    @property
    def diagnostics(self) -> str:
        """Retained, every minute: the agent's health (control loop, broker, CPU temperature)."""
        return f"{self.base}/diagnostics"

    @property
    def update(self) -> str:
        """Retained: the installed legwave and the newest release, for the update entity."""
        return f"{self.base}/update"

    @property
    def update_install(self) -> str:
        """`install`: install the newest release when idle (with `update.install` on)."""
        return f"{self.base}/update/install"

    @property
    def response(self) -> str:
        """One reply per command."""
        return f"{self.base}/response"


class CommandBody(SettingChanges):
    """The JSON object on `…/set` (docs/mqtt.md); every field optional, nothing else allowed.

    Validated once, here: the settings it changes go to the device as they are
    (`SettingChanges`), and the device checks only what depends on it (its zones).
    """

    # NaN and Infinity are not JSON (RFC 8259); a number that overflows to infinity is no number
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    action: Action | None = Field(None, description="what to do; with settings, after them")
    power: Literal["ON", "OFF"] | None = Field(None, description="ON starts, OFF stops")
    transaction: Transaction | None = Field(None, description="echoed in the response")
    ts: float | datetime | None = Field(
        None,
        description=(
            f"when it was sent: Unix seconds or ISO 8601 with a zone; older than "
            f"{STALE_AFTER_S:g} s, or more than {AHEAD_LIMIT_S:g} s ahead, is refused"
        ),
    )


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A command that passed every check, and the transaction to echo."""

    command: Command
    transaction: Transaction | None = None


@dataclass(frozen=True, slots=True)
class CommandError:
    """Why a payload was refused.

    Args:
        code: ``too_large``, ``malformed``, ``invalid`` or ``stale``.
        message: names the field and the reason.
        field: the offending field, when one is at fault.
        transaction: echoed when it could be read.
    """

    code: str
    message: str
    field: str | None = None
    transaction: Transaction | None = None


def parse_command(payload: bytes, *, now: float) -> ParsedCommand | CommandError:
    """Parse a `…/set` payload received at `now` (Unix seconds). Never raises."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return CommandError(
            "too_large", f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )
    try:
        body = CommandBody.model_validate_json(payload, strict=True)  # one pass when it is good
    except (ValueError, RecursionError):  # ValidationError is a ValueError
        return _refusal(payload)
    transaction = body.transaction
    if body.ts is not None:
        sent = body.ts.timestamp() if isinstance(body.ts, datetime) else body.ts
        if isinstance(body.ts, datetime) and body.ts.tzinfo is None:
            return CommandError("invalid", "ts: needs a time zone", "ts", transaction)
        age = now - sent
        if age > STALE_AFTER_S:
            return CommandError(
                "stale",
                f"ts: command is {age:.0f} s old (limit {STALE_AFTER_S:.0f} s)",
                "ts",
                transaction,
            )
        if age < -AHEAD_LIMIT_S:
            return CommandError(
                "stale",
                f"ts: {-age:.0f} s in the future (limit {AHEAD_LIMIT_S:.0f} s): "
                "is the sender's clock, or this device's, set?",
                "ts",
                transaction,
            )
    action = body.action
    if body.power is not None:
        wanted = Action.START if body.power == "ON" else Action.STOP
        if action is not None and action is not wanted:
            return CommandError(
                "invalid", f"power: {body.power} contradicts action {action}", "power", transaction
            )
        action = wanted
    given = {
        name: getattr(body, name)
        for name in body.model_fields_set & SettingChanges.model_fields.keys()
        if getattr(body, name) is not None
    }
    changes = SettingChanges.model_construct(set(given), **given)
    return ParsedCommand(Command(action=action, changes=changes), transaction)


def _refusal(payload: bytes) -> CommandError:
    """Why `payload` is no command: not JSON, not an object, or its first invalid field."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return CommandError("malformed", f"payload is not valid JSON: {_short(exc)}")
    if not isinstance(data, dict):
        return CommandError("invalid", "payload must be a JSON object")
    transaction = _echoable(data.get("transaction"))
    try:
        CommandBody.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        # The body is flat: the first location is the field (the rest names a union member).
        field = str(err["loc"][0]) if err["loc"] else None
        where = f"{field}: " if field else ""
        return CommandError("invalid", f"{where}{err['msg']}", field, transaction)
    except (ValueError, RecursionError) as exc:
        return CommandError("malformed", f"payload is not valid JSON: {_short(exc)}")
    # Python's reader took what pydantic's refused the first time: say so rather than guess.
    return CommandError("malformed", "payload is not valid JSON")  # pragma: no cover


def _echoable(value: object) -> Transaction | None:
    """A transaction id that can be echoed in strict JSON, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, str | int) else None


def response_topic_problem(topic: str, *, own: tuple[str, ...]) -> str | None:
    """Why an MQTT 5 response topic cannot be answered on, or None when it can.

    Args:
        topic: the response topic a command asked for.
        own: topics of the device's own inputs: an answer there would come back as a command.
    """
    if not topic:
        return "it is empty"
    if len(topic) > MAX_RESPONSE_TOPIC:
        return f"it is longer than {MAX_RESPONSE_TOPIC} characters"
    if "+" in topic or "#" in topic:
        return "it has a wildcard (+ or #): one cannot publish to it"
    if "\0" in topic:
        return "it has a NUL character"
    if topic.startswith("$"):
        return "topics starting with $ belong to the broker"
    if topic in own:
        return "it is one of this device's own input topics"
    return None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def to_json(data: dict[str, Any]) -> bytes:
    """Compact, strict JSON (RFC 8259) for every payload: a NaN or an infinity becomes null.

    Python's `json` writes ``NaN`` and ``Infinity`` by default, which Home Assistant and every
    strict parser refuse: one such value would make the whole retained state unreadable.
    """
    try:
        return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return json.dumps(finite(data), separators=(",", ":"), allow_nan=False).encode()


def pretty_json(data: Any) -> str:
    """Indented strict JSON for people (the command line's output), non-finite numbers as null."""
    return json.dumps(finite(data), indent=2, ensure_ascii=False, allow_nan=False)


def finite(value: Any) -> Any:
    """`value` with every non-finite float, however deep, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
