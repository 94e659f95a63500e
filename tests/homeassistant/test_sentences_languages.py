"""The Assist sentences in German, French, Spanish and Dutch, recognised offline with the hassil
and home-assistant-intents versions of Home Assistant 2026.2.3, as people say them.

English is in test_sentences.py. Every language: the same intents, at least 30 utterances and
8 near-misses (other devices, Home Assistant's own timers, values the device does not have), and
Home Assistant's own "turn on" still reaches the massager's switch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

hassil = pytest.importorskip("hassil")
intents_pkg = pytest.importorskip("home_assistant_intents")

from hassil import Intents, SlotList, TextSlotList, recognize  # noqa: E402

HA = Path(__file__).resolve().parents[2] / "homeassistant"
ENGLISH = yaml.safe_load((HA / "custom_sentences" / "en" / "legwave.yaml").read_text())


class Language:
    def __init__(self, code: str, massager: str, areas: list[str]) -> None:
        self.code = code
        self.path = HA / "custom_sentences" / code / "legwave.yaml"
        self.custom = Intents.from_files([self.path])
        self.builtin = Intents.from_dict(intents_pkg.get_intents(code))
        self.lists: dict[str, SlotList] = {
            "name": TextSlotList.from_tuples(
                [(massager, "switch.leg_massager", {"domain": "switch"})]
            ),
            "area": TextSlotList.from_strings(areas),
            "floor": TextSlotList.from_strings([]),
        }

    def understand(self, text: str) -> tuple[str, dict[str, Any]] | None:
        for intents in (self.custom, self.builtin):
            result = recognize(text, intents, slot_lists=self.lists)
            if result is not None:
                slots = {k: v.value for k, v in result.entities.items()}
                if result.intent.name.startswith("Legwave"):
                    assert slots.pop("lang") == self.code  # the answers speak its language
                return result.intent.name, slots
        return None


LANGUAGES = {
    "de": Language("de", "Beinmassagegerät", ["Schlafzimmer", "Wohnzimmer"]),
    "fr": Language("fr", "masseur de jambes", ["chambre", "salon"]),
    "es": Language("es", "masajeador de piernas", ["dormitorio", "salón"]),
    "nl": Language("nl", "beenmassageapparaat", ["slaapkamer", "woonkamer"]),
}

# Home Assistant's own sentences match these too; spoken to Assist in the lab (2026.2.3), they
# reached legwave and were answered by it. ("wie lange noch" went to the timers: not ours.)
LAB_CHECKED = {
    "wann ist die Beinmassage fertig",
    "combien de temps reste-t-il au massage",
    "il reste combien de temps sur le massage",
}

CASES: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {
    "de": [
        ("starte eine Beinmassage", "LegwaveStart", {}),
        ("starte eine sanfte Beinmassage", "LegwaveStart", {"intensity": 2}),
        ("starte eine kräftige Massage", "LegwaveStart", {"intensity": 6}),
        (
            "starte eine 15-minütige Erholungsmassage",
            "LegwaveStart",
            {"duration": 15, "preset": "recovery"},
        ),
        ("starte eine Massage für eine halbe Stunde", "LegwaveStart", {"duration": 30}),
        ("starte eine halbstündige Massage", "LegwaveStart", {"duration": 30}),
        ("mach eine Beinmassage für zwanzig Minuten", "LegwaveStart", {"duration": 20}),
        ("ich möchte eine Beinmassage", "LegwaveStart", {}),
        (
            "ich hätte gern eine sanfte Massage für eine Stunde",
            "LegwaveStart",
            {"intensity": 2, "duration": 60},
        ),
        ("starte die Beinmassage im Schlafzimmer", "LegwaveStart", {"area": "Schlafzimmer"}),
        ("starte eine Massage auf Stufe 5", "LegwaveStart", {"intensity": 5}),
        ("starte eine Massage im Modus sanft", "LegwaveStart", {"mode": "gentle"}),
        ("massiere meine Beine für 25 Minuten", "LegwaveStart", {"duration": 25}),
        ("Beinmassage starten", "LegwaveStart", {}),
        ("stoppe die Beinmassage", "LegwaveStop", {}),
        ("beende die Massage im Wohnzimmer", "LegwaveStop", {"area": "Wohnzimmer"}),
        ("hör mit der Massage auf", "LegwaveStop", {}),
        ("Massage beenden", "LegwaveStop", {}),
        ("pausiere die Beinmassage", "LegwavePause", {}),
        ("Massage unterbrechen", "LegwavePause", {}),
        ("setze die Massage fort", "LegwaveResume", {}),
        ("mach mit der Massage weiter", "LegwaveResume", {}),
        ("stell die Beinmassage auf Stufe 3", "LegwaveSetIntensity", {"intensity": 3}),
        ("stelle die Massage auf sanft", "LegwaveSetIntensity", {"intensity": 2}),
        ("mach es stärker", "LegwaveAdjust", {"step": 1}),
        ("mach die Massage etwas sanfter", "LegwaveAdjust", {"step": -1}),
        ("mehr Druck bitte", "LegwaveAdjust", {"step": 1}),
        ("weniger Druck", "LegwaveAdjust", {"step": -1}),
        ("dreh es etwas runter", "LegwaveAdjust", {"step": -1}),
        ("erhöhe den Druck", "LegwaveAdjust", {"step": 1}),
        ("wie lange läuft die Massage noch", "LegwaveTimeLeft", {}),
        ("wie lange läuft sie noch", "LegwaveTimeLeft", {}),
        ("wie viel Zeit hat die Massage noch", "LegwaveTimeLeft", {}),
        ("wann ist die Beinmassage fertig", "LegwaveTimeLeft", {}),
        ("läuft die Massage noch", "LegwaveIsRunning", {}),
        ("ist die Beinmassage an", "LegwaveIsRunning", {}),
        ("schalte Beinmassagegerät ein", "HassTurnOn", {"name": "switch.leg_massager"}),
    ],
    "nl": [
        ("start een beenmassage", "LegwaveStart", {}),
        ("start een zachte beenmassage", "LegwaveStart", {"intensity": 2}),
        ("start een stevige massage", "LegwaveStart", {"intensity": 6}),
        (
            "start een herstelmassage van 15 minuten",
            "LegwaveStart",
            {"preset": "recovery", "duration": 15},
        ),
        ("start een massage voor een half uur", "LegwaveStart", {"duration": 30}),
        ("start een massage van twintig minuten", "LegwaveStart", {"duration": 20}),
        ("ik wil een beenmassage", "LegwaveStart", {}),
        (
            "ik wil graag een zachte massage voor een uur",
            "LegwaveStart",
            {"intensity": 2, "duration": 60},
        ),
        ("geef me een massage", "LegwaveStart", {}),
        ("start de beenmassage in de slaapkamer", "LegwaveStart", {"area": "slaapkamer"}),
        ("start een massage op stand 5", "LegwaveStart", {"intensity": 5}),
        ("start een massage in de modus zacht", "LegwaveStart", {"mode": "gentle"}),
        ("masseer mijn benen voor 25 minuten", "LegwaveStart", {"duration": 25}),
        ("beenmassage starten", "LegwaveStart", {}),
        ("stop de beenmassage", "LegwaveStop", {}),
        ("stop de massage in de woonkamer", "LegwaveStop", {"area": "woonkamer"}),
        ("hou op met de massage", "LegwaveStop", {}),
        ("massage uitzetten", "LegwaveStop", {}),
        ("pauzeer de beenmassage", "LegwavePause", {}),
        ("massage pauzeren", "LegwavePause", {}),
        ("hervat de massage", "LegwaveResume", {}),
        ("ga verder met de massage", "LegwaveResume", {}),
        ("zet de beenmassage op stand 3", "LegwaveSetIntensity", {"intensity": 3}),
        ("zet de massage op zacht", "LegwaveSetIntensity", {"intensity": 2}),
        ("maak het sterker", "LegwaveAdjust", {"step": 1}),
        ("maak de massage een beetje zachter", "LegwaveAdjust", {"step": -1}),
        ("meer druk alsjeblieft", "LegwaveAdjust", {"step": 1}),
        ("minder druk", "LegwaveAdjust", {"step": -1}),
        ("zet hem wat lager", "LegwaveAdjust", {"step": -1}),
        ("verhoog de druk", "LegwaveAdjust", {"step": 1}),
        ("hoe lang duurt de massage nog", "LegwaveTimeLeft", {}),
        ("wanneer is de beenmassage klaar", "LegwaveTimeLeft", {}),
        ("loopt de massage nog", "LegwaveIsRunning", {}),
        ("staat de beenmassage aan", "LegwaveIsRunning", {}),
        ("zet beenmassageapparaat aan", "HassTurnOn", {"name": "switch.leg_massager"}),
    ],
    "fr": [
        ("lance un massage des jambes", "LegwaveStart", {}),
        ("lance un massage doux", "LegwaveStart", {"intensity": 2}),
        ("lance un massage des jambes fort", "LegwaveStart", {"intensity": 6}),
        (
            "lance un massage de récupération de 15 minutes",
            "LegwaveStart",
            {"preset": "recovery", "duration": 15},
        ),
        ("démarre un massage pendant une demi-heure", "LegwaveStart", {"duration": 30}),
        ("lance un massage d'une demi-heure", "LegwaveStart", {"duration": 30}),
        ("lance un massage de vingt minutes", "LegwaveStart", {"duration": 20}),
        ("je voudrais un massage des jambes", "LegwaveStart", {}),
        (
            "j'aimerais un massage doux pendant une heure",
            "LegwaveStart",
            {"intensity": 2, "duration": 60},
        ),
        ("lance le massage des jambes dans la chambre", "LegwaveStart", {"area": "chambre"}),
        ("lance un massage au niveau 5", "LegwaveStart", {"intensity": 5}),
        ("lance un massage en mode doux", "LegwaveStart", {"mode": "gentle"}),
        ("masse-moi les jambes pendant 25 minutes", "LegwaveStart", {"duration": 25}),
        ("fais-moi un petit massage", "LegwaveStart", {"intensity": 2}),
        ("arrête le massage", "LegwaveStop", {}),
        ("arrête le massage dans le salon", "LegwaveStop", {"area": "salon"}),
        ("ça suffit le massage", "LegwaveStop", {}),
        ("stoppe le massage des jambes", "LegwaveStop", {}),
        ("mets le massage en pause", "LegwavePause", {}),
        ("pause du massage", "LegwavePause", {}),
        ("reprends le massage", "LegwaveResume", {}),
        ("continue le massage", "LegwaveResume", {}),
        ("mets le massage au niveau 3", "LegwaveSetIntensity", {"intensity": 3}),
        ("passe le massage en doux", "LegwaveSetIntensity", {"intensity": 2}),
        ("plus fort", "LegwaveAdjust", {"step": 1}),
        ("un peu moins fort s'il te plaît", "LegwaveAdjust", {"step": -1}),
        ("plus de pression", "LegwaveAdjust", {"step": 1}),
        ("baisse la pression", "LegwaveAdjust", {"step": -1}),
        ("augmente l'intensité du massage", "LegwaveAdjust", {"step": 1}),
        ("combien de temps reste-t-il au massage", "LegwaveTimeLeft", {}),
        ("quand se termine le massage", "LegwaveTimeLeft", {}),
        ("il reste combien de temps sur le massage", "LegwaveTimeLeft", {}),
        ("le massage est-il en cours", "LegwaveIsRunning", {}),
        ("le massage tourne-t-il encore", "LegwaveIsRunning", {}),
        ("allume masseur de jambes", "HassTurnOn", {"name": "switch.leg_massager"}),
    ],
    "es": [
        ("empieza un masaje de piernas", "LegwaveStart", {}),
        ("empieza un masaje suave", "LegwaveStart", {"intensity": 2}),
        ("inicia un masaje de piernas fuerte", "LegwaveStart", {"intensity": 6}),
        (
            "empieza un masaje de recuperación de 15 minutos",
            "LegwaveStart",
            {"preset": "recovery", "duration": 15},
        ),
        ("empieza un masaje durante media hora", "LegwaveStart", {"duration": 30}),
        ("empieza un masaje de veinte minutos", "LegwaveStart", {"duration": 20}),
        ("quiero un masaje de piernas", "LegwaveStart", {}),
        (
            "me gustaría un masaje suave durante una hora",
            "LegwaveStart",
            {"intensity": 2, "duration": 60},
        ),
        ("dame un masaje por favor", "LegwaveStart", {}),
        ("empieza el masaje de piernas en el dormitorio", "LegwaveStart", {"area": "dormitorio"}),
        ("empieza un masaje al nivel 5", "LegwaveStart", {"intensity": 5}),
        ("empieza un masaje en modo suave", "LegwaveStart", {"mode": "gentle"}),
        ("masajea mis piernas durante 25 minutos", "LegwaveStart", {"duration": 25}),
        ("hazme un masaje relajante", "LegwaveStart", {"intensity": 2}),
        ("para el masaje", "LegwaveStop", {}),
        ("detén el masaje en el salón", "LegwaveStop", {"area": "salón"}),
        ("ya basta de masaje", "LegwaveStop", {}),
        ("termina el masaje de piernas", "LegwaveStop", {}),
        ("pausa el masaje", "LegwavePause", {}),
        ("pon el masaje en pausa", "LegwavePause", {}),
        ("reanuda el masaje", "LegwaveResume", {}),
        ("continúa el masaje", "LegwaveResume", {}),
        ("pon el masaje al nivel 3", "LegwaveSetIntensity", {"intensity": 3}),
        ("ajusta el masaje en suave", "LegwaveSetIntensity", {"intensity": 2}),
        ("más fuerte", "LegwaveAdjust", {"step": 1}),
        ("un poco menos fuerte por favor", "LegwaveAdjust", {"step": -1}),
        ("más presión", "LegwaveAdjust", {"step": 1}),
        ("baja la presión", "LegwaveAdjust", {"step": -1}),
        ("súbele un poco", "LegwaveAdjust", {"step": 1}),
        ("cuánto le queda al masaje", "LegwaveTimeLeft", {}),
        ("cuánto tiempo le queda al masaje", "LegwaveTimeLeft", {}),
        ("cuándo termina el masaje", "LegwaveTimeLeft", {}),
        ("sigue el masaje en marcha", "LegwaveIsRunning", {}),
        ("el masaje está encendido", "LegwaveIsRunning", {}),
        ("enciende masajeador de piernas", "HassTurnOn", {"name": "switch.leg_massager"}),
    ],
}

NEAR_MISSES: dict[str, list[str]] = {
    "de": [
        "starte den Geschirrspüler",
        "stopp die Musik",
        "stelle das Thermostat auf 20",
        "starte einen Timer für 15 Minuten",
        "mach die Musik lauter",
        "wie lange läuft der Timer noch",
        "starte eine 90 minütige Beinmassage",
        "stell die Beinmassage auf Stufe 9",
        "massiere die Katze",
        "starte die Massage in der Garage",
        "wie lange noch",  # Home Assistant's timers answer that
    ],
    "nl": [
        "start de vaatwasser",
        "stop de muziek",
        "zet de thermostaat op 20",
        "start een timer van 15 minuten",
        "zet de muziek harder",
        "start een beenmassage van 90 minuten",
        "zet de beenmassage op stand 9",
        "masseer de kat",
        "start de massage in de garage",
    ],
    "fr": [
        "lance le lave-vaisselle",
        "arrête la musique",
        "mets le thermostat à 20",
        "lance un minuteur de 15 minutes",
        "monte le son",
        "lance un massage de 90 minutes",
        "mets le massage au niveau 9",
        "masse le chat",
        "lance le massage dans le garage",
    ],
    "es": [
        "pon el lavavajillas",
        "para la música",
        "pon el termostato a 20",
        "pon un temporizador de 15 minutos",
        "sube el volumen",
        "empieza un masaje de 90 minutos",
        "pon el masaje al nivel 9",
        "masajea al gato",
        "empieza el masaje en el garaje",
    ],
}


@pytest.mark.parametrize(
    ("code", "text", "intent", "slots"),
    [(code, *case) for code, cases in CASES.items() for case in cases],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_utterance(code: str, text: str, intent: str | None, slots: dict[str, Any]) -> None:
    language = LANGUAGES[code]
    got = language.understand(text)
    assert got is not None, text
    assert got == (intent, slots)
    if intent is not None and intent.startswith("Legwave") and text not in LAB_CHECKED:
        # Home Assistant may prefer its own intent where both match (seen in the lab: "wie
        # lange noch" went to the timers): ours must be the only one
        builtin = recognize(text, language.builtin, slot_lists=language.lists)
        assert builtin is None, builtin.intent.name


@pytest.mark.parametrize(
    ("code", "text"), [(code, text) for code, texts in NEAR_MISSES.items() for text in texts]
)
def test_near_misses_are_not_legwave(code: str, text: str) -> None:
    got = LANGUAGES[code].understand(text)
    assert got is None or not got[0].startswith("Legwave"), got


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_every_language_has_the_same_intents_enough_utterances_and_near_misses(
    code: str,
) -> None:
    assert set(LANGUAGES[code].custom.intents) == set(ENGLISH["intents"])
    understood = {text for text, intent, _ in CASES[code] if intent}
    assert len(understood) >= 30
    assert len(NEAR_MISSES[code]) >= 8
    assert any(intent == "HassTurnOn" for _, intent, _ in CASES[code])  # the built-in stays


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_the_lists_say_the_devices_values(code: str) -> None:
    lists = yaml.safe_load(LANGUAGES[code].path.read_text())["lists"]
    for name in ("preset", "mode", "intensity", "duration"):
        english = ENGLISH["lists"][name]
        if "range" in english:
            assert lists[name]["range"] == english["range"]
        else:
            assert {v["out"] for v in lists[name]["values"]} <= {
                v["out"] for v in english["values"]
            }
    for extra in {"duration_words", "duration_spoken", "duration_d", "strength"} & set(lists):
        assert all(
            english["range"]["from"] <= v["out"] <= english["range"]["to"]
            for english in [ENGLISH["lists"]["intensity" if extra == "strength" else "duration"]]
            for v in lists[extra]["values"]
        )
