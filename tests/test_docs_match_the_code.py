"""The wiring docs and the code agree: a drawing that disagrees with the defaults is a safety bug.

The drawing, the parts table and the pin table of ``docs/hardware.md`` are read as a maker reads
them and compared with the defaults of the settings model; every configuration example in the
docs loads through the real settings model; the ``config check`` example is what it prints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bridge.cli import main
from bridge.config import load_settings
from device.backends.pi.config import Ads1115Pressure, Hx710bPressure, OutputPins, PiConfig

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = ROOT / "docs" / "hardware.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The 40-pin header: BCM line → physical pin (the same on every Pi with 40 pins).
HEADER_PIN = {
    2: 3, 3: 5, 4: 7, 17: 11, 27: 13, 22: 15, 10: 19, 9: 21, 11: 23, 0: 27, 5: 29, 6: 31,
    13: 33, 19: 35, 26: 37, 14: 8, 15: 10, 18: 12, 23: 16, 24: 18, 25: 22, 8: 24, 7: 26,
    1: 28, 12: 32, 16: 36, 20: 38, 21: 40,
}  # fmt: skip


def hardware_text() -> str:
    return HARDWARE.read_text()


def sensor_divider_in_the_drawing(text: str) -> tuple[float, float]:
    """(series, to ground) in ohms, as the drawing shows them: one on the line, one below ┬."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        found = re.search(r"MPX5050 Vout ──(\d+(?:\.\d+)?) kΩ──┬", line)
        if found:
            junction = found.end() - 1
            for below in re.finditer(r"(\d+(?:\.\d+)?) kΩ", lines[i + 1]):
                if below.start() <= junction < below.end():
                    return float(found[1]) * 1000, float(below[1]) * 1000
            raise AssertionError("no resistor drawn below the sensor divider's junction")
    raise AssertionError("the sensor divider is not in the drawing")


def test_the_drawing_the_parts_table_and_the_defaults_agree_on_the_sensor_divider() -> None:
    text = hardware_text()
    sensor = Ads1115Pressure().sensor
    assert sensor_divider_in_the_drawing(text) == (sensor.series_ohm, sensor.to_ground_ohm)

    row = re.search(
        r"(\d+) kΩ from Vout to the ADC input and (\d+) kΩ from the input to GND: "
        r"([\d.]+) V full scale → ([\d.]+) V at the ADC",
        text,
    )
    assert row, "the parts table no longer describes the sensor divider"
    assert float(row[1]) * 1000 == sensor.series_ohm
    assert float(row[2]) * 1000 == sensor.to_ground_ohm
    assert float(row[3]) == pytest.approx(sensor.supply_v * 0.94)
    assert float(row[4]) == round(sensor.full_scale_adc_v(), 2)


def test_the_drawing_check_fails_on_the_inverted_divider() -> None:
    inverted = hardware_text().replace("Vout ──10 kΩ──┬", "Vout ──20 kΩ──┬", 1)
    inverted = inverted.replace(
        "\n                                   20 kΩ ", "\n" + " " * 35 + "10 kΩ "
    )
    assert sensor_divider_in_the_drawing(inverted) == (20_000, 10_000)


def pin_table() -> dict[str, list[tuple[int, int]]]:
    """The config path of each row of the pin table → its (BCM, header pin) pairs."""
    rows: dict[str, list[tuple[int, int]]] = {}
    for line in hardware_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("GPIO"):
            continue
        bcm = [int(n) for n in re.findall(r"\d+", cells[1])]
        pins = [int(n) for n in re.findall(r"\d+", cells[2])]
        assert len(bcm) == len(pins), line
        for key in re.findall(r"`([^`]+)`", cells[3]):
            rows.setdefault(key, []).extend(zip(bcm, pins, strict=True))
    return rows


def test_the_pin_table_shows_the_default_lines_on_their_header_pins() -> None:
    rows = pin_table()
    pins = OutputPins()
    hx = Hx710bPressure(counts_per_mmhg=1000)
    expected = {
        "pi.pins.pump": [pins.pump],
        "pi.pins.vibration": [pins.vibration],
        "pi.pins.heater_supply": [pins.heater_supply],
        "pi.pins.heaters": pins.heaters,
        "pi.pins.inlets": pins.inlets,
        "pi.pins.exhausts": pins.exhausts,
        "pi.pressure.bus": [2, 3],
        "pi.temperature.bus": [2, 3],
    }
    for key, lines in expected.items():
        assert [bcm for bcm, _ in rows[key]] == lines, key
    # the HX710B row lists the clock, then the data lines
    assert [bcm for bcm, _ in rows["pi.pressure.sck"]] == [hx.sck, *hx.dout]
    for key, pairs in rows.items():
        for bcm, header in pairs:
            assert HEADER_PIN[bcm] == header, f"{key}: GPIO{bcm} is header pin {HEADER_PIN[bcm]}"
    assert sorted(bcm for bcm, _ in rows["pi.pins.pump"]) == [18]
    assert len(PiConfig().lines()) == 13


