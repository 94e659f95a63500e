"""The wiring in the configuration: every conflict named by its path, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import ConfigError, load_settings
from device.backends.pi.config import Ads1115Pressure, Hx710bPressure, PiConfig, pin_problems


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "legwave.yaml"
    path.write_text(text)
    return path


def test_the_reference_wiring_is_valid_and_uses_thirteen_lines() -> None:
    config = PiConfig()
    assert pin_problems(config) == []
    assert len(config.lines()) == 13
    assert config.reserved() == {2: "I2C1 SDA", 3: "I2C1 SCL"}  # the ADS1115s are on I2C1


def test_config_check_lists_every_pin_conflict_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "backend: gpiozero\n"
        "pi:\n"
        "  pins:\n"
        "    pump: 18\n"
        "    vibration: 18\n"  # twice
        "    heater_supply: 1\n"  # the HAT EEPROM's line
        "    inlets: [12, 16, 3, 24]\n"  # I2C SCL while the ADS1115 uses it
        "    exhausts: [17, 27, 22, 30]\n",  # not a GPIO on the header
    )
    assert main(["--config", str(path), "config", "check"]) == 1
    err = capsys.readouterr().err
    assert "pi.pins.exhausts.3: Input should be less than or equal to 27" in err
    path.write_text(path.read_text().replace("30]", "23]"))
    assert main(["--config", str(path), "config", "check"]) == 1
    err = capsys.readouterr().err
    assert "4 problem(s)" in err
    assert "pi.pins.vibration: GPIO18 is already used by pins.pump" in err
    assert "pi.pins.heater_supply: GPIO1 is not usable, GPIO 0 and 1 are the HAT EEPROM's" in err
    assert "pi.pins.inlets.2: GPIO3 is I2C1 SCL, in use by the ADS1115" in err
    assert "pi.pins.inlets.2: GPIO3 is pulled up from power-on until legwave starts" in err


def test_sensor_lines_count_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            write(
                tmp_path,
                "pi:\n  pressure:\n    kind: hx710b\n    counts_per_mmhg: 4000\n"
                "    sck: 17\n    dout: [25, 9, 10, 11]\n"
                "  temperature:\n    kind: ds18b20\n    pin: 25\n"
                "    sensors: [28-0316a279c4ff, 28-0316a279c500]\n",
            )
        )
    assert caught.value.problems == [
        "pi.pressure.sck: GPIO17 is already used by pins.exhausts.0",
        "pi.temperature.pin: GPIO25 is already used by pressure.dout.0",
    ]


def test_the_wiring_must_fit_the_device_on_a_pi_backend(tmp_path: Path) -> None:
    text = "backend: rpigpio\ndevice:\n  zones: [foot, calf, thigh]\n  heaters: 1\n"
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert caught.value.problems == [
        "pi.pins.inlets: 4 lines for 3 zones",
        "pi.pins.exhausts: 4 lines for 3 zones",
        "pi.pressure.channels: 4 sensors for 3 zones",
        "pi.pins.heaters: 2 lines for 1 heaters (device.heaters)",
        "pi.temperature: 2 sensors for 1 heaters (one per heater)",
    ]
    # on the simulator the wiring is not used, so it need not fit
    assert load_settings(write(tmp_path, text.replace("rpigpio", "sim"))).backend == "sim"


def test_a_slow_sensor_is_refused_at_a_fast_control_rate(tmp_path: Path) -> None:
    hx = "pi:\n  pressure:\n    kind: hx710b\n    counts_per_mmhg: 4000\n    rate_sps: 10\n"
    with pytest.raises(ConfigError, match=r"pi\.pressure: about 10 readings/s per zone"):
        load_settings(write(tmp_path, "backend: gpiozero\n" + hx))
    ok = load_settings(write(tmp_path, "backend: gpiozero\ndevice:\n  control_hz: 25\n" + hx))
    assert ok.device.control_hz == 25


def test_an_hx710b_needs_no_hand_computed_scale_but_a_tiny_one_is_refused(
    tmp_path: Path,
) -> None:
    # left out, legwave calibrate measures it (tests/device/pi/test_commissioning.py)
    settings = load_settings(write(tmp_path, "pi:\n  pressure:\n    kind: hx710b\n"))
    assert isinstance(settings.pi.pressure, Hx710bPressure)
    assert settings.pi.pressure.counts_per_mmhg is None
    with pytest.raises(ConfigError, match=r"pi\.pressure\.counts_per_mmhg: .*at least 1 count"):
        load_settings(
            write(tmp_path, "pi:\n  pressure:\n    kind: hx710b\n    counts_per_mmhg: 0.5\n")
        )


def test_config_check_prints_the_pin_map_of_a_pi_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(write(tmp_path, "backend: gpiozero\n")), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "backend gpiozero, 4 zones" in out
    assert "GPIO12  pins.inlets.0" in out
    assert "GPIO18  pins.pump" in out


def test_the_sensor_divider_is_given_by_its_resistors(tmp_path: Path) -> None:
    config = PiConfig()
    assert isinstance(config.pressure, Ads1115Pressure)
    assert config.pressure.sensor.divider == pytest.approx(2 / 3)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "pi:\n  pressure:\n    sensor: {divider: 0.666}\n"))
    assert str(caught.value) == (
        "pi.pressure.sensor.divider: give the divider's resistors instead, series_ohm (Vout to "
        "the ADC input) and to_ground_ohm (the input to GND), 10000 and 20000 in the reference "
        "wiring"
    )


def test_a_divider_that_would_overdrive_the_adc_is_refused(tmp_path: Path) -> None:
    # 1 kΩ from Vout and 20 kΩ to GND: 4.48 V at full scale, over the ADC's 3.3 V supply
    with pytest.raises(ConfigError) as caught:
        load_settings(
            write(
                tmp_path,
                "pi:\n  pressure:\n    sensor: {series_ohm: 1000, to_ground_ohm: 20000}\n",
            )
        )
    assert "gives the ADC 4.48 V, over 3.6 V" in str(caught.value)
    assert "check which resistor goes to GND" in str(caught.value)
