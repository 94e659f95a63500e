"""The files users copy into Home Assistant: modern syntax, consistent with the device."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from device.settings import PRESETS, Heat, Mode

HA = Path(__file__).resolve().parents[2] / "homeassistant"


class Input(str):
    """A `!input name` reference."""


class BlueprintLoader(yaml.SafeLoader):
    """Reads Home Assistant's `!input` tag."""


BlueprintLoader.add_constructor("!input", lambda loader, node: Input(loader.construct_scalar(node)))  # type: ignore[arg-type]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=BlueprintLoader)  # noqa: S506 - SafeLoader
    return data


def declared_inputs(blueprint: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in blueprint["input"].items():
        if "input" in value:  # a section
            out.update(value["input"])
        else:
            out[key] = value
    return out


def references(node: Any) -> set[str]:
    if isinstance(node, Input):
        return {str(node)}
    if isinstance(node, dict):
        return set().union(*(references(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(references(v) for v in node)) if node else set()
    return set()


BLUEPRINTS = sorted((HA / "blueprints").glob("*.yaml"))


def test_there_are_two_blueprints() -> None:
    assert [p.name for p in BLUEPRINTS] == ["bedtime_leg_massage.yaml", "session_finished.yaml"]


@pytest.mark.parametrize("path", BLUEPRINTS, ids=lambda p: p.name)
def test_blueprint_uses_modern_syntax_and_declares_every_input(path: Path) -> None:
    data = load(path)
    meta = data["blueprint"]
    assert meta["domain"] == "automation"
    assert meta["homeassistant"]["min_version"] >= "2024.10.0"
    for modern, legacy in (
        ("triggers", "trigger"),
        ("conditions", "condition"),
        ("actions", "action"),
    ):
        assert modern in data and legacy not in data
    for trigger in data["triggers"]:
        assert "trigger" in trigger and "platform" not in trigger
    inputs = declared_inputs(meta)
    assert references(data)  # it does use its inputs
    assert references(data) <= set(inputs)


@pytest.mark.parametrize(
    ("path", "key", "domain"),
    [
        ("bedtime_leg_massage.yaml", "massager", "switch"),
        ("session_finished.yaml", "session_event", "event"),
    ],
)
def test_device_selectors_are_filtered_to_mqtt(path: str, key: str, domain: str) -> None:
    selector = declared_inputs(load(HA / "blueprints" / path)["blueprint"])[key]["selector"]
    assert selector["entity"]["filter"] == [{"integration": "mqtt", "domain": domain}]


def test_bedtime_blueprint_has_sections_and_the_session_inputs() -> None:
    meta = load(HA / "blueprints" / "bedtime_leg_massage.yaml")["blueprint"]
    assert {k for k, v in meta["input"].items() if "input" in v} == {
        "device_section",
        "when_section",
        "who_section",
        "session_section",
        "end_section",
    }
    inputs = declared_inputs(meta)
    assert inputs["preset"]["selector"]["select"]["options"][0] == "bedtime"
    assert set(inputs["preset"]["selector"]["select"]["options"]) == set(PRESETS)
    assert inputs["duration"]["selector"]["number"] == {
        "min": 5,
        "max": 60,
        "unit_of_measurement": "min",
    }


def test_bedtime_blueprint_starts_through_the_script_in_one_call() -> None:
    data = load(HA / "blueprints" / "bedtime_leg_massage.yaml")
    package = yaml.safe_load((HA / "packages" / "legwave.yaml").read_text())
    inputs = declared_inputs(data["blueprint"])
    assert inputs["start_script"]["default"] == "script." + next(
        name for name in package["script"] if name.endswith("_start")
    )
    calls = [a for a in data["actions"] if "action" in a]
    assert calls[0]["action"] == "script.turn_on"
    assert calls[0]["target"]["entity_id"] == Input("start_script")
    session = {"massager", "preset", "duration", "intensity"}  # the massager picked, too
    assert set(calls[0]["data"]["variables"]) == session
    assert set(calls[0]["data"]["variables"]) <= set(package["script"]["legwave_start"]["fields"])
    # no piecemeal settings before the start: the device gets the whole session at once
    assert not any(str(a["action"]).startswith(("select.", "number.")) for a in calls)


def test_the_start_script_matches_the_device() -> None:
    package = yaml.safe_load((HA / "packages" / "legwave.yaml").read_text())
    fields = package["script"]["legwave_start"]["fields"]
    assert set(fields) == {"massager", "preset", "duration", "intensity", "heat", "mode"}
    assert fields["mode"]["selector"]["select"]["options"] == [m.value for m in Mode]
    assert set(fields["preset"]["selector"]["select"]["options"]) == set(PRESETS)
    assert fields["heat"]["selector"]["select"]["options"] == [h.value for h in Heat]
    assert fields["intensity"]["selector"]["number"] == {"min": 1, "max": 7}


def test_nothing_to_edit_a_massager_is_reached_through_home_assistant() -> None:
    """No topic in the shipped YAML: a device selector, or the only legwave massager."""
    from bridge.discovery import DeviceInfo

    info = DeviceInfo("legwave_demo", "legwave/legwave_demo", ("foot",), "0")
    shipped = [p for p in HA.rglob("*") if p.suffix in (".yaml", ".jinja")]
    for path in shipped:
        text = path.read_text()
        assert "legwave/" not in text, f"{path.name} names a topic"
        assert "mqtt.publish" not in text, f"{path.name} publishes on a topic"
    package = yaml.safe_load((HA / "packages" / "legwave.yaml").read_text())
    for script in ("legwave_command", "legwave_start"):
        device = package["script"][script]["fields"]["massager"]["selector"]["device"]
        assert device["filter"] == [{"integration": "mqtt", "manufacturer": info.manufacturer}]
    (send,) = (a for a in package["script"]["legwave_command"]["sequence"] if "action" in a)
    assert send["action"] == "notify.send_message"  # the device's Command entity


CORE_CARDS = {
    "tile", "button", "entities", "gauge", "sensor", "history-graph", "logbook",
    "horizontal-stack", "vertical-stack", "grid", "markdown", "statistics-graph",
}  # fmt: skip


def _cards(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "type" in node and isinstance(node["type"], str):
            found.append(node)
        for key, value in node.items():
            if key != "features":  # a tile's features are not cards
                found += _cards(value)
    elif isinstance(node, list):
        for value in node:
            found += _cards(value)
    return found


def _entities(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["entity"]} if isinstance(node.get("entity"), str) else set()
        return own.union(*(_entities(v) for v in node.values())) if node else own
    if isinstance(node, list):
        return set().union(*(_entities(v) for v in node)) if node else set()
    if (
        isinstance(node, str)
        and "." in node
        and node.split(".")[0] in {"event", "sensor", "binary_sensor", "switch", "select", "number"}
    ):
        return {node}
    return set()


def test_the_dashboard_uses_core_cards_and_real_entities() -> None:
    from bridge.discovery import DeviceInfo, default_entity_id
    from bridge.entities import entity_table

    dashboard = yaml.safe_load((HA / "dashboards" / "legwave.yaml").read_text())
    views = dashboard["views"]
    assert len(views) == 1
    card_types = {c["type"] for c in _cards(views[0]["cards"])}
    assert card_types <= CORE_CARDS, card_types - CORE_CARDS
    zones = ("foot", "ankle", "calf", "upper_calf")
    info = DeviceInfo("legwave_demo", "legwave/legwave_demo", zones, "0")
    known = {default_entity_id(info, e) for e in entity_table(list(zones))}
    used = _entities(views[0]["cards"])
    assert used, "the dashboard shows entities"
    assert used <= known, used - known
    shown = {"switch.leg_massager", "sensor.leg_massager_progress", "sensor.leg_massager_heater"}
    shown |= {f"sensor.leg_massager_pressure_{z}" for z in ("foot", "ankle", "calf", "upper_calf")}
    assert shown <= used, f"main controls, progress, zone pressures, heater: missing {shown - used}"
    assert "history-graph" in card_types


def test_the_dashboard_starts_presets_through_the_start_script() -> None:
    dashboard = yaml.safe_load((HA / "dashboards" / "legwave.yaml").read_text())
    package = yaml.safe_load((HA / "packages" / "legwave.yaml").read_text())
    taps = [c["tap_action"] for c in _cards(dashboard["views"][0]["cards"]) if "tap_action" in c]
    starts = [t for t in taps if t.get("action") == "perform-action"]
    assert starts, "quick-start buttons"
    fields = package["script"]["legwave_start"]["fields"]
    for tap in starts:
        assert tap["perform_action"] == "script.legwave_start"
        assert set(tap["data"]) <= set(fields)
        assert tap["data"]["preset"] in PRESETS


def test_the_bedtime_time_trigger_can_be_switched_off() -> None:
    data = load(HA / "blueprints" / "bedtime_leg_massage.yaml")
    inputs = declared_inputs(data["blueprint"])
    (timed,) = (t for t in data["triggers"] if t["trigger"] == "time")
    assert timed["enabled"] == Input("at_start_time")
    assert inputs["at_start_time"]["default"] is True


def test_no_condition_template_is_a_bare_value() -> None:
    """Home Assistant reads a condition's text as true only for true/yes/on or a number: a bare
    device id ("{{ found.device }}") is false, and the action it guards never runs (seen in the
    lab: "make the massage strong" answered and changed nothing)."""
    package = yaml.safe_load((HA / "packages" / "legwave.yaml").read_text())
    bare = re.compile(r"^\{\{\s*[\w.]+\s*\}\}$")

    def conditions(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["if"]] if isinstance(node.get("if"), str) else []
            return found + [c for v in node.values() for c in conditions(v)]
        if isinstance(node, list):
            return [c for v in node for c in conditions(v)]
        return []

    found = conditions(package)
    assert len(found) >= 7
    assert not [c for c in found if bare.match(c.strip())]


def test_the_dashboard_charts_the_daily_minutes_from_long_term_statistics() -> None:
    from bridge.entities import STATS_ENTITIES

    dashboard = yaml.safe_load((HA / "dashboards" / "legwave.yaml").read_text())
    cards = list(_cards(dashboard["views"][0]["cards"]))
    (chart,) = (c for c in cards if c["type"] == "statistics-graph")
    (charted,) = chart["entities"]
    today = next(e for e in STATS_ENTITIES if e.key == "therapy_today")
    assert charted["entity"] == "sensor.leg_massager_therapy_today"
    assert today.options["state_class"] == "total_increasing"  # kept as long-term statistics
    assert chart["period"] == "day" and chart["stat_types"] == ["change"]  # a sum statistic
    shown = _entities(cards)
    assert {f"sensor.leg_massager_{e.key}" for e in STATS_ENTITIES} <= shown


def test_the_shipped_dashboard_is_the_one_legwave_dashboard_prints_for_the_default_name() -> None:
    from bridge.config import HomeAssistantSettings
    from bridge.dashboard import dashboard_yaml

    default = HomeAssistantSettings().name
    assert (HA / "dashboards" / "legwave.yaml").read_text() == dashboard_yaml(default)


def test_legwave_dashboard_prints_the_view_of_a_massager_with_another_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.cli import main
    from bridge.discovery import DeviceInfo, default_entity_id
    from bridge.entities import entity_table

    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LEGWAVE_HOMEASSISTANT__NAME", "Bedroom massager")
    assert main(["dashboard"]) == 0
    printed = capsys.readouterr().out
    dashboard = yaml.safe_load(printed)
    zones = ("foot", "ankle", "calf", "upper_calf")
    info = DeviceInfo("d", "legwave/d", zones, "0", name="Bedroom massager")
    known = {default_entity_id(info, e) for e in entity_table(list(zones))}
    used = _entities(dashboard["views"][0]["cards"])
    assert "switch.bedroom_massager" in used
    assert used <= known, used - known
    assert "leg_massager" not in printed
    assert dashboard["views"][0]["title"] == "Bedroom massager"
