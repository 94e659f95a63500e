"""`legwave doctor`: check a Raspberry Pi install and say what to fix.

Each check prints OK, FAIL (with the fix) or SKIP (a check it depends on failed). The sensor
check opens the hardware for real: every line is claimed low (the safe state), the pressure
sensors are zeroed with the exhausts open, and everything is released again.
"""

from __future__ import annotations

import asyncio
import grp
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bridge.broker import port_open
from bridge.config import AgentSettings
from bridge.transport import CONNECT_ERRORS, Link
from device.backends.pi.board import HardwareUnavailableError, is_pi5_family, is_raspberry_pi
from device.backends.pi.config import Ads1115Pressure, Ds18b20Temperature, NtcTemperature

if TYPE_CHECKING:
    from device.backends.pi.lines import Gpio

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


class Doctor:
    """Runs the checks in order; later ones are skipped when what they need failed."""

    def __init__(self, settings: AgentSettings, *, backend: str, host: Host) -> None:
        self.settings = settings
        self.backend = backend
        self.host = host
        self.checks: list[Check] = []
        self.model: str | None = None

    def _add(self, name: str, verdict: Verdict, detail: str, fix: str = "") -> bool:
        self.checks.append(Check(name, verdict, detail, fix))
        return verdict == "OK"

    def _skip(self, name: str, why: str) -> None:
        self._add(name, "SKIP", why)

    def run(self) -> list[Check]:
        """Every check, in order."""
        on_pi = self.board()
        ready = self.wiring() and on_pi
        if on_pi:
            ready = all([self.library(), self.gpio_access(), self.buses()]) and ready
        else:
            for name in ("library", "gpio access", "buses"):
                self._skip(name, "not a Raspberry Pi")
        if ready:
            self.sensors()
        else:
            self._skip("sensors", "needs every check above")
        self.broker()
        if self.state_dir():
            self.calibration()
            self.selftest()
        return self.checks

    # -- the checks -----------------------------------------------------------------------
    def board(self) -> bool:
        """Is this a Raspberry Pi (the device tree's model)?"""
        model_path = self.host.path("/proc/device-tree/model")
        try:
            self.model = model_path.read_bytes().rstrip(b"\0\n").decode("ascii", "replace")
        except OSError:
            self.model = None
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
        problems = self.settings.pi.check_device(self.settings.device)
        if problems:
            return self._add("wiring", "FAIL", "; ".join(problems), "fix pi: in the configuration")
        pins = sorted(pin for _, pin in self.settings.pi.lines())
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
        pi = self.settings.pi
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
        temperature = self.settings.pi.temperature
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
                handle.read_i2c_block_data(address, 0x01, 2)
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
            hw = PiHardware(
                config=self.settings.pi, device=self.settings.device, gpio=gpio, **kwargs
            )
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
        zones = self.settings.device.zones
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

    def broker(self) -> None:
        """Can the agent reach its broker (or start its own)?"""
        mqtt = self.settings.mqtt
        if mqtt.host is None:
            if port_open(mqtt.port):
                self._add(
                    "broker", "OK", f"none configured: the one listening on 127.0.0.1:{mqtt.port}"
                )
            elif shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
                self._add("broker", "OK", "none configured: legwave run starts mosquitto itself")
            else:
                self._add(
                    "broker",
                    "FAIL",
                    "none configured, and mosquitto is not installed for the embedded one",
                    "set mqtt.host to your broker, or sudo apt-get install mosquitto",
                )
            return
        try:
            asyncio.run(_connect(self.settings))
        except CONNECT_ERRORS as exc:
            self._add(
                "broker",
                "FAIL",
                f"{mqtt.host}:{mqtt.port}: {str(exc) or type(exc).__name__}",
                "check mqtt.host/port, the user and password, and TLS files",
            )
            return
        self._add("broker", "OK", f"connected to {mqtt.host}:{mqtt.port}")

    def state_dir(self) -> bool:
        """Is the state directory writable?"""
        folder = self.settings.state_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
        except OSError as exc:
            self._add(
                "state dir",
                "FAIL",
                f"{folder}: {exc.strerror or exc}",
                "make it writable by the service user (deploy/install.sh does)",
            )
            return False
        return self._add("state dir", "OK", str(folder))

    def calibration(self) -> bool:
        """Is every pressure channel calibrated, and how far from its datasheet curve?"""
        from bridge.store import CalibrationFileError, load_calibration

        zones = list(self.settings.device.zones)
        try:
            calibration = load_calibration(self.settings.state_dir)
        except CalibrationFileError as exc:
            return self._add("calibration", "FAIL", str(exc), "legwave calibrate")
        missing = calibration.missing(zones)
        if missing:
            return self._add(
                "calibration",
                "FAIL",
                f"not calibrated: {', '.join(missing)}",
                "legwave calibrate (with a reference gauge on each zone in turn)",
            )
        when = min(c.at for c in calibration.zones.values()).date().isoformat()
        scales = calibration.counts(zones)
        if all(s is not None for s in scales):  # an HX710B: its scale is the calibration
            parts = [f"{z} {s:.0f}" for z, s in zip(zones, scales, strict=True)]
            return self._add("calibration", "OK", f"counts per mmHg: {', '.join(parts)} ({when})")
        parts = [f"{z} {1 / calibration.zones[z].gain - 1:+.1%}" for z in zones]
        return self._add("calibration", "OK", f"{', '.join(parts)} from the curve ({when})")

    def selftest(self) -> bool:
        """Has a self-test passed on this wiring and calibration?"""
        from bridge.service import wiring_fingerprint
        from bridge.store import CalibrationFileError, Store, load_calibration

        record = Store(self.settings.state_dir).load().selftest
        fix = "legwave selftest (after legwave calibrate)"
        if record is None:
            return self._add("self-test", "FAIL", "never run", fix)
        try:
            calibration = load_calibration(self.settings.state_dir)
        except CalibrationFileError:
            self._skip("self-test", "needs a calibration")
            return False
        settings = self.settings.model_copy(update={"backend": self.backend})
        when = record.get("finished_at", "?")
        if record.get("wiring") != wiring_fingerprint(settings, calibration):
            return self._add(
                "self-test", "FAIL", f"the wiring or calibration changed since {when}", fix
            )
        if record.get("result") != "passed":
            problems = "; ".join(record.get("problems") or []) or record.get("result", "?")
            return self._add("self-test", "FAIL", f"{record.get('result')} ({problems})", fix)
        return self._add("self-test", "OK", f"passed {when}")


