"""The Raspberry Pi backend itself: parts on GPIO lines, sensors in sampler threads.

Nothing here imports a hardware library at module level: `open_gpio` and `open_i2c` import
gpiozero, RPi.GPIO or smbus2 only when asked, so this package imports on any machine.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from device.backends import HardwareUnavailableError
from device.backends.pi.ads1115 import Ads1115, LockedBus
from device.backends.pi.board import MODEL_PATH
from device.backends.pi.config import (
    Ads1115Pressure,
    AdsChannel,
    Ds18b20Temperature,
    Hx710bPressure,
    NtcTemperature,
    PiConfig,
)
from device.backends.pi.ds18b20 import Ds18b20Bus
from device.backends.pi.hx710b import Hx710bArray
from device.backends.pi.parts import LineValve, PwmPart, SampledSensor, SwitchedPart
from device.backends.pi.sampler import NO_SAMPLE, Sampler
from device.backends.pi.transfer import mpx5050_mmhg, ntc_celsius
from device.hal import Hardware

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from device.backends.pi.ads1115 import I2cBus
    from device.backends.pi.lines import Gpio
    from device.settings import DeviceSettings

__all__ = [
    "CalibrationError",
    "HardwareUnavailableError",
    "PiConfig",
    "PiHardware",
    "open_gpio",
    "open_i2c",
]

log = logging.getLogger(__name__)


class CalibrationError(HardwareUnavailableError):
    """The sensors cannot be zeroed: no reading, or an offset too large to be one."""


def open_gpio(backend: str, *, model_path: Path = MODEL_PATH) -> Gpio:
    """Open the board's GPIO through `backend`, importing its library now."""
    if backend == "gpiozero":
        from device.backends.pi.gpiozero_gpio import GpiozeroGpio

        return GpiozeroGpio.open(model_path=model_path)
    from device.backends.pi.rpigpio_gpio import RpiGpio

    return RpiGpio.open(model_path=model_path)


def open_i2c(bus: int) -> I2cBus:
    """Open ``/dev/i2c-<bus>`` with smbus2."""
    try:
        import smbus2
    except ImportError:
        raise HardwareUnavailableError(
            "smbus2 is not installed: pip install 'legwave[pi]'"
        ) from None
    try:
        handle: I2cBus = smbus2.SMBus(bus)
    except OSError as exc:
        raise HardwareUnavailableError(
            f"cannot open /dev/i2c-{bus} ({exc.strerror}): enable I2C (raspi-config → "
            "Interface Options → I2C) and add the user to the i2c group"
        ) from None
    return handle


def _read_each(
    reads: Sequence[Callable[[], float]], convert: Callable[[float], float | None]
) -> list[float | None]:
    """Read and convert each ADC input; an input whose read fails gives None, not the rest."""
    out: list[float | None] = []
    for read in reads:
        try:
            out.append(convert(read()))
        except OSError:
            out.append(None)
    return out


