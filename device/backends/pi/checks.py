"""The Raspberry Pi's part of `legwave doctor`: board, GPIO library, access, buses, sensors.

Each check adds a `Check` (OK, FAIL with the fix, or SKIP). The sensor check opens the hardware
for real: every line claimed low (the safe state), the pressure sensors zeroed with the exhausts
open, everything released again. `Host` says where the checks look, so tests can point them at
a folder laid out like a Pi's.
"""

from __future__ import annotations

import grp
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from device.backends import HardwareUnavailableError
from device.backends.pi.ads1115 import REG_CONFIG
from device.backends.pi.board import board_model, is_pi5_family, is_raspberry_pi
from device.backends.pi.config import (
    Ads1115Pressure,
    Ds18b20Temperature,
    NtcTemperature,
    PiConfig,
)

if TYPE_CHECKING:
    from device.backends.pi.lines import Gpio
    from device.settings import DeviceSettings

Verdict = Literal["OK", "FAIL", "SKIP"]
PI_INSTALL = "pip install 'legwave[pi]' (or rerun deploy/install.sh)"


@dataclass
class Check:
    """One line of the report."""

    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


@dataclass
class Host:
    """Where the checks look; tests point `root` at a folder laid out like a Pi's.

    Args:
        root: prefix for /proc, /dev, /sys and /etc paths.
        find_module: tells whether a module can be imported (without importing it).
        version_of: an installed distribution's version, or None.
        groups: the current user's group names.
        open_gpio: opens a GPIO backend (for the sensor check).
        open_i2c: opens an I2C bus (for the ADS1115 probe and the sensor check).
        can_open: whether this user may read and write a device node.
    """

    root: Path = Path("/")
    find_module: Callable[[str], bool] = field(default=lambda name: _spec_exists(name))
    version_of: Callable[[str], str | None] = field(default=lambda name: _version(name))
    groups: Callable[[], set[str]] = field(default=lambda: _groups())
    open_gpio: Callable[[str, Path], Gpio] | None = None
    open_i2c: Callable[[int], Any] | None = None
    can_open: Callable[[Path], bool] = field(default=lambda p: os.access(p, os.R_OK | os.W_OK))

    def path(self, absolute: str) -> Path:
        """`absolute` under `root`."""
        return self.root / absolute.lstrip("/")


def _spec_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _groups() -> set[str]:
    names = set()
    for gid in os.getgroups():
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return names


