"""Agent configuration: a YAML file plus ``LEGWAVE_…`` environment variables (env wins).

``LEGWAVE_MQTT__HOST=broker`` sets ``mqtt.host``; nested keys use ``__``. The device's own
settings and safety limits (`device.settings.DeviceSettings`) sit under ``device:`` with their
hard bounds. `load_settings` raises `ConfigError` listing every problem with its path.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from bridge.codec import DEVICE_ID
from bridge.discovery import entity_slug
from bridge.health import default_state_dir
from device.backends import BackendName
from device.backends.pi.config import PiConfig
from device.settings import DeviceSettings
from device.store import write_atomic

log = logging.getLogger(__name__)
_yaml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml_path", default=None)


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` lists ``path: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def plain_topic(value: str) -> str:
    """A topic to publish to or match exactly: no wildcard, no NUL, no empty level at an end."""
    if not value or value.startswith("/") or value.endswith("/"):
        raise ValueError("must be a topic like 'homeassistant', without '/' at either end")
    if any(c in value for c in "#+\0"):
        raise ValueError("must be a plain topic: no wildcards (+ or #)")
    if value.startswith("$"):
        raise ValueError("topics starting with $ belong to the broker")
    return value


class TlsSettings(BaseModel):
    """TLS to the broker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip hostname checks (tests only)")

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        # Checked here, or a missing file would read like an unreachable broker for ever.
        if value is None:
            return value
        value = value.expanduser()
        if not value.exists():
            raise ValueError(f"{value} does not exist")
        if not value.is_file():
            raise ValueError(f"{value} is not a file")
        if not os.access(value, os.R_OK):
            raise ValueError(f"{value} cannot be read by this user")
        return value


class MqttSettings(BaseModel):
    """The broker. With no host, `legwave run` starts its own on 127.0.0.1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str | None = None
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsSettings | None = None
    keepalive_s: int = Field(15, ge=2, le=600)
    connect_timeout_s: float = Field(10.0, gt=0, le=120)
    protocol: Literal["5", "3.1.1"] = "5"
    reconnect_max_s: float = Field(60.0, ge=1, le=3600)

    def credentials(self) -> tuple[str | None, str | None]:
        """Username and password for the client (the one place the password is unwrapped)."""
        return self.username, self.password.get_secret_value() if self.password else None


class HomeAssistantSettings(BaseModel):
    """Home Assistant discovery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    discovery: Literal["device", "per_component", "registrar"] = Field(
        "device",
        description=(
            "device (one message), per_component (one per entity, older Home Assistant) or "
            "registrar (through `legwave registrar`, which checks it: the compose stack)"
        ),
    )
    prefix: str = "homeassistant"
    status_topic: str = "homeassistant/status"
    name: str = Field(
        "Leg Massager",
        min_length=1,
        max_length=64,
        description=(
            "the device's name in Home Assistant; its entity ids follow it (switch.leg_massager, "
            "sensor.leg_massager_status): give each massager in a home its own"
        ),
    )
    suggested_area: str | None = "Bedroom"

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        value = " ".join(value.split())
        if not entity_slug(value):
            raise ValueError("needs a letter or a digit (the entity ids are made from it)")
        return value

    @field_validator("prefix", "status_topic")
    @classmethod
    def _plain(cls, value: str) -> str:
        return plain_topic(value)


