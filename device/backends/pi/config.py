"""The Raspberry Pi wiring: which BCM line drives what, and which sensors read the zones.

The defaults are the reference wiring of ``docs/hardware.md``. Validation refuses a pin used
twice, a pin that is not a GPIO on the 40-pin header, and a pin taken by a bus in use (I2C on
GPIO 2/3, 1-wire on its pin), so a wiring mistake is a configuration error, not a valve that
never opens.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from device.settings import DeviceSettings

HEADER_GPIOS = range(2, 28)
"""BCM lines on the 40-pin header that may be used (0 and 1 belong to the HAT EEPROM)."""
PULLED_UP_AT_BOOT = range(9)
"""GPIO 0-8 are pulled up from power-on until legwave claims them: no actuator there."""
I2C1_PINS = {2: "I2C1 SDA", 3: "I2C1 SCL"}
ADS1115_ADDRESSES = (0x48, 0x49, 0x4A, 0x4B)
ADS1115_FULL_SCALE_V = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256)
ADS1115_RATES_SPS = (8, 16, 32, 64, 128, 250, 475, 860)
ADS1115_MAX_INPUT_V = 3.6
"""An ADS1115 powered at 3.3 V takes no input above its supply + 0.3 V."""
_W1_ID = re.compile(r"^28-[0-9a-f]{12}$")

Bcm = Annotated[int, Field(ge=0, le=27, description="BCM GPIO number")]


def _frozen() -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid")


class OutputPins(BaseModel):
    """Actuator lines, all active-high through a MOSFET driver with a gate pull-down."""

    model_config = _frozen()

    pump: Bcm = 18
    vibration: Bcm = 13
    heater_supply: Bcm = 26
    heaters: list[Bcm] = Field(default_factory=lambda: [20, 21], max_length=2)
    inlets: list[Bcm] = Field(default_factory=lambda: [12, 16, 19, 24], min_length=1, max_length=8)
    exhausts: list[Bcm] = Field(
        default_factory=lambda: [17, 27, 22, 23], min_length=1, max_length=8
    )

    def named(self) -> list[tuple[str, int]]:
        """Every line with the configuration path that set it."""
        out = [
            ("pins.pump", self.pump),
            ("pins.vibration", self.vibration),
            ("pins.heater_supply", self.heater_supply),
        ]
        for key in ("heaters", "inlets", "exhausts"):
            out += [(f"pins.{key}.{i}", pin) for i, pin in enumerate(getattr(self, key))]
        return out


class AdsChannel(BaseModel):
    """One input of an ADS1115: its I2C address and channel (AIN0-AIN3, single-ended)."""

    model_config = _frozen()

    address: int = 0x48
    channel: int = Field(0, ge=0, le=3)

    @field_validator("address")
    @classmethod
    def _address(cls, value: int) -> int:
        if value not in ADS1115_ADDRESSES:
            raise ValueError("an ADS1115 answers at 0x48, 0x49, 0x4a or 0x4b (ADDR pin)")
        return value


MPX5050_MAX_VOUT = 0.94
"""The MPX5050's output at full scale (50 kPa), as a fraction of its supply."""