class PiChecks:
    """The checks of a Pi install; `checks` collects their lines in order.

    Args:
        pi: the wiring.
        device: zones and heaters.
        backend: gpiozero or rpigpio.
        host: where to look.
    """

    def __init__(self, *, pi: PiConfig, device: DeviceSettings, backend: str, host: Host) -> None:
        self.pi = pi
        self.device = device
        self.backend = backend
        self.host = host
        self.checks: list[Check] = []
        self.model: str | None = None

    def _add(self, name: str, verdict: Verdict, detail: str, fix: str = "") -> bool:
        self.checks.append(Check(name, verdict, detail, fix))
        return verdict == "OK"

    def _skip(self, name: str, why: str) -> None:
        self._add(name, "SKIP", why)

    def board(self) -> bool:
        """Is this a Raspberry Pi (the device tree's model)?"""
        self.model = board_model(self.host.path("/proc/device-tree/model"))
        if is_raspberry_pi(self.model):
            return self._add("board", "OK", str(self.model))
        return self._add(
            "board",
            "FAIL",
            f"not a Raspberry Pi ({self.model or 'no device-tree model'})",
            "the gpiozero and rpigpio backends run on a Raspberry Pi; use backend sim here",
        )

    def library(self) -> bool:
        """Is the backend's GPIO library installed, and the right one for this board?"""
        find, version = self.host.find_module, self.host.version_of
        if self.backend == "gpiozero":
            missing = [m for m in ("gpiozero", "lgpio") if not find(m)]
            if missing:
                return self._add("library", "FAIL", f"missing: {', '.join(missing)}", PI_INSTALL)
            return self._add(
                "library", "OK", f"gpiozero {version('gpiozero')}, lgpio {version('lgpio')}"
            )
        if not find("RPi.GPIO"):
            return self._add("library", "FAIL", "RPi.GPIO is not installed", PI_INSTALL)
        lgpio_flavour = version("rpi-lgpio")
        if is_pi5_family(self.model) and lgpio_flavour is None:
            return self._add(
                "library",
                "FAIL",
                f"RPi.GPIO {version('RPi.GPIO')} does not support the Pi 5",
                "pip uninstall RPi.GPIO && pip install rpi-lgpio (same API, built on lgpio)",
            )
        flavour = (
            f"rpi-lgpio {lgpio_flavour}" if lgpio_flavour else f"RPi.GPIO {version('RPi.GPIO')}"
        )
        return self._add("library", "OK", flavour)

    def wiring(self) -> bool:
        """Does the configured wiring fit the device (zones, heaters, sensor rate)?"""
        problems = self.pi.check_device(self.device)
        if problems:
            return self._add("wiring", "FAIL", "; ".join(problems), "fix pi: in the configuration")
        pins = sorted(pin for _, pin in self.pi.lines())
        return self._add(
            "wiring", "OK", f"{len(pins)} lines, none shared: GPIO {', '.join(map(str, pins))}"
        )

    def gpio_access(self) -> bool:
        """Can this user open the GPIO character devices?"""
        dev = self.host.path("/dev")
        chips = sorted(dev.glob("gpiochip*"))
        if not chips:
            return self._add(
                "gpio access",
                "FAIL",
                "no /dev/gpiochip*",
                "a kernel with the GPIO character device",
            )
        blocked = [c.name for c in chips if not self.host.can_open(c)]
        if blocked:
            in_group = "gpio" in self.host.groups()
            fix = (
                "log in again (or restart the service) to pick up the gpio group"
                if in_group
                else "sudo usermod -aG gpio $USER, then log in again"
            )
            return self._add(
                "gpio access", "FAIL", f"cannot open /dev/{', /dev/'.join(blocked)}", fix
            )
        return self._add("gpio access", "OK", ", ".join(f"/dev/{c.name}" for c in chips))

    def _ads_addresses(self) -> dict[int, set[int]]:
        pi = self.pi
        buses: dict[int, set[int]] = {}
        for part in (pi.pressure, pi.temperature):
            if isinstance(part, Ads1115Pressure | NtcTemperature):
                buses.setdefault(part.bus, set()).update(ch.address for ch in part.channels)
        return buses

    def buses(self) -> bool:
        """Are the I2C and 1-wire buses the wiring uses there, and do the chips answer?"""
        ok = True
        for bus, addresses in sorted(self._ads_addresses().items()):
            node = self.host.path(f"/dev/i2c-{bus}")
            if not node.exists():
                ok = self._add(
                    f"i2c-{bus}",
                    "FAIL",
                    f"/dev/i2c-{bus} is missing",
                    "enable I2C: sudo raspi-config nonint do_i2c 0 (then reboot)",
                )
                continue
            if not self.host.can_open(node):
                ok = self._add(
                    f"i2c-{bus}",
                    "FAIL",
                    f"cannot open /dev/i2c-{bus}",
                    "sudo usermod -aG i2c $USER, then log in again",
                )
                continue
            ok = self._probe(bus, addresses) and ok
        temperature = self.pi.temperature
        if isinstance(temperature, Ds18b20Temperature):
            ok = self._one_wire(temperature) and ok
        if ok:
            self._add("buses", "OK", "every bus the wiring uses is there")
        return ok

    def _probe(self, bus: int, addresses: set[int]) -> bool:
        opener = self.host.open_i2c
        if opener is None:
            from device.backends.pi import open_i2c

            opener = open_i2c
        try:
            handle = opener(bus)
        except HardwareUnavailableError as exc:
            return self._add(f"i2c-{bus}", "FAIL", str(exc), PI_INSTALL)
        ok = True
        for address in sorted(addresses):
            try:
                handle.read_i2c_block_data(address, REG_CONFIG, 2)
            except OSError as exc:
                ok = self._add(
                    f"ads1115 0x{address:02x}",
                    "FAIL",
                    f"no answer on i2c-{bus} ({exc.strerror or exc})",
                    "check its power, SDA/SCL wiring and the ADDR pin (GND 0x48, VDD 0x49, "
                    "SDA 0x4a, SCL 0x4b)",
                )
            else:
                self._add(f"ads1115 0x{address:02x}", "OK", f"answers on i2c-{bus}")
        return ok

    def _one_wire(self, t: Ds18b20Temperature) -> bool:
        from device.backends.pi.ds18b20 import parse_w1_slave

        root = self.host.path(str(t.w1_root))
        if not root.is_dir():
            return self._add(
                "1-wire",
                "FAIL",
                f"{t.w1_root} is missing",
                f"add dtoverlay=w1-gpio,gpiopin={t.pin} to /boot/firmware/config.txt, reboot",
            )
        ok = True
        present = sorted(p.name for p in root.glob("28-*"))
        for sensor in t.sensors:
            try:
                value = parse_w1_slave((root / sensor / "w1_slave").read_text())
            except OSError:
                value = None
            if value is None:
                ok = self._add(
                    f"ds18b20 {sensor}",
                    "FAIL",
                    "no valid reading",
                    f"present on the bus: {', '.join(present) or 'none'}; check the id, "
                    "the 4.7 kΩ pull-up and the wiring",
                )
            else:
                self._add(f"ds18b20 {sensor}", "OK", f"{value:.1f} °C")
        return ok

    def sensors(self) -> None:
        """Open the hardware, zero the pressure sensors vented, read the heater sensors."""
        from device.backends.pi import PiHardware, open_gpio

        model_path = self.host.path("/proc/device-tree/model")
        try:
            if self.host.open_gpio is not None:
                gpio = self.host.open_gpio(self.backend, model_path)
            else:
                gpio = open_gpio(
                    "rpigpio" if self.backend == "rpigpio" else "gpiozero", model_path=model_path
                )
            kwargs: dict[str, Any] = {}
            if self.host.open_i2c is not None:
                kwargs["i2c"] = self.host.open_i2c
            hw = PiHardware(config=self.pi, device=self.device, gpio=gpio, **kwargs)
        except HardwareUnavailableError as exc:
            self._add("sensors", "FAIL", str(exc), PI_INSTALL)
            return
        try:
            offsets = hw.calibrate_zero()
            hw.temperature.poll()
            temps = [hw.temperature.latest(i).value for i in range(hw.temperature.channels)]
        except HardwareUnavailableError as exc:
            self._add("sensors", "FAIL", str(exc), "see docs/hardware.md, Calibration")
            return
        finally:
            hw.close()
        zones = self.device.zones
        detail = ", ".join(f"{z} {o:+.1f} mmHg" for z, o in zip(zones, offsets, strict=True))
        bad = [i for i, t in enumerate(temps) if not 0.0 < t < 45.0]
        if bad:
            shown = ", ".join(f"{t:.1f}" for t in temps)
            self._add(
                "sensors",
                "FAIL",
                f"zero offsets {detail}; heater temperatures {shown} °C",
                "a heater sensor reads outside 0-45 °C at rest: check it and its wiring",
            )
            return
        temp_text = ", ".join(f"{t:.1f} °C" for t in temps) or "no heaters"
        self._add("sensors", "OK", f"vented: {detail}; heaters {temp_text}")


__all__ = ["PI_INSTALL", "Check", "Host", "PiChecks", "Verdict"]
