"""`legwave doctor`: check a Raspberry Pi install and say what to fix.

Each check prints OK, FAIL (with the fix) or SKIP (a check it depends on failed). The Pi's own
checks (board, GPIO library and access, buses, sensors) live in the Pi backend
(`device.backends.pi.checks`); this adds the broker, the state directory, the calibration and
the self-test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bridge.broker import port_open
from bridge.config import AgentSettings
from bridge.transport import CONNECT_ERRORS, Link
from device.backends.pi.checks import Check, Host, PiChecks


class Doctor(PiChecks):
    """Runs the checks in order; later ones are skipped when what they need failed."""

    def __init__(self, settings: AgentSettings, *, backend: str, host: Host) -> None:
        super().__init__(pi=settings.pi, device=settings.device, backend=backend, host=host)
        self.settings = settings

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

        # -- the checks beyond the Pi's --------------------------------------------------------

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
        from device.store import CalibrationFileError, load_calibration

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
        from device.store import CalibrationFileError, Store, load_calibration

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