def yaml_examples() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.DOTALL)):
            found.append((f"{doc.name}#{i}", block))
    return found


@pytest.mark.parametrize(("where", "block"), yaml_examples(), ids=[w for w, _ in yaml_examples()])
def test_every_configuration_example_in_the_docs_loads(
    where: str, block: str, tmp_path: Path
) -> None:
    assert isinstance(yaml.safe_load(block), dict), where
    ca = tmp_path / "ca.pem"  # a file the example names, which the settings check exists
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / "legwave.yaml"
    path.write_text(block.replace("/etc/legwave/ca.pem", str(ca)))
    path.chmod(0o600)  # examples may hold a broker password: as the docs say
    settings = load_settings(path)
    assert settings.model_dump()


def test_the_hardware_config_example_is_the_reference_wiring(tmp_path: Path) -> None:
    block = dict(yaml_examples())["hardware.md#0"]
    path = tmp_path / "legwave.yaml"
    path.write_text(block)
    path.chmod(0o600)
    assert load_settings(path).pi == PiConfig()


def test_the_config_check_example_is_what_config_check_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = re.search(
        r"\$ legwave --config /etc/legwave/config.yaml config check\n(.*?)```",
        hardware_text(),
        re.DOTALL,
    )
    assert shown
    printed_lines = shown[1].strip().splitlines()
    # the wiring the example's problems describe, on top of the defaults
    pins = OutputPins().model_dump()
    for line in printed_lines[1:]:
        key, pin = re.match(r"\s*pi\.pins\.([\w.]+): GPIO(\d+)", line).groups()  # type: ignore[union-attr]
        name, _, index = key.partition(".")
        if index:
            pins[name][int(index)] = int(pin)
        else:
            pins[name] = int(pin)
    path = tmp_path / "legwave.yaml"
    path.write_text(yaml.safe_dump({"backend": "gpiozero", "pi": {"pins": pins}}))
    assert main(["--config", str(path), "config", "check"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == printed_lines


def test_the_home_assistant_entity_table_lists_every_entity_and_value() -> None:
    from bridge.discovery import DeviceInfo, default_entity_id
    from bridge.entities import EVENT_TYPES, entity_table
    from device.control.massager import Status

    text = (ROOT / "docs" / "home-assistant.md").read_text()
    table = text[text.index("## Entities") :]
    table = table[: table.index("\n\n", table.index("| entity |"))]
    zones = ["foot", "ankle", "calf", "upper_calf"]
    info = DeviceInfo("legwave_demo", "legwave/legwave_demo", tuple(zones), "0")
    for entity in entity_table(zones, updates=True):
        entity_id = default_entity_id(info, entity)
        listed = (
            f"`{entity_id}`" in table
            or f"`_{entity.key}`" in table  # in a row such as `button.…_start` / `_stop`
            or (entity.key.startswith("pressure_") and "pressure_<zone>" in table)
        )
        assert listed, f"{entity_id} is not in the entity table of docs/home-assistant.md"
    status_row = next(line for line in table.splitlines() if "sensor.leg_massager_status`" in line)
    assert all(f"`{s.value}`" in status_row for s in Status)
    event_row = next(line for line in table.splitlines() if "event.leg_massager_session" in line)
    assert all(f"`{e}`" in event_row for e in EVENT_TYPES)


def test_nothing_cites_a_document_the_repository_does_not_have() -> None:
    outside = re.compile(r"\bSPEC\b|research §|research anchors")
    texts = [
        path
        for pattern in ("*.py", "*.md", "*.yaml", "*.sh", "*.toml")
        for path in ROOT.rglob(pattern)
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    ]
    assert len(texts) > 100
    cited = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in texts
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if outside.search(line) and p != Path(__file__)
    ]
    assert not cited, cited


def test_the_mqtt_reference_is_generated_from_the_code() -> None:
    """docs/mqtt.md is what `scripts/docs` writes today (run it after changing the contract)."""
    from bridge.mqtt_reference import render

    written = (ROOT / "docs" / "mqtt.md").read_text()
    assert written == render(), "docs/mqtt.md is out of date: run scripts/docs"


def test_every_sample_payload_in_the_mqtt_reference_is_valid_json() -> None:
    text = (ROOT / "docs" / "mqtt.md").read_text()
    samples = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(samples) >= 5
    for sample in samples:
        json.loads(sample)