class Mpx5050(BaseModel):
    """An MPX5050GP-class gauge sensor: Vout = Vs·(0.018·P[kPa] + 0.04), ratiometric.

    Its 5 V output reaches the ADC through a divider: `series_ohm` from Vout to the ADC input,
    `to_ground_ohm` from the input to GND (the reference wiring: 10 kΩ and 20 kΩ, 2/3).
    """

    model_config = _frozen()

    supply_v: float = Field(5.0, ge=4.75, le=5.25)
    series_ohm: float = Field(
        10_000.0, gt=0, le=1_000_000, description="divider resistor from Vout to the ADC input"
    )
    to_ground_ohm: float = Field(
        20_000.0, gt=0, le=1_000_000, description="divider resistor from the ADC input to GND"
    )
    supply_channel: AdsChannel | None = Field(
        None, description="measure the 5 V supply (through the same divider) for ratiometry"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_ratio(cls, data: object) -> object:
        if isinstance(data, dict) and "divider" in data:
            raise ValueError(
                "divider: give the divider's resistors instead, series_ohm (Vout to the ADC "
                "input) and to_ground_ohm (the input to GND), 10000 and 20000 in the reference "
                "wiring"
            )
        return data

    @property
    def divider(self) -> float:
        """ADC volts per sensor volt."""
        return self.to_ground_ohm / (self.series_ohm + self.to_ground_ohm)

    def full_scale_adc_v(self) -> float:
        """What the ADC sees at the sensor's full scale (50 kPa)."""
        return self.supply_v * MPX5050_MAX_VOUT * self.divider


class Ads1115Pressure(BaseModel):
    """Analog gauge sensors read by ADS1115 ADCs over I2C (``smbus2``)."""

    model_config = _frozen()

    kind: Literal["ads1115"] = "ads1115"
    bus: int = Field(1, ge=0, le=20)
    channels: list[AdsChannel] = Field(
        default_factory=lambda: [AdsChannel(channel=c) for c in range(4)],
        min_length=1,
        max_length=8,
    )
    full_scale_v: float = 4.096
    rate_sps: int = 860
    sensor: Mpx5050 = Mpx5050()

    @field_validator("full_scale_v")
    @classmethod
    def _fsr(cls, value: float) -> float:
        if value not in ADS1115_FULL_SCALE_V:
            raise ValueError(f"choose one of {ADS1115_FULL_SCALE_V} (the PGA settings)")
        return value

    @field_validator("rate_sps")
    @classmethod
    def _rate(cls, value: int) -> int:
        if value not in ADS1115_RATES_SPS:
            raise ValueError(f"choose one of {ADS1115_RATES_SPS}")
        return value

    @model_validator(mode="after")
    def _sensor_fits_the_adc(self) -> Self:
        top = self.sensor.full_scale_adc_v()
        if top > min(self.full_scale_v, ADS1115_MAX_INPUT_V):
            raise ValueError(
                f"sensor: at full scale the divider ({self.sensor.series_ohm:g} Ω from Vout, "
                f"{self.sensor.to_ground_ohm:g} Ω to GND) gives the ADC {top:.2f} V, over "
                f"{min(self.full_scale_v, ADS1115_MAX_INPUT_V):g} V (its range, or its 3.3 V "
                "supply): check which resistor goes to GND"
            )
        return self

    def samples_per_s(self) -> float:
        """How many fresh readings per zone a second, all channels read in turn."""
        reads = len(self.channels) + (self.sensor.supply_channel is not None)
        return self.rate_sps / (reads * 1.25)  # 25 % for I2C traffic and polling


class Hx710bPressure(BaseModel):
    """HX710B 24-bit bridge ADCs, bit-banged: one shared clock line, one data line per zone."""

    model_config = _frozen()

    kind: Literal["hx710b"] = "hx710b"
    sck: Bcm = 5
    dout: list[Bcm] = Field(default_factory=lambda: [6, 25, 9, 10], min_length=1, max_length=8)
    rate_sps: Literal[10, 40] = 40
    counts_per_mmhg: float | None = Field(
        None,
        description=(
            "the board's counts per mmHg; leave it out and legwave calibrate measures it "
            "against a reference gauge (docs/hardware.md)"
        ),
    )

    @field_validator("counts_per_mmhg")
    @classmethod
    def _nonzero(cls, value: float | None) -> float | None:
        if value is not None and abs(value) < 1:
            raise ValueError("must be at least 1 count per mmHg in size; calibrate the board")
        return value

    def samples_per_s(self) -> float:
        """Fresh readings per zone a second."""
        return float(self.rate_sps)


class Ds18b20Temperature(BaseModel):
    """DS18B20 sensors on the kernel's 1-wire bus (``dtoverlay=w1-gpio``), one per heater."""

    model_config = _frozen()

    kind: Literal["ds18b20"] = "ds18b20"
    pin: Bcm = 4
    sensors: list[str] = Field(description="ids such as 28-0316a279c4ff, one per heater in order")
    w1_root: Path = Path("/sys/bus/w1/devices")

    @field_validator("sensors")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        for sensor in ids:
            if not _W1_ID.match(sensor):
                raise ValueError(f"{sensor!r} is not a DS18B20 id (28- and 12 hex digits)")
        return ids


class NtcTemperature(BaseModel):
    """NTC thermistors in a divider, read by an ADS1115: beta equation."""

    model_config = _frozen()

    kind: Literal["ntc"] = "ntc"
    bus: int = Field(1, ge=0, le=20)
    channels: list[AdsChannel] = Field(
        default_factory=lambda: [AdsChannel(address=0x49, channel=c) for c in range(2)],
        max_length=2,
    )
    beta: float = Field(3950.0, ge=1000, le=6000)
    r0_ohm: float = Field(10_000.0, gt=0)
    t0_c: float = Field(25.0, ge=0, le=50)
    series_ohm: float = Field(10_000.0, gt=0)
    supply_v: float = Field(3.3, gt=0, le=5.5)


class NoTemperature(BaseModel):
    """No temperature sensors: only for a device without heaters."""

    model_config = _frozen()

    kind: Literal["none"] = "none"


Pressure = Annotated[Ads1115Pressure | Hx710bPressure, Field(discriminator="kind")]
Temperature = Annotated[
    NtcTemperature | Ds18b20Temperature | NoTemperature, Field(discriminator="kind")
]


class ZeroCalibration(BaseModel):
    """Zero-offset calibration at start, with every exhaust open."""

    model_config = _frozen()

    settle_s: float = Field(3.0, ge=0, le=30, description="let the sleeves vent first")
    average_s: float = Field(1.0, gt=0, le=10)
    max_offset_mmhg: float = Field(
        15.0, gt=0, le=30, description="a larger offset is a fault, not a calibration"
    )


class PiConfig(BaseModel):
    """Everything the Raspberry Pi backends need to know about the wiring."""

    model_config = _frozen()

    pins: OutputPins = OutputPins()
    pressure: Pressure = Ads1115Pressure()
    temperature: Temperature = NtcTemperature()
    pump_pwm_hz: float = Field(1000.0, ge=50, le=10_000)
    vibration_pwm_hz: float = Field(500.0, ge=50, le=10_000)
    zero: ZeroCalibration = ZeroCalibration()

    @model_validator(mode="before")
    @classmethod
    def _default_kinds(cls, data: object) -> object:
        """A `pressure:` or `temperature:` section without `kind` is the reference part's."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, kind in (("pressure", "ads1115"), ("temperature", "ntc")):
            if isinstance(data.get(key), dict) and "kind" not in data[key]:
                data[key] = {"kind": kind, **data[key]}
        return data

    @model_validator(mode="after")
    def _pins_are_usable(self) -> Self:
        problems = pin_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def lines(self) -> list[tuple[str, int]]:
        """Every GPIO line this wiring uses, with its configuration path."""
        out = self.pins.named()
        if isinstance(self.pressure, Hx710bPressure):
            out.append(("pressure.sck", self.pressure.sck))
            out += [(f"pressure.dout.{i}", p) for i, p in enumerate(self.pressure.dout)]
        if isinstance(self.temperature, Ds18b20Temperature):
            out.append(("temperature.pin", self.temperature.pin))
        return out

    def reserved(self) -> dict[int, str]:
        """Lines taken by a bus this wiring uses."""
        uses_i2c1 = any(
            isinstance(part, Ads1115Pressure | NtcTemperature) and part.bus == 1
            for part in (self.pressure, self.temperature)
        )
        return dict(I2C1_PINS) if uses_i2c1 else {}

    def check_device(self, device: DeviceSettings) -> list[str]:
        """Problems fitting this wiring to `device` (zones, heaters, control rate)."""
        problems: list[str] = []
        zones = len(device.zones)
        for key in ("inlets", "exhausts"):
            count = len(getattr(self.pins, key))
            if count != zones:
                problems.append(f"pins.{key}: {count} lines for {zones} zones")
        sensors = (
            self.pressure.channels
            if isinstance(self.pressure, Ads1115Pressure)
            else self.pressure.dout
        )
        if len(sensors) != zones:
            where = "channels" if isinstance(self.pressure, Ads1115Pressure) else "dout"
            problems.append(f"pressure.{where}: {len(sensors)} sensors for {zones} zones")
        if len(self.pins.heaters) != device.heaters:
            problems.append(
                f"pins.heaters: {len(self.pins.heaters)} lines for {device.heaters} heaters "
                "(device.heaters)"
            )
        temps = _temperature_count(self.temperature)
        if temps != device.heaters:
            problems.append(
                f"temperature: {temps} sensors for {device.heaters} heaters (one per heater)"
            )
        # The supervisor calls a sensor stale after `sensor_stale_ticks` ticks without a new
        # sample: the sensor must deliver faster than that with room to spare.
        rate = self.pressure.samples_per_s()
        needed = device.control_hz / (device.limits.sensor_stale_ticks - 2)
        if rate < needed:
            problems.append(
                f"pressure: about {rate:.0f} readings/s per zone, but at control_hz "
                f"{device.control_hz:g} the supervisor needs {needed:.0f}/s: lower "
                "device.control_hz or raise the sensor rate"
            )
        return problems


def _temperature_count(temperature: NtcTemperature | Ds18b20Temperature | NoTemperature) -> int:
    if isinstance(temperature, NtcTemperature):
        return len(temperature.channels)
    if isinstance(temperature, Ds18b20Temperature):
        return len(temperature.sensors)
    return 0


def pin_problems(config: PiConfig) -> list[str]:
    """Every pin conflict in `config`, each naming the configuration paths involved."""
    problems: list[str] = []
    reserved = config.reserved()
    actuators = {where for where, _ in config.pins.named()}
    seen: dict[int, str] = {}
    for where, pin in config.lines():
        if where in actuators and pin in PULLED_UP_AT_BOOT and pin in HEADER_GPIOS:
            problems.append(
                f"{where}: GPIO{pin} is pulled up from power-on until legwave starts, which "
                "could half-switch its driver: use GPIO 9-27 for actuators"
            )
        if pin not in HEADER_GPIOS:
            problems.append(
                f"{where}: GPIO{pin} is not usable, GPIO 0 and 1 are the HAT EEPROM's "
                "(use GPIO 2-27)"
            )
        elif pin in reserved:
            problems.append(f"{where}: GPIO{pin} is {reserved[pin]}, in use by the ADS1115")
        if pin in seen:
            problems.append(f"{where}: GPIO{pin} is already used by {seen[pin]}")
        else:
            seen[pin] = where
    addresses: dict[tuple[int, int, int], str] = {}
    for group, part in (("pressure", config.pressure), ("temperature", config.temperature)):
        if not isinstance(part, Ads1115Pressure | NtcTemperature):
            continue
        channels = list(part.channels)
        if isinstance(part, Ads1115Pressure) and part.sensor.supply_channel is not None:
            channels.append(part.sensor.supply_channel)
        for i, ch in enumerate(channels):
            key = (part.bus, ch.address, ch.channel)
            where = f"{group}.channels.{i}"
            if key in addresses:
                problems.append(
                    f"{where}: ADS1115 0x{ch.address:02x} AIN{ch.channel} is already "
                    f"read by {addresses[key]}"
                )
            else:
                addresses[key] = where
    return problems
