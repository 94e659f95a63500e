"""deploy/legwave.service and deploy/install.sh: the unit systemd reads, the install it stages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "legwave.service"


def unit_entries(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections → key → values (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_the_unit_is_a_notify_service_with_a_watchdog_and_restarts() -> None:
    service = unit_entries(UNIT.read_text())["Service"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["5s"]
    assert service["Restart"] == ["on-failure"]
    assert service["ExecStart"] == [
        "/opt/legwave/venv/bin/legwave --config /etc/legwave/config.yaml run"
    ]
    assert service["User"] == ["legwave"]
    assert service["SupplementaryGroups"] == ["gpio i2c"]
    assert service["StateDirectory"] == ["legwave"]


def test_the_unit_is_hardened_but_keeps_gpio_and_i2c() -> None:
    service = unit_entries(UNIT.read_text())["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "DevicePolicy": "closed",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",  # AF_UNIX: the notify socket
    }.items():
        assert service[key] == [value], key
    assert set(service["DeviceAllow"]) == {
        "char-gpiochip rw",  # gpiozero/lgpio and rpi-lgpio
        "/dev/gpiomem rw",  # RPi.GPIO on a Pi 4 and older
        "char-i2c rw",  # the ADS1115s
    }
    assert "PrivateDevices" not in service  # it would hide /dev/gpiochip*


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_every_line_of_the_unit(tmp_path: Path) -> None:
    # the unit as installed, with the binary pointed at one that exists on this machine
    unit = tmp_path / "legwave.service"
    text = UNIT.read_text()
    for binary in ("/opt/legwave/venv/bin/legwave", "/opt/legwave/venv/bin/python"):
        text = text.replace(binary, sys.executable)
    unit.write_text(text)
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if str(unit) in line  # only lines about our file, not the host's own units
    ]
    assert problems == []
    assert out.returncode == 0


def install(
    *args: str, destdir: Path | str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """deploy/install.sh, staged into `destdir`."""
    return subprocess.run(
        ["bash", str(ROOT / "deploy" / "install.sh"), *args],
        env={**os.environ, "DESTDIR": str(destdir)},
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
    )


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """deploy/install.sh run once, staged into a folder (DESTDIR)."""
    stage = tmp_path_factory.mktemp("stage")
    out = install("--backend", "rpigpio", destdir=str(stage))
    return stage, out.stdout


def test_install_stages_the_venv_the_unit_and_a_private_config(staged: tuple[Path, str]) -> None:
    stage, _ = staged
    legwave = stage / "opt/legwave/venv/bin/legwave"
    version = subprocess.run([legwave, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("legwave ")
    assert (stage / "etc/systemd/system/legwave.service").read_text() == UNIT.read_text()
    config = stage / "etc/legwave/config.yaml"
    assert config.stat().st_mode & 0o777 == 0o640  # it will hold the broker password
    check = subprocess.run(
        [legwave, "--config", config, "config", "check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert "backend rpigpio, 4 zones" in check.stdout
    assert (stage / "opt/legwave/docs/hardware.md").exists()
    # the guard the unit runs around each start: this release's, outside what pip replaces
    guard = stage / "opt/legwave/update-guard.py"
    assert guard.read_text() == (ROOT / "bridge" / "update_guard.py").read_text()
    assert not (stage / "etc/systemd/system/legwave.service.d/updates.conf").exists()


def test_install_says_what_it_would_change_on_the_system(staged: tuple[Path, str]) -> None:
    _, log = staged
    would = [line.split("would run: ", 1)[1] for line in log.splitlines() if "would run: " in line]
    assert "apt-get install -y -qq python3-venv python3-lgpio i2c-tools mosquitto" in would
    assert (
        "useradd --system --home-dir /var/lib/legwave --no-create-home "
        "--shell /usr/sbin/nologin --groups gpio,i2c legwave"
    ) in would
    assert would[-2:] == ["systemctl daemon-reload", "systemctl enable legwave.service"]


def test_pi_libraries_stay_off_a_machine_that_is_not_a_pi(staged: tuple[Path, str]) -> None:
    stage, _ = staged
    if os.uname().machine in ("aarch64", "armv7l", "armv6l"):
        pytest.skip("on a Pi they belong there")
    python = stage / "opt/legwave/venv/bin/python"
    # legwave's own dependencies resolve in the venv (its own, or the system's it can see)
    subprocess.run([python, "-c", "import aiomqtt, pydantic, pydantic_settings, yaml"], check=True)
    pip = subprocess.run(
        [python, "-m", "pip", "list"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "legwave" in pip
    for pi_only in ("lgpio", "rpi-lgpio", "smbus2"):
        assert pi_only not in pip.split()


def test_a_second_run_keeps_the_users_config(staged: tuple[Path, str]) -> None:
    stage, _ = staged
    config = stage / "etc/legwave/config.yaml"
    config.write_text(config.read_text() + "# my broker\n")
    out = install(destdir=str(stage))
    assert "keeping the existing /etc/legwave/config.yaml" in out.stdout
    assert config.read_text().endswith("# my broker\n")


def test_install_refuses_bad_options() -> None:
    out = install("--backend", "arduino", destdir="/nonexistent", check=False)
    assert out.returncode == 1
    assert "--backend must be gpiozero or rpigpio" in out.stderr


def test_with_no_broker_given_it_installs_one_and_ends_with_the_bring_up_steps(
    staged: tuple[Path, str],
) -> None:
    _, log = staged
    would = [line.split("would run: ", 1)[1] for line in log.splitlines() if "would run: " in line]
    assert "systemctl enable --now mosquitto.service" in would
    steps = log[log.index("done. Next") :]
    order = [steps.index(word) for word in ("doctor", "calibrate", "selftest", "systemctl start")]
    assert order == sorted(order), steps
    assert "--preset first_use" in steps


def test_a_broker_elsewhere_means_no_mosquitto_here(tmp_path: Path) -> None:
    # (with --updates too: each install of a venv costs seconds)
    out = install("--broker", "192.168.1.10:1884", "--updates", destdir=str(tmp_path))
    assert "mosquitto" not in out.stdout.replace("no broker installed here", "")
    assert "no broker installed here: legwave uses 192.168.1.10" in out.stdout
    config = (tmp_path / "etc/legwave/config.yaml").read_text()
    assert "host: 192.168.1.10 " in config and "port: 1884" in config
    # --updates: the venv is the agent's, and the unit may write to it
    assert "would run: chown -R legwave:legwave /opt/legwave/venv" in out.stdout
    dropin = tmp_path / "etc/systemd/system/legwave.service.d/updates.conf"
    assert unit_entries(dropin.read_text())["Service"]["ReadWritePaths"] == ["/opt/legwave/venv"]
    # run again without --broker: the configuration names that broker, still none here; and
    # without --updates: the unit may no longer write to the venv
    again = install(destdir=str(tmp_path))
    assert "enable --now mosquitto" not in again.stdout
    assert not dropin.exists()


def test_broker_options_are_checked() -> None:
    for args, says in (
        (["--broker", "x", "--local-broker"], "choose one"),
        (["--broker", "host:port"], "is not a port"),
    ):
        out = install(*args, destdir="/nonexistent", check=False)
        assert out.returncode == 1
        assert says in out.stderr
