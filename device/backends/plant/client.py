"""The agent's side of `legwave plant`: GPIO lines and an I2C bus over its Unix socket."""

from __future__ import annotations

import json
import socket
import threading
from typing import TYPE_CHECKING, Any

from device.backends import HardwareUnavailableError

if TYPE_CHECKING:
    from pathlib import Path


class _Link:
    """One connection; requests that expect an answer hold a lock until it arrives."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise HardwareUnavailableError(
                f"no simulated board at {path} ({exc.strerror}): start one with "
                f"legwave plant --socket {path}"
            ) from None
        self.file = self.sock.makefile("rb")
        self.lock = threading.Lock()

    def send(self, request: dict[str, Any]) -> None:
        with self.lock:
            self.sock.sendall(json.dumps(request).encode() + b"\n")

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
            line = self.file.readline()
        if not line:
            raise OSError("the simulated board closed the connection")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class PlantGpio:
    """`Gpio` on a simulated board; closing the connection releases every line.

    As on a Pi when a process dies, the released lines go low.

    Args:
        path: the plant's socket.
    """

    name = "plant"

    def __init__(self, path: Path) -> None:
        self._link = _Link(path)
        self._outputs: list[int] = []

    def _claim(self, pin: int, mode: str) -> None:
        answer = self._link.ask({"op": "claim", "pin": pin, "mode": mode})
        if "error" in answer:
            raise HardwareUnavailableError(str(answer["error"]))

    def output(self, pin: int) -> _Line:
        """Claim `pin` as an output, low."""
        self._claim(pin, "out")
        self._outputs.append(pin)
        return _Line(self._link, pin)

    def pwm(self, pin: int, frequency_hz: float) -> _Line:
        """Claim `pin` as a PWM output at duty 0."""
        self._claim(pin, "pwm")
        self._outputs.append(pin)
        return _Line(self._link, pin)

    def input(self, pin: int) -> _Line:
        """Claim `pin` as an input."""
        self._claim(pin, "in")
        return _Line(self._link, pin)

    def close(self) -> None:
        """Drive every output low, then release the lines (by closing the connection)."""
        try:
            for pin in self._outputs:
                self._link.send({"op": "set", "pin": pin, "value": 0.0})
        finally:
            self._outputs.clear()
            self._link.close()


class _Line:
    def __init__(self, link: _Link, pin: int) -> None:
        self._link = link
        self._pin = pin

    def set(self, high: bool) -> None:
        self._link.send({"op": "set", "pin": self._pin, "value": 1.0 if high else 0.0})

    def set_duty(self, duty: float) -> None:
        self._link.send({"op": "set", "pin": self._pin, "value": min(max(duty, 0.0), 1.0)})

    def read(self) -> bool:
        return bool(self._link.ask({"op": "get", "pin": self._pin})["value"])


class PlantI2c:
    """An I2C bus on a simulated board (the part of smbus2's API the drivers use)."""

    def __init__(self, path: Path, bus: int) -> None:
        self._link = _Link(path)
        self.bus = bus

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None:
        """Write a register."""
        answer = self._link.ask(
            {"op": "i2c_write", "bus": self.bus, "addr": i2c_addr, "reg": register, "data": data}
        )
        if "errno" in answer:
            raise OSError(answer["errno"], "Remote I/O error")

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read a register."""
        answer = self._link.ask(
            {"op": "i2c_read", "bus": self.bus, "addr": i2c_addr, "reg": register, "len": length}
        )
        if "errno" in answer:
            raise OSError(answer["errno"], "Remote I/O error")
        data: list[int] = answer["data"]
        return data

    def close(self) -> None:
        """Close the connection."""
        self._link.close()


def plant_status(path: Path) -> dict[str, Any]:
    """The physics' truth from a running plant (pressures, pump, valves, claimed lines)."""
    link = _Link(path)
    try:
        return link.ask({"op": "status"})
    finally:
        link.close()
