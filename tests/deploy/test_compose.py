"""docker-compose.yml, the Dockerfile and .env.example agree with each other and with the repo."""

from __future__ import annotations

import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_four_services_on_loopback_ports_only() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", "homeassistant", "agent", "registrar"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert services["agent"]["depends_on"] == ["mosquitto"]
    assert services["registrar"]["depends_on"] == ["mosquitto"]
    assert services["homeassistant"]["depends_on"] == ["mosquitto"]


def test_every_bind_mount_exists_and_config_is_read_only() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source, _target, *mode = volume.split(":")
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
                assert mode == ["ro"], (name, volume)


def test_the_agent_logs_in_as_its_device_id_with_the_env_password() -> None:
    env = compose()["services"]["agent"]["environment"]
    assert env["LEGWAVE_MQTT__HOST"] == "mosquitto"
    assert env["LEGWAVE_MQTT__USERNAME"] == env["LEGWAVE_DEVICE_ID"]
    assert "LEGWAVE_MQTT_PASSWORD" in env["LEGWAVE_MQTT__PASSWORD"]
    assert env["LEGWAVE_HOMEASSISTANT__DISCOVERY"] == "registrar"  # as the ACL requires


def test_the_registrar_runs_with_its_own_account() -> None:
    service = compose()["services"]["registrar"]
    assert service["command"] == ["registrar"]
    env = service["environment"]
    assert env["LEGWAVE_MQTT__USERNAME"] == "registrar"
    assert "REGISTRAR_MQTT_PASSWORD" in env["LEGWAVE_MQTT__PASSWORD"]


def test_env_example_names_every_variable_compose_needs() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert needed == set(example)


def test_the_image_is_slim_runs_as_a_user_and_checks_availability() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^USER legwave$", dockerfile, flags=re.MULTILINE)
    assert 'CMD ["legwave", "health"]' in dockerfile
    for copied in ("device", "bridge", "pyproject.toml"):
        assert (ROOT / copied).exists()


def test_the_documented_copy_of_env_example_is_private_and_never_committed(
    tmp_path: Path,
) -> None:
    """`.env` holds both passwords: the docs' command makes it 0600, and git ignores it."""
    commands = {
        line.split("#")[0].strip()
        for doc in ("README.md", "docs/home-assistant.md", "docker-compose.yml", ".env.example")
        for line in re.findall(r"install -m \d+ \.env\.example \.env", (ROOT / doc).read_text())
    }
    assert commands == {"install -m 600 .env.example .env"}
    for doc in ("README.md", "docs/home-assistant.md", "docker-compose.yml"):
        assert "cp .env.example" not in (ROOT / doc).read_text()
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    subprocess.run(shlex.split(commands.pop()), cwd=tmp_path, check=True)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    if (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
        assert ignored.returncode == 0
