"""legwave's Assist sentences, recognised offline with the hassil and home-assistant-intents
versions of Home Assistant 2026.2.3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

hassil = pytest.importorskip("hassil")
intents_pkg = pytest.importorskip("home_assistant_intents")

from hassil import Intents, SlotList, TextSlotList, recognize  # noqa: E402

SENTENCES = (
    Path(__file__).resolve().parents[2]
    / "homeassistant"
    / "custom_sentences"
    / "en"
    / "legwave.yaml"
)
CUSTOM = Intents.from_files([SENTENCES])
BUILTIN = Intents.from_dict(intents_pkg.get_intents("en"))
NAMES = TextSlotList.from_tuples(
    [
        ("leg massager", "switch.leg_massager", {"domain": "switch"}),
        ("kitchen light", "light.kitchen", {"domain": "light"}),
    ]
)
LISTS: dict[str, SlotList] = {
    "name": NAMES,
    "area": TextSlotList.from_strings(["Bedroom", "Living Room"]),
    "floor": TextSlotList.from_strings([]),
}


def understand(text: str) -> tuple[str, dict[str, Any]] | None:
    for intents in (CUSTOM, BUILTIN):
        result = recognize(text, intents, slot_lists=LISTS)
        if result is not None:
            return result.intent.name, {k: v.value for k, v in result.entities.items()}
    return None


CASES: list[tuple[str, str | None, dict[str, Any]]] = [
    (
        "start a 20 minute bedtime leg massage",
        "LegwaveStart",
        {"duration": 20, "preset": "bedtime"},
    ),
    ("start a leg massage", "LegwaveStart", {}),
    ("start the leg massage", "LegwaveStart", {}),
    ("begin a calf massage", "LegwaveStart", {}),
    ("start a 30 minute leg massage", "LegwaveStart", {"duration": 30}),
    ("start a recovery leg massage", "LegwaveStart", {"preset": "recovery"}),
    ("start a warm up leg massage", "LegwaveStart", {"preset": "warm_up"}),
    ("start a desk break leg massage", "LegwaveStart", {"preset": "desk_break"}),
    (
        "start a 15 minute circulation leg massage",
        "LegwaveStart",
        {"duration": 15, "preset": "circulation"},
    ),
    ("start a leg massage at level 5", "LegwaveStart", {"intensity": 5}),
    ("start a leg massage on gentle", "LegwaveStart", {"intensity": 2}),
    ("start a leg massage at strong pressure", "LegwaveStart", {"intensity": 6}),
    (
        "start a 10 minute bedtime leg massage at level 2",
        "LegwaveStart",
        {"duration": 10, "preset": "bedtime", "intensity": 2},
    ),
    ("give me a leg massage", "LegwaveStart", {}),
    (
        "give me a 45 minute sleep leg massage",
        "LegwaveStart",
        {"duration": 45, "preset": "bedtime"},
    ),
    ("i want a calf massage", "LegwaveStart", {}),
    ("massage my legs", "LegwaveStart", {}),
    ("massage my legs for 25 minutes", "LegwaveStart", {"duration": 25}),
    ("massage my calves at medium intensity", "LegwaveStart", {"intensity": 4}),
    ("start the leg massager for 20 minutes", "LegwaveStart", {"duration": 20}),
    ("stop the leg massage", "LegwaveStop", {}),
    ("stop my leg massage", "LegwaveStop", {}),
    ("cancel the calf massage", "LegwaveStop", {}),
    ("end the leg massage", "LegwaveStop", {}),
    ("stop massaging my legs", "LegwaveStop", {}),
    ("vent the leg massager", "LegwaveStop", {}),
    ("pause the leg massage", "LegwavePause", {}),
    ("pause my leg massager", "LegwavePause", {}),
    ("resume the leg massage", "LegwaveResume", {}),
    ("continue my leg massage", "LegwaveResume", {}),
    ("set the leg massager to level 2", "LegwaveSetIntensity", {"intensity": 2}),
    ("set the leg massage intensity to 6", "LegwaveSetIntensity", {"intensity": 6}),
    ("set my leg massager to gentle", "LegwaveSetIntensity", {"intensity": 2}),
    ("change the leg massage to level 4", "LegwaveSetIntensity", {"intensity": 4}),
    ("make the leg massage strong", "LegwaveSetIntensity", {"intensity": 6}),
    ("how long is left on my leg massage", "LegwaveTimeLeft", {}),
    ("how much time is left on the leg massage", "LegwaveTimeLeft", {}),
    ("when does my leg massage end", "LegwaveTimeLeft", {}),
    ("how long until the leg massage is done", "LegwaveTimeLeft", {}),
    ("is the leg massage running", "LegwaveIsRunning", {}),
    ("is my leg massager on", "LegwaveIsRunning", {}),
    ("is the leg massage still going", "LegwaveIsRunning", {}),
    ("turn on the leg massager", "HassTurnOn", {"name": "switch.leg_massager"}),
    ("turn off the leg massager", "HassTurnOff", {"name": "switch.leg_massager"}),
    ("switch on leg massager", "HassTurnOn", {"name": "switch.leg_massager"}),
    # as people say it: adjectives and presets before the noun, no "leg", words for lengths
    ("start a gentle leg massage", "LegwaveStart", {"intensity": 2}),
    ("start a strong leg massage", "LegwaveStart", {"intensity": 6}),
    ("start a 15 minute recovery massage", "LegwaveStart", {"duration": 15, "preset": "recovery"}),
    ("start a massage", "LegwaveStart", {}),
    ("start a massage for half an hour", "LegwaveStart", {"duration": 30}),
    ("give me a strong half hour massage please", "LegwaveStart", {"intensity": 6, "duration": 30}),
    ("start a twenty minute gentle massage", "LegwaveStart", {"duration": 20, "intensity": 2}),
    ("start a gentle 15 minute massage", "LegwaveStart", {"intensity": 2, "duration": 15}),
    (
        "i'd like an hour long bedtime massage",
        "LegwaveStart",
        {"duration": 60, "preset": "bedtime"},
    ),
    ("massage my feet for a quarter of an hour", "LegwaveStart", {"duration": 15}),
    ("start a leg massage in gentle mode", "LegwaveStart", {"mode": "gentle"}),
    (
        "start a recovery massage in the living room in gentle mode",
        "LegwaveStart",
        {"preset": "recovery", "area": "Living Room", "mode": "gentle"},
    ),
    ("start the leg massage in the bedroom", "LegwaveStart", {"area": "Bedroom"}),
    ("turn it up", "LegwaveAdjust", {"step": 1}),
    ("turn it down a bit", "LegwaveAdjust", {"step": -1}),
    ("make it stronger", "LegwaveAdjust", {"step": 1}),
    ("make the leg massage stronger", "LegwaveAdjust", {"step": 1}),
    ("make it a little softer please", "LegwaveAdjust", {"step": -1}),
    ("more pressure", "LegwaveAdjust", {"step": 1}),
    ("less pressure please", "LegwaveAdjust", {"step": -1}),
    ("lower the intensity of the massage", "LegwaveAdjust", {"step": -1}),
    ("how long is left", "LegwaveTimeLeft", {}),
    ("how many minutes are left on the massage", "LegwaveTimeLeft", {}),
    ("is it still running", "LegwaveIsRunning", {}),
    ("is the massage in the bedroom still running", "LegwaveIsRunning", {"area": "Bedroom"}),
    ("stop the massage in the living room", "LegwaveStop", {"area": "Living Room"}),
    ("that's enough massage", "LegwaveStop", {}),
]


@pytest.mark.parametrize(("text", "intent", "slots"), CASES, ids=[c[0] for c in CASES])
def test_utterance(text: str, intent: str | None, slots: dict[str, Any]) -> None:
    got = understand(text)
    if intent is None:
        assert got is None or not got[0].startswith("Legwave"), got
        return
    assert got is not None, text
    assert got[0] == intent
    assert got[1] == slots


def test_at_least_30_distinct_utterances_are_recognised() -> None:
    assert len({text for text, intent, _ in CASES if intent}) >= 30


@pytest.mark.parametrize(
    "text",
    [
        "start the dishwasher",
        "stop the music",
        "set the thermostat to 20",
        "start a 90 minute leg massage",  # longer than a session may be
        "set the leg massager to level 9",  # there is no level 9
        "how long is left on the timer",
        "is the kitchen light on",
        "massage the cat",
        "purple monkey dishwasher",
        "turn on the massager in the garage",
        "start a 15 minute timer",  # Home Assistant's timer, not a massage
        "turn up the volume",
        "make the coffee stronger",
        "start a massage in the garage",  # no such area
        "start a leg massage at level 8",
    ],
)
def test_near_misses_are_not_legwave(text: str) -> None:
    got = understand(text)
    assert got is None or not got[0].startswith("Legwave"), got
    if got is not None and got[0].startswith("Hass"):
        assert got[1].get("name") != "switch.leg_massager"


def test_every_sentence_intent_has_an_intent_script() -> None:
    import yaml

    package = yaml.safe_load((SENTENCES.parents[2] / "packages" / "legwave.yaml").read_text())
    assert set(CUSTOM.intents) == set(package["intent_script"])


def test_gentle_is_the_strength_and_the_mode_is_asked_for_as_a_mode() -> None:
    """The rule (docs/home-assistant.md): "gentle" before or after the noun is level 2."""
    assert understand("start a gentle massage") == ("LegwaveStart", {"intensity": 2})
    assert understand("start a massage on gentle") == ("LegwaveStart", {"intensity": 2})
    assert understand("start a massage in gentle mode") == ("LegwaveStart", {"mode": "gentle"})


def test_the_sentence_lists_are_the_devices_own() -> None:
    """Presets, modes, levels and lengths as the device has them: a value it lacks is refused."""
    import yaml

    from device.settings import PRESETS, Mode, SessionSettings

    lists = yaml.safe_load(SENTENCES.read_text())["lists"]
    assert {v["out"] for v in lists["preset"]["values"]} == set(PRESETS)
    assert [v["out"] for v in lists["mode"]["values"]] == [m.value for m in Mode]

    def bounds(name: str) -> tuple[int, int]:
        meta = SessionSettings.model_fields[name].metadata
        low = next(m.ge for m in meta if hasattr(m, "ge"))
        high = next(m.le for m in meta if hasattr(m, "le"))
        return low, high

    low, high = bounds("intensity")
    assert lists["intensity"]["range"] == {"from": low, "to": high}
    assert all(low <= v["out"] <= high for v in lists["strength"]["values"])
    low, high = bounds("duration_min")
    assert lists["duration"]["range"] == {"from": low, "to": high}
    for spoken in ("duration_words", "duration_spoken"):
        assert all(low <= v["out"] <= high for v in lists[spoken]["values"])
