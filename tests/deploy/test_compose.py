"""docker-compose.yml, the Dockerfile and .env.example agree with each other and with the repo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_three_services_on_loopback_ports_only() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", "homeassistant", "agent"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert services["agent"]["depends_on"] == ["mosquitto"]
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