async def _connect(settings: AgentSettings) -> None:
    mqtt = settings.mqtt
    host = mqtt.host or "127.0.0.1"
    link = Link(mqtt, host, mqtt.port)
    async with link.session(identifier=f"legwave-doctor-{os.getpid()}"):
        pass


def report(checks: list[Check], *, backend: str) -> str:
    """The report as text."""
    width = max(len(c.name) for c in checks)
    lines = [f"legwave doctor ({backend} backend)"]
    for c in checks:
        lines.append(f"  {c.verdict:<4}  {c.name:<{width}}  {c.detail}")
        if c.verdict == "FAIL" and c.fix:
            lines.append(f"        {'':<{width}}  fix: {c.fix}")
    failed = sum(c.verdict == "FAIL" for c in checks)
    lines.append("all good" if not failed else f"{failed} problem(s)")
    return "\n".join(lines)


def run_checks(
    settings: AgentSettings, *, backend: str | None = None, host: Host | None = None
) -> int:
    """Run every check, print the report; exit status 1 when something failed."""
    chosen = backend or (settings.backend if settings.backend != "sim" else "gpiozero")
    checks = Doctor(settings, backend=chosen, host=host or Host()).run()
    print(report(checks, backend=chosen), file=sys.stdout)
    return 1 if any(c.verdict == "FAIL" for c in checks) else 0


__all__ = ["Check", "Doctor", "Host", "report", "run_checks"]
