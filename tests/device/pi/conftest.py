"""Both GPIO backends on recording stand-ins, and a rig that runs sessions through them."""

from __future__ import annotations

import functools
import itertools
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.backends.pi import PiHardware
from device.backends.pi.config import Hx710bPressure, PiConfig, ZeroCalibration
from device.backends.pi.gpiozero_gpio import GpiozeroGpio
from device.backends.pi.lines import Gpio
from device.backends.pi.rpigpio_gpio import RpiGpio
from device.backends.plant.model import Plant
from device.backends.sim import FaultInjection
from device.hal import Hardware
from device.harness import SimulatedDevice as Rig
from device.settings import DeviceSettings, SessionSettings
from tests.device.pi.fake_rpigpio import FakeRPiGPIO

PI4 = "Raspberry Pi 4 Model B Rev 1.4"
PI5 = "Raspberry Pi 5 Model B Rev 1.0"
FAST_ZERO = ZeroCalibration(settle_s=0, average_s=0.01)


def model_file(tmp_path: Path, model: str) -> Path:
    """A device-tree model file as the kernel writes it (NUL-terminated)."""
    path = tmp_path / "model"
    path.write_bytes(model.encode() + b"\0")
    return path


def install_rpi_gpio(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType) -> None:
    """Make `import RPi.GPIO` find `module`."""
    package = types.ModuleType("RPi")
    package.__path__ = []
    package.GPIO = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "RPi", package)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", module)


class _ClockPin(MockPWMPin):  # type: ignore[misc]
    """A mock pin that tells a listener about every level it is set to (the HX710B clock)."""

    listener: Callable[[int], None] | None = None

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)
        if self.listener is not None:
            self.listener(1 if value else 0)
        return changed


class _FedPin(MockPWMPin):  # type: ignore[misc]
    """A mock input pin whose level comes from a callable (an HX710B data line)."""

    source: Callable[[], int] | None = None

    def _get_state(self) -> Any:
        if self.source is not None and self._function == "input":
            return bool(self.source())
        return super()._get_state()


@dataclass
class Board:
    """One GPIO backend on its stand-in, and what a plant needs from it."""

    name: str
    gpio: Gpio
    driven: Callable[[int], float]
    die: Callable[[], None]
    feed: Callable[[int, Callable[[], int]], None]
    listen: Callable[[int, Callable[[int], None]], None]


def gpiozero_board() -> Board:
    factory = MockFactory(pin_class=MockPWMPin)
    pins: dict[int, Any] = {}

    def pin_of(pin: int) -> Any:
        if pin not in pins:  # the factory's lookup by name is slow: once per pin
            pins[pin] = factory.pin(pin)
        return pins[pin]

    def driven(pin: int) -> float:
        p = pin_of(pin)
        return float(p.state) if p.function == "output" else 0.0

    def die() -> None:
        for p in factory.pins.values():
            p._function = "input"  # the process is gone: lines released, nothing written

    def feed(pin: int, source: Callable[[], int]) -> None:
        factory.pin(pin, pin_class=_FedPin).source = source

    def listen(pin: int, listener: Callable[[int], None]) -> None:
        factory.pin(pin, pin_class=_ClockPin).listener = listener

    board = Board("gpiozero", GpiozeroGpio.open(pin_factory=factory), driven, die, feed, listen)
    board.factory = factory  # type: ignore[attr-defined]
    return board


def rpigpio_board(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Board:
    fake = FakeRPiGPIO()
    install_rpi_gpio(monkeypatch, fake)

    def listen(pin: int, listener: Callable[[int], None]) -> None:
        fake.on_write.append(lambda ch, level: listener(level) if ch == pin else None)

    gpio = RpiGpio.open(model_path=model_file(tmp_path, PI4))
    board = Board("rpigpio", gpio, fake.driven, fake.die, fake.feed, listen)
    board.fake = fake  # type: ignore[attr-defined]
    return board


@pytest.fixture(params=["gpiozero", "rpigpio"])
def board(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Board]:
    if request.param == "gpiozero":
        yield gpiozero_board()
    else:
        yield rpigpio_board(monkeypatch, tmp_path)


def _steady_pulses() -> Callable[[], int]:
    """A pulse clock that moves 1 µs a call: a loaded machine cannot stretch a clock pulse here.

    The driver's own test of a stretched pulse (test_hx710b.py) gives its own clock.
    """
    ticks = itertools.count(0, 1_000)
    return lambda: next(ticks)


class PiRig(Rig):
    """A session through a Pi backend: the runner drives GPIO lines, the plant reads them."""

    def __init__(
        self,
        board: Board,
        settings: SessionSettings | None = None,
        *,
        config: PiConfig | None = None,
        device: DeviceSettings | None = None,
        faults: list[FaultInjection] | None = None,
    ) -> None:
        self.board = board
        self.config = config or PiConfig(zero=FAST_ZERO)
        super().__init__(settings, device=device, faults=faults)

    def hardware(self) -> Hardware:
        self.plant = Plant(sim=self.sim, config=self.config, driven=self.board.driven)
        chips = self.plant.hx710b
        p = self.config.pressure
        if chips is not None and isinstance(p, Hx710bPressure):
            for i, pin in enumerate(p.dout):
                self.board.feed(pin, functools.partial(chips.level, i))
            self.board.listen(p.sck, chips.clock)

        def wait(seconds: float) -> None:  # while a driver waits, the chips convert
            if chips is not None:
                chips.convert()

        self.pi = PiHardware(
            config=self.config,
            device=self.device,
            gpio=self.board.gpio,
            i2c=lambda bus: self.plant.bus,
            clock=self.clock.now,
            sleep=wait,
            pulse_clock_ns=_steady_pulses(),
        )
        self.pi.calibrate_zero(sleep=lambda s: None)
        self.plant.sync()
        return self.pi.hardware

    def before_tick(self) -> None:
        self.pi.pressure.poll()
        self.pi.temperature.poll()

    def after_tick(self) -> None:
        self.plant.sync()
