"""Agent configuration: a YAML file plus ``LEGWAVE_…`` environment variables (env wins).

``LEGWAVE_MQTT__HOST=broker`` sets ``mqtt.host``; nested keys use ``__``. The device's own
settings and safety limits (`device.settings.DeviceSettings`) sit under ``device:`` with their
hard bounds. `load_settings` raises `ConfigError` listing every problem with its path.
"""

from __future__ import annotations

import contextvars
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any, Literal, Self

import yaml
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
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.codec import DEVICE_ID
from device.backends import BackendName
from device.backends.pi.config import PiConfig
from device.settings import DeviceSettings

_yaml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml_path", default=None)


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` lists ``path: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class TlsSettings(BaseModel):
    """TLS to the broker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip hostname checks (tests only)")


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

    discovery: Literal["device", "per_component"] = "device"
    prefix: str = "homeassistant"
    status_topic: str = "homeassistant/status"
    suggested_area: str | None = "Bedroom"


def default_state_dir() -> Path:
    """Where the device id, counters and history live by default."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "legwave"


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
    state_interval_s: float = Field(5.0, ge=1, le=600)  # while a session runs (SPEC §3)
    mqtt: MqttSettings = MqttSettings()
    homeassistant: HomeAssistantSettings = HomeAssistantSettings()
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
        if value is not None and (
            not value or any(c in value for c in "#+\0") or value.endswith("/")
        ):
            raise ValueError("must be a plain topic without wildcards or a trailing '/'")
        return value

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
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
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
    finally:
        _yaml_path.reset(token)


_SUB_PATH = re.compile(r"[a-z_][a-z0-9_.]*")


def _describe(error: Any) -> list[str]:
    """``path: reason`` lines for one validation error.

    A validator that finds several problems joins them with "; ", each naming its sub-path
    ("pins.pump: GPIO0 is not usable"): they become one line each, under the error's path.
    """
    where = ".".join(str(x) for x in error["loc"])
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


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a crash leaves the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_device_id(settings: AgentSettings) -> str:
    """The configured device id, else the one persisted in the state directory, else a new one."""
    if settings.device_id:
        return settings.device_id
    path = settings.state_dir / "device_id"
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        stored = ""
    if DEVICE_ID.match(stored):
        return stored
    new = f"legwave_{secrets.token_hex(4)}"
    write_atomic(path, new + "\n")
    return new
