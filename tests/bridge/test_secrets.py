"""Secrets stay secret: not in logs, state, memory or config check; files holding them private."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import ConfigError, load_settings
from bridge.service import build

SECRET = "Sq3eze-n0t-me"  # noqa: S105 - the secret the test looks for


def write(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "legwave.yaml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


CONFIG = f"mqtt:\n  host: 127.0.0.1\n  username: legwave\n  password: {SECRET}\n"


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o666])
def test_a_config_with_the_password_readable_by_everyone_is_refused(
    tmp_path: Path, mode: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, CONFIG, mode))
    text = "\n".join(caught.value.problems)
    assert "holds the broker password and every user on this machine can read it" in text
    assert "chmod 600" in text
    assert SECRET not in text


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o660])
def test_a_private_config_is_accepted(tmp_path: Path, mode: int) -> None:
    settings = load_settings(write(tmp_path, CONFIG, mode))
    assert settings.mqtt.credentials() == ("legwave", SECRET)


def test_a_config_everyone_may_change_is_refused_even_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="every user on this machine can change it"):
        load_settings(write(tmp_path, "device:\n  limits: {max_setpoint_mmhg: 60}\n", 0o646))
    assert load_settings(write(tmp_path, "mqtt:\n  port: 1884\n", 0o644)).mqtt.port == 1884


def test_a_world_readable_tls_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.chmod(key, 0o644)
    (tmp_path / "c.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    tls = {"host": "127.0.0.1", "tls": {"cert_file": tmp_path / "c.crt", "key_file": key}}
    with pytest.raises(ConfigError, match=r"mqtt\.tls\.key_file: .* chmod 600"):
        load_settings(None, mqtt=tls)
    os.chmod(key, 0o600)
    assert load_settings(None, mqtt=tls).mqtt.tls is not None


def test_the_password_is_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, CONFIG + f"state_dir: {tmp_path / 'state'}\n", 0o600)
    settings = load_settings(path)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()
    assert main(["--config", str(path), "config", "check"]) == 0
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err

    # the agent's state, its memory file and its log at debug level
    with caplog.at_level(logging.DEBUG):
        agent = build(settings, host="127.0.0.1", port=1)
        agent.runner.tick(agent.runner.clock.now())
        agent.remember(agent.runner.clock.now(), force=True)
        agent.close()
        asyncio.run(asyncio.sleep(0))
    assert SECRET not in agent.state(0.0).payload().decode()
    assert SECRET not in (tmp_path / "state" / "memory.json").read_text()
    assert SECRET not in caplog.text
    assert all(
        SECRET not in "".join(m.payload.decode(errors="replace") for m in agent.outbox.take())
        for _ in [0]
    )