class UpdateSettings(BaseModel):
    """Where to look for a newer legwave (none by default: the agent asks nobody unless told)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(
        None,
        description=(
            "the URL of a JSON document naming the newest release: a package index's JSON API "
            '(https://pypi.org/pypi/legwave/json) or {"version": …, "release_url": …}'
        ),
    )
    check_every_h: float = Field(24.0, ge=1, le=168, description="hours between two checks")
    install: bool = Field(
        False,
        description=(
            "let Home Assistant install the newest release (when idle, under systemd, with a "
            "rollback): the agent's environment must be writable by it (deploy/install.sh "
            "--updates)"
        ),
    )
    index_url: str | None = Field(
        None,
        description="the package index to install from (pip's --index-url); default: pip's own",
    )

    @field_validator("source", "index_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _installs_from_a_source(self) -> Self:
        if self.install and self.source is None:
            raise ValueError("install needs a source: the release it would install")
        return self


class AgentSettings(BaseSettings):
    """Everything `legwave run` needs."""

    model_config = SettingsConfigDict(
        env_prefix="LEGWAVE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    device_id: str | None = None
    base_topic: str | None = None
    state_dir: Path = Field(default_factory=default_state_dir)
    backend: BackendName = Field(
        "sim", description="sim, or on a Raspberry Pi gpiozero (every Pi) or rpigpio"
    )
    telemetry_hz: float = Field(2.0, ge=0, le=5)
    state_interval_s: float = Field(5.0, ge=1, le=600)  # while a session runs
    mqtt: MqttSettings = MqttSettings()
    homeassistant: HomeAssistantSettings = HomeAssistantSettings()
    update: UpdateSettings = UpdateSettings()
    device: DeviceSettings = DeviceSettings()
    pi: PiConfig = Field(default_factory=PiConfig, description="the wiring, for a Pi backend")
    plant_socket: Path | None = Field(
        None, description="a legwave plant's socket (backend plant); default: in state_dir"
    )

    @model_validator(mode="after")
    def _wiring_fits_the_device(self) -> Self:
        if self.backend != "sim":
            problems = self.pi.check_device(self.device)
            if problems:
                raise ValueError("; ".join(f"pi.{p}" for p in problems))
        return self

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str | None) -> str | None:
        if value is not None and not DEVICE_ID.match(value):
            raise ValueError("must match [a-z0-9_-]{1,64}")
        return value

    @field_validator("state_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def plant_path(self) -> Path:
        """Where `legwave plant` listens and the plant backend connects."""
        return self.plant_socket or self.state_dir / "plant.sock"

    @field_validator("base_topic")
    @classmethod
    def _base_topic(cls, value: str | None) -> str | None:
        return None if value is None else plain_topic(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments, then environment, then the YAML file."""
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        path = _yaml_path.get()
        if path is None:
            return {}
        import yaml  # only with a configuration file: the environment alone needs no parser

        try:
            data = yaml.safe_load(path.read_bytes().decode())
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
        except UnicodeDecodeError as exc:
            byte = exc.object[exc.start]
            raise ConfigError(
                [f"{path}: not UTF-8 text (byte {byte:#04x} at offset {exc.start})"]
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(
                [f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}"]
            ) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: the top level must be a mapping of settings"])
        _check_file_mode(path, data)
        return data


def _check_file_mode(path: Path, data: dict[str, Any]) -> None:
    """Refuse a config file that every user may change, or read when it holds a secret."""
    mode = path.stat().st_mode
    problems = []
    if mode & stat.S_IWOTH:
        problems.append(
            f"{path}: every user on this machine can change it (it says which broker to trust "
            f"and how hard to squeeze): chmod o-w {path}"
        )
    mqtt = data.get("mqtt")
    if isinstance(mqtt, dict) and mqtt.get("password") and mode & stat.S_IROTH:
        problems.append(
            f"{path}: it holds the broker password and every user on this machine can read "
            f"it: chmod 600 {path} (or 640 with the service's group)"
        )
    if problems:
        raise ConfigError(problems)


def _check_key_file(settings: AgentSettings) -> None:
    tls = settings.mqtt.tls
    if tls is None or tls.key_file is None:
        return
    try:
        mode = tls.key_file.stat().st_mode
    except OSError:
        return  # a missing file is the TLS client's to report
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigError(
            [
                f"mqtt.tls.key_file: {tls.key_file} is open to every user on this machine: "
                f"chmod 600 {tls.key_file}"
            ]
        )


def load_settings(path: Path | None = None, **overrides: Any) -> AgentSettings:
    """Load settings from `path` (YAML, optional) and the environment.

    Raises:
        ConfigError: every problem, each as ``path.to.field: reason``.
    """
    token = _yaml_path.set(path)
    try:
        settings = AgentSettings(**overrides)
        _check_key_file(settings)
        return settings
    except ValidationError as exc:
        problems = [problem for e in exc.errors() for problem in _describe(e)]
        raise ConfigError(problems) from None
    except SettingsError as exc:
        raise ConfigError(_environment_problems(exc)) from None
    finally:
        _yaml_path.reset(token)


def _environment_problems(exc: SettingsError) -> list[str]:
    """Name the variables a `SettingsError` (a value that is not JSON) comes from."""
    field = re.search(r'field "([^"]+)"', str(exc))
    prefix = f"LEGWAVE_{field.group(1) if field else ''}".upper()
    culprits = []
    for name, value in os.environ.items():
        if not name.upper().startswith(prefix):
            continue
        try:
            json.loads(value)
        except ValueError:
            culprits.append(name)
    example = """'["foot", "calf"]' or '{"max_setpoint_mmhg": 60}'"""
    where = ", ".join(sorted(culprits)) or f"a {prefix}… variable"
    return [
        f"environment: {where}: not valid JSON (a list or a mapping in a variable is written "
        f"as JSON, e.g. {example})"
    ]


_SUB_PATH = re.compile(r"[a-z_][a-z0-9_.]*")
_TAGGED = {"pressure", "temperature"}
"""Settings whose value is one of several parts told apart by `kind`."""


def _describe(error: Any) -> list[str]:
    """``path: reason`` lines for one validation error.

    A validator that finds several problems joins them with "; ", each naming its sub-path
    ("pins.pump: GPIO0 is not usable"): they become one line each, under the error's path.
    """
    loc = [str(x) for x in error["loc"]]
    # a discriminated union puts the part's kind into the path (pressure.ads1115.sensor):
    # the config file has no such level
    loc = [x for i, x in enumerate(loc) if i == 0 or loc[i - 1] not in _TAGGED]
    where = ".".join(loc)
    message = str(error["msg"])
    parts = [message]
    if error["type"] == "value_error":
        parts = message.removeprefix("Value error, ").split("; ")
    lines = []
    for part in parts:
        head, sep, rest = part.partition(": ")
        if sep and _SUB_PATH.fullmatch(head):
            lines.append(f"{where}.{head}: {rest}" if where else f"{head}: {rest}")
        else:
            lines.append(f"{where or '(top level)'}: {part}")
    return lines


def resolve_device_id(settings: AgentSettings, *, create: bool = True) -> str:
    """The configured device id, else the one kept in the state directory, else a new one.

    Args:
        settings: the configuration.
        create: make (and keep) a new id when there is none yet; the agent does, the command
            line's tools do not (they would talk to a device that does not exist).

    Raises:
        ConfigError: the kept id cannot be read, or there is none and `create` is False.
    """
    if settings.device_id:
        return settings.device_id
    path = settings.state_dir / "device_id"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = None
    except OSError as exc:
        # Not a reason for a new id: Home Assistant would see a second device.
        raise ConfigError(
            [f"{path}: cannot read the device id ({exc.strerror or exc}); fix its permissions"]
        ) from None
    if raw is not None:
        stored = raw.decode(errors="replace").strip()
        if DEVICE_ID.match(stored):
            return stored
    if not create:
        raise ConfigError(
            [
                f"device_id: none set, and none kept in {settings.state_dir} yet: start the "
                "agent once (legwave run), or set device_id (LEGWAVE_DEVICE_ID)"
            ]
        )
    new = f"legwave_{secrets.token_hex(4)}"
    if raw is not None:
        aside = path.with_name(f"device_id.invalid-{int(time.time())}")
        path.replace(aside)
        log.warning(
            "%s does not hold a device id (%r; it must match [a-z0-9_-]{1,64}): kept it as %s "
            "and made a new id, %s. Home Assistant will see a new device: put the old id back "
            "in the file, or set device_id, to keep the old one",
            path,
            stored[:40],
            aside.name,
            new,
        )
    write_atomic(path, new + "\n")
    return new