class PiHardware:
    """The parts of `config` on `gpio`, ready for the control loop as `hardware`.

    Every output is claimed low, which is the safe state. `start()` zeroes the pressure
    sensors and starts the sampler threads; `close()` puts every part in its safe state,
    stops the threads and releases the lines.

    Args:
        config: the wiring.
        device: zones, heaters and limits (checked against the wiring).
        gpio: an opened GPIO backend.
        i2c: opens an I2C bus by number (smbus2 by default).
        clock: the control loop's monotonic clock; samples carry its time.
        sleep: how the sensor drivers wait for a conversion.
        pulse_clock_ns: times the HX710B's clock pulses (a stand-in board's tests give one
            that a loaded machine cannot stretch).
        counts_per_mmhg: each HX710B channel's scale as calibrated (None where it is not);
            the configuration's `counts_per_mmhg` serves where this gives none. A channel with
            neither reads counts, for `legwave calibrate`, and is listed in `unscaled`.
        raw_counts: every HX710B channel reads counts (what `legwave calibrate` measures).
    """

    def __init__(
        self,
        *,
        config: PiConfig,
        device: DeviceSettings,
        gpio: Gpio,
        i2c: Callable[[int], Any] = open_i2c,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pulse_clock_ns: Callable[[], int] = time.perf_counter_ns,
        counts_per_mmhg: Sequence[float | None] | None = None,
        raw_counts: bool = False,
    ) -> None:
        problems = config.check_device(device)
        if problems:
            raise HardwareUnavailableError(
                "the wiring does not fit the device: " + "; ".join(problems)
            )
        self.config = config
        self.zone_names = list(device.zones)
        self.gpio = gpio
        self.clock = clock
        self._sleep = sleep
        self._i2c_open = i2c
        self._pulse_clock_ns = pulse_clock_ns
        self._counts_per_mmhg = list(counts_per_mmhg or [])
        self._raw_counts = raw_counts
        self.unscaled: list[int] = []
        """HX710B channels with no counts per mmHg: they read counts."""
        self._buses: dict[int, LockedBus] = {}
        self._hx710b: Hx710bArray | None = None
        self._adcs: dict[tuple[int, int], Ads1115] = {}
        try:
            pins = config.pins
            pump = PwmPart(gpio.pwm(pins.pump, config.pump_pwm_hz))
            vibration = PwmPart(gpio.pwm(pins.vibration, config.vibration_pwm_hz))
            supply = SwitchedPart(gpio.output(pins.heater_supply))
            heaters = [SwitchedPart(gpio.output(pin)) for pin in pins.heaters]
            inlets = [LineValve(gpio.output(pin), normally_open=False) for pin in pins.inlets]
            exhausts = [LineValve(gpio.output(pin), normally_open=True) for pin in pins.exhausts]
            self.pressure = self._pressure_sampler(config)
            self.temperature = self._temperature_sampler(config)
        except BaseException:
            gpio.close()
            raise
        self.zero_offsets = [0.0] * len(pins.inlets)
        self._pressure_parts = [
            SampledSensor(self._latest(self.pressure, i)) for i in range(len(pins.inlets))
        ]
        self.hardware = Hardware(
            pump=pump,
            inlets=inlets,
            exhausts=exhausts,
            pressure=self._pressure_parts,
            heaters=heaters,
            temperature=[
                SampledSensor(self._latest(self.temperature, i))
                for i in range(self.temperature.channels)
            ],
            heater_supply=supply,
            vibration=vibration,
        )

    def raw_pressure(self) -> list[tuple[float | None, str]]:
        """Each pressure channel read once, raw: ADC volts (ADS1115) or counts (HX710B).

        For a calibration's live view; call it while the sampler threads are stopped.
        """
        p = self.config.pressure
        if isinstance(p, Hx710bPressure):
            counts = self._hx710b.read_counts() if self._hx710b is not None else []
            return [(None if c is None else float(c), "counts") for c in counts]
        out: list[tuple[float | None, str]] = []
        for ch in p.channels:
            chip = self._adc(p.bus, ch.address, full_scale_v=p.full_scale_v, rate_sps=p.rate_sps)
            try:
                out.append((chip.read_volts(ch.channel), "V"))
            except Exception:
                out.append((None, "V"))
        return out

    @staticmethod
    def _latest(sampler: Sampler, channel: int) -> Callable[[], Any]:
        return lambda: sampler.latest(channel)

    # -- sensors --------------------------------------------------------------------------
    def _adc(self, bus: int, address: int, *, full_scale_v: float, rate_sps: int) -> Ads1115:
        key = (bus, address)
        if key not in self._adcs:
            if bus not in self._buses:
                self._buses[bus] = LockedBus(self._i2c_open(bus))
            self._adcs[key] = Ads1115(
                self._buses[bus],
                address,
                full_scale_v=full_scale_v,
                rate_sps=rate_sps,
                sleep=self._sleep,
            )
        return self._adcs[key]

    def _pressure_sampler(self, config: PiConfig) -> Sampler:
        p = config.pressure
        if isinstance(p, Hx710bPressure):
            array = Hx710bArray(
                sck=self.gpio.output(p.sck),
                dout=[self.gpio.input(pin) for pin in p.dout],
                rate_sps=p.rate_sps,
                sleep=self._sleep,
                clock_ns=self._pulse_clock_ns,
            )
            calibrated = self._counts_per_mmhg + [None] * len(p.dout)
            scales = [
                None if self._raw_counts else calibrated[i] or p.counts_per_mmhg
                for i in range(len(p.dout))
            ]
            self.unscaled = [i for i, s in enumerate(scales) if s is None]
            divisors = [s or 1.0 for s in scales]
            self._hx710b = array

            def read_hx() -> list[float | None]:
                return [
                    None if c is None else c / d
                    for c, d in zip(array.read_counts(), divisors, strict=True)
                ]

            return Sampler(name="pressure", read=read_hx, channels=len(p.dout), clock=self.clock)
        return self._ads_pressure(p)

    def _ads_pressure(self, p: Ads1115Pressure) -> Sampler:
        def adc(ch: AdsChannel) -> Callable[[], float]:
            chip = self._adc(p.bus, ch.address, full_scale_v=p.full_scale_v, rate_sps=p.rate_sps)
            return lambda: chip.read_volts(ch.channel) / p.sensor.divider

        channels = [adc(ch) for ch in p.channels]
        supply = adc(p.sensor.supply_channel) if p.sensor.supply_channel else None

        def read_ads() -> list[float | None]:
            supply_v = supply() if supply is not None else p.sensor.supply_v
            if not 4.5 <= supply_v <= 5.5:
                return [None] * len(channels)  # a sagging supply makes every reading wrong
            return _read_each(channels, lambda v: mpx5050_mmhg(v, supply_v=supply_v))

        return Sampler(
            name="pressure",
            read=read_ads,
            channels=len(channels),
            clock=self.clock,
            interval_s=0.005,
        )

    def _temperature_sampler(self, config: PiConfig) -> Sampler:
        t = config.temperature
        if isinstance(t, Ds18b20Temperature):
            w1 = Ds18b20Bus(t.w1_root, t.sensors)
            return Sampler(
                name="temperature", read=w1.read, channels=len(t.sensors), clock=self.clock
            )
        if isinstance(t, NtcTemperature):
            reads = [
                functools.partial(
                    self._adc(t.bus, ch.address, full_scale_v=4.096, rate_sps=128).read_volts,
                    ch.channel,
                )
                for ch in t.channels
            ]
            to_celsius = functools.partial(
                ntc_celsius,
                supply_v=t.supply_v,
                series_ohm=t.series_ohm,
                beta=t.beta,
                r0_ohm=t.r0_ohm,
                t0_c=t.t0_c,
            )
            return Sampler(
                name="temperature",
                read=lambda: _read_each(reads, to_celsius),
                channels=len(reads),
                clock=self.clock,
                interval_s=0.1,
            )
        return Sampler(name="temperature", read=list, channels=0, clock=self.clock)

    # -- lifecycle ------------------------------------------------------------------------
    def calibrate_zero(self, *, sleep: Callable[[float], None] = time.sleep) -> list[float]:
        """Vent everything, wait `settle_s`, then average each zone's pressure as its zero.

        Raises:
            CalibrationError: a zone gave no reading, or reads more than `max_offset_mmhg`
                with every exhaust open (a sensor or wiring fault, or sleeves that cannot vent).
        """
        z = self.config.zero
        self.hardware.safe_state()
        sleep(z.settle_s)
        sums = [0.0] * self.pressure.channels
        counts = [0] * self.pressure.channels
        t0 = time.monotonic()
        polls = 0
        while polls < 5 or time.monotonic() - t0 < z.average_s:
            before = [self.pressure.latest(i) for i in range(self.pressure.channels)]
            self.pressure.poll()
            polls += 1
            for i in range(self.pressure.channels):
                sample = self.pressure.latest(i)
                if sample is not before[i] and sample is not NO_SAMPLE:
                    sums[i] += sample.value
                    counts[i] += 1
            if polls > 100_000:
                break
        zones = self.zone_names
        offsets: list[float] = []
        for i, (total, n) in enumerate(zip(sums, counts, strict=True)):
            if n == 0:
                why = self.pressure.last_error or "every reading was rejected"
                raise CalibrationError(f"zone {zones[i]}: no pressure reading ({why})")
            mean = total / n
            if i in self.unscaled:  # counts: any offset is the board's own
                offsets.append(mean)
                continue
            if not math.isfinite(mean) or abs(mean) > z.max_offset_mmhg:
                raise CalibrationError(
                    f"zone {zones[i]} reads {mean:.1f} mmHg with every exhaust open (zero "
                    f"offsets above {z.max_offset_mmhg:g} mmHg are faults): check the sensor, "
                    "its wiring and that the sleeves vent"
                )
            offsets.append(mean)
        for part, offset in zip(self._pressure_parts, offsets, strict=True):
            part.offset = offset
        self.zero_offsets = offsets
        log.info("pressure zero offsets (mmHg): %s", ", ".join(f"{o:+.2f}" for o in offsets))
        return offsets

    def start(self, *, timeout: float = 3.0) -> None:
        """Zero the pressure sensors, start the sampler threads, wait for first samples."""
        self.calibrate_zero()
        self.pressure.start()
        self.temperature.start()
        for sampler in (self.pressure, self.temperature):
            missing = sampler.wait_for_samples(timeout)
            if missing:
                raise HardwareUnavailableError(
                    f"{sampler.name} sensors {missing} gave no reading in {timeout:g} s "
                    f"({sampler.last_error or 'every reading rejected'})"
                )

    def close(self) -> None:
        """Safe state on every part, stop the samplers, release the lines (each step tried)."""
        errors: list[Exception] = []
        closers = [getattr(b.bus, "close", None) for b in self._buses.values()]
        for step in (
            self.hardware.safe_state,
            self.pressure.stop,
            self.temperature.stop,
            self.gpio.close,
            *filter(None, closers),
        ):
            try:
                step()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("closing the Pi hardware", errors)
