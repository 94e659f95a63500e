"""`pip install legwave[pi]` pulls the Pi libraries on a Pi and nothing anywhere else."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PI_LIBRARIES = {"gpiozero", "lgpio", "rpi-lgpio", "smbus2"}


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def _installed_on(platform: str, machine: str) -> set[str]:
    env = {"sys_platform": platform, "platform_machine": machine, "extra": "pi"}
    return {r.name for r in _extra("pi") if r.marker is None or r.marker.evaluate(env)}


@pytest.mark.parametrize("machine", ["aarch64", "armv7l", "armv6l"])
def test_on_a_pi_the_pi_extra_installs_the_gpio_and_i2c_libraries(machine: str) -> None:
    assert _installed_on("linux", machine) == PI_LIBRARIES


@pytest.mark.parametrize(
    ("platform", "machine"),
    [("linux", "x86_64"), ("darwin", "arm64"), ("win32", "AMD64"), ("darwin", "x86_64")],
)
def test_elsewhere_the_pi_extra_installs_nothing(platform: str, machine: str) -> None:
    assert _installed_on(platform, machine) == set()


def test_the_original_rpi_gpio_is_never_pulled_in() -> None:
    # rpi-lgpio and RPi.GPIO both install the module RPi.GPIO; the original fails on a Pi 5
    names = {r.name.lower() for extra in ("pi", "dev") for r in _extra(extra)}
    assert "rpi.gpio" not in names
