"""A recording stand-in for the RPi.GPIO module that enforces the real module's call rules.

It raises what RPi.GPIO 0.7 raises, with its messages: no numbering mode set, a second,
different mode, a channel that is not a BCM GPIO, a pull on an output, output() on a line not
set up as an output, input() on a line not set up, PWM() on a line that is not an output or
already has a PWM, a frequency <= 0, a duty cycle outside 0-100. So code that passes here
does not fail on the first call on a Pi.

What a plant needs to see: `driven(pin)`, the level (0/1) or PWM duty (0-1) the line drives;
a line released (cleanup, or the process dying: `die()`) is an input, and the wiring's
pull-down holds it low. Inputs are answered by callables a test attaches (`feed`).
"""

from __future__ import annotations

import types
from collections.abc import Callable

BCM = 11
BOARD = 10
OUT = 0
IN = 1
HIGH = 1
LOW = 0
PUD_OFF = 20
PUD_DOWN = 21
PUD_UP = 22
RPI_INFO = {"P1_REVISION": 3, "TYPE": "Pi 4 Model B"}


class FakeRPiGPIO(types.ModuleType):
    """Install with ``sys.modules["RPi.GPIO"] = FakeRPiGPIO()`` (and an ``RPi`` package)."""

    BCM = BCM
    BOARD = BOARD
    OUT = OUT
    IN = IN
    HIGH = HIGH
    LOW = LOW
    PUD_OFF = PUD_OFF
    PUD_DOWN = PUD_DOWN
    PUD_UP = PUD_UP
    RPI_INFO = RPI_INFO
    VERSION = "0.7.1"

    def __init__(self) -> None:
        super().__init__("RPi.GPIO")
        self.mode: int | None = None
        self.direction: dict[int, int] = {}
        self.level: dict[int, int] = {}
        self.pwms: dict[int, FakePWM] = {}
        self.writes: list[tuple[int, float]] = []  # every output() and duty change, in order
        self.calls: list[str] = []
        self.inputs: dict[int, Callable[[], int]] = {}
        self.on_write: list[Callable[[int, int], None]] = []
        self.warnings = True

    # -- the module's API -----------------------------------------------------------------
    def setwarnings(self, flag: bool) -> None:
        self.warnings = bool(flag)

    def setmode(self, mode: int) -> None:
        if mode not in (BCM, BOARD):
            raise ValueError("An invalid mode was passed to setmode()")
        if self.mode is not None and self.mode != mode:
            raise ValueError("A different mode has already been set!")
        self.mode = mode
        self.calls.append(f"setmode({mode})")

    def getmode(self) -> int | None:
        return self.mode

    def _channel(self, channel: int) -> int:
        if self.mode is None:
            raise RuntimeError(
                "Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or "
                "GPIO.setmode(GPIO.BCM)"
            )
        if self.mode != BCM:  # the stand-in speaks BCM only, as legwave does
            raise AssertionError("legwave must use BCM numbering")
        if not isinstance(channel, int) or not 0 <= channel <= 27:
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        return channel

    def setup(
        self, channel: int, direction: int, pull_up_down: int = PUD_OFF, initial: int = -1
    ) -> None:
        ch = self._channel(channel)
        if direction not in (IN, OUT):
            raise ValueError("An invalid direction was passed to setup()")
        if direction == OUT and pull_up_down != PUD_OFF:
            raise ValueError("pull_up_down parameter is not valid for outputs")
        if pull_up_down not in (PUD_OFF, PUD_DOWN, PUD_UP):
            raise ValueError(
                "Invalid value for pull_up_down - should be either PUD_OFF, PUD_UP or PUD_DOWN"
            )
        self.direction[ch] = direction
        if direction == OUT:
            self._write(ch, HIGH if initial == HIGH else LOW)
        self.calls.append(f"setup({ch}, {'OUT' if direction == OUT else 'IN'})")

    def output(self, channel: int, value: int | bool) -> None:
        ch = self._channel(channel)
        if self.direction.get(ch) != OUT:
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        if value not in (0, 1, True, False):
            raise ValueError("Invalid output state")
        self._write(ch, int(value))

    def input(self, channel: int) -> int:
        ch = self._channel(channel)
        if ch not in self.direction:
            raise RuntimeError("You must setup() the GPIO channel first")
        if self.direction[ch] == OUT:
            return self.level.get(ch, LOW)
        feed = self.inputs.get(ch)
        return HIGH if feed is not None and feed() else LOW

    def PWM(self, channel: int, frequency: float) -> FakePWM:
        ch = self._channel(channel)
        if self.direction.get(ch) != OUT:
            raise RuntimeError("You must setup() the GPIO channel as an output first")
        if ch in self.pwms:
            raise RuntimeError("A PWM object already exists for this GPIO channel")
        if frequency <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        pwm = FakePWM(self, ch, frequency)
        self.pwms[ch] = pwm
        return pwm

    def cleanup(self, channel: int | list[int] | None = None) -> None:
        if channel is None:
            channels = list(self.direction)
        else:
            channels = [channel] if isinstance(channel, int) else list(channel)
        for ch in channels:
            self._release(ch)
        if channel is None:
            self.mode = None
        self.calls.append(f"cleanup({channels})")

    # -- what a test and its plant use ----------------------------------------------------
    def _write(self, ch: int, value: int) -> None:
        if self.level.get(ch) != value:
            self.writes.append((ch, float(value)))
        self.level[ch] = value
        for listener in self.on_write:
            listener(ch, value)

    def _release(self, ch: int) -> None:
        pwm = self.pwms.pop(ch, None)
        if pwm is not None:
            pwm.running = False
        self.direction.pop(ch, None)
        self.level.pop(ch, None)

    def driven(self, pin: int) -> float:
        """What the line drives into its MOSFET gate: 0/1, a PWM duty, or 0 when released."""
        if self.direction.get(pin) != OUT:
            return 0.0  # released: the gate pull-down holds it low
        pwm = self.pwms.get(pin)
        if pwm is not None and pwm.running:
            return pwm.duty / 100.0
        return float(self.level.get(pin, LOW))

    def feed(self, pin: int, source: Callable[[], int]) -> None:
        """Answer `input(pin)` with `source()`."""
        self.inputs[pin] = source

    def die(self) -> None:
        """The process dies: the kernel releases every line, nothing is written first."""
        for ch in list(self.direction):
            self._release(ch)


class FakePWM:
    """Software PWM as RPi.GPIO offers it."""

    def __init__(self, gpio: FakeRPiGPIO, channel: int, frequency: float) -> None:
        self.gpio = gpio
        self.channel = channel
        self.frequency = frequency
        self.duty = 0.0
        self.running = False

    @staticmethod
    def _check(dutycycle: float) -> float:
        if not 0.0 <= dutycycle <= 100.0:
            raise ValueError("dutycycle must have a value from 0.0 to 100.0")
        return float(dutycycle)

    def start(self, dutycycle: float) -> None:
        self.duty = self._check(dutycycle)
        self.running = True
        self.gpio.writes.append((self.channel, self.duty / 100.0))

    def ChangeDutyCycle(self, dutycycle: float) -> None:
        duty = self._check(dutycycle)
        if duty != self.duty:
            self.gpio.writes.append((self.channel, duty / 100.0))
        self.duty = duty

    def ChangeFrequency(self, frequency: float) -> None:
        if frequency <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        self.frequency = frequency

    def stop(self) -> None:
        self.running = False
        self.gpio.pwms.pop(self.channel, None)
