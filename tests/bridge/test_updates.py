"""The newest release, from a release source on a local HTTP server (never the internet)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from bridge import update_guard, updates
from bridge.agent import Agent
from bridge.config import ConfigError, load_settings
from bridge.discovery import device_payload
from bridge.service import build
from bridge.transport import Incoming
from bridge.update_guard import (
    ONLINE,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    TRYING,
    read_trial,
)
from bridge.updates import Release, UpdateSourceError, fetch_release, parse_release, settle
from device.control.massager import Action, Command, CommandRejectedError

PYPI_LIKE = {
    "info": {
        "version": "0.2.0",
        "summary": "Smart-home controller for air-compression leg massagers",
        "project_urls": {"Changelog": "http://127.0.0.1/changelog#020"},
        "package_url": "http://127.0.0.1/project/legwave/",
    },
    "releases": {"0.1.0": [], "0.2.0": []},
}


class Index:
    """A local HTTP server whose answers each test sets: (status, body) per path."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, bytes]] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = pages.get(self.path, (404, b"not here"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def index() -> Iterator[Index]:
    served = Index()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_a_package_index_and_a_plain_document_name_the_release() -> None:
    assert parse_release(PYPI_LIKE, source="s") == Release(
        version="0.2.0",
        release_url="http://127.0.0.1/changelog#020",
        summary="Smart-home controller for air-compression leg massagers",
    )
    plain = {"version": "0.3.0rc1", "release_url": "http://x/notes", "release_summary": "x" * 300}
    release = parse_release(plain, source="s")
    assert release.version == "0.3.0rc1" and release.summary == "x" * 255


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "not a JSON object"),
        ({}, "version: None is not a version number"),
        ({"version": "latest"}, "version: 'latest' is not a version number"),
        ({"info": {"version": 2}}, "version: 2 is not a version number"),
    ],
)
def test_a_document_without_a_version_is_refused_with_the_reason(
    document: Any, reason: str
) -> None:
    with pytest.raises(UpdateSourceError, match=f"^src: {reason}"):
        parse_release(document, source="src")


def test_fetched_from_a_local_index(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    index.pages["/pypi/legwave/json"] = (200, json.dumps(PYPI_LIKE).encode())
    index.pages["/broken"] = (200, b"{nope")
    index.pages["/huge"] = (200, b" " * 200)
    assert fetch_release(index.url("/pypi/legwave/json")).version == "0.2.0"
    with pytest.raises(UpdateSourceError, match="HTTP 404"):
        fetch_release(index.url("/missing"))
    with pytest.raises(UpdateSourceError, match="not JSON"):
        fetch_release(index.url("/broken"))
    monkeypatch.setattr(updates, "MAX_DOCUMENT_BYTES", 100)
    with pytest.raises(UpdateSourceError, match="more than 100 bytes"):
        fetch_release(index.url("/huge"))
    index.server.shutdown()
    index.server.server_close()
    with pytest.raises(UpdateSourceError, match="cannot be reached"):
        fetch_release(index.url("/pypi/legwave/json"), timeout=2)


def agent_with_source(tmp_path: Path, source: str) -> Agent:
    settings = load_settings(None, state_dir=tmp_path, update={"source": source})
    return build(settings, host="127.0.0.1", port=1)


def update_sent(agent: Agent) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in agent.outbox.take() if m.topic == agent.topics.update]


def test_the_agent_says_the_newest_release_and_keeps_it_when_the_source_fails(
    tmp_path: Path, index: Index
) -> None:
    import asyncio

    from device import __version__

    agent = agent_with_source(tmp_path, index.url("/pypi/legwave/json"))
    agent.publish_update()
    # Home Assistant's schema takes a string or nothing for each text field: never null (its
    # log says "Schema violation" and drops the whole message)
    assert update_sent(agent) == [
        {
            "installed_version": __version__,
            "title": "legwave",
            "release_summary": "",
            "in_progress": False,
            "update_percentage": None,
        }
    ]
    index.pages["/pypi/legwave/json"] = (200, json.dumps(PYPI_LIKE).encode())
    asyncio.run(agent.check_updates_once())
    (body,) = update_sent(agent)
    assert body["latest_version"] == "0.2.0"
    assert body["release_url"] == "http://127.0.0.1/changelog#020"
    asyncio.run(agent.check_updates_once())
    assert update_sent(agent) == []  # the same release: nothing new to say
    index.pages["/pypi/legwave/json"] = (500, b"")
    asyncio.run(agent.check_updates_once())
    assert update_sent(agent) == []
    assert agent.update_error is not None and "HTTP 500" in agent.update_error
    assert agent.latest_release is not None and agent.latest_release.version == "0.2.0"


def test_the_update_entity_is_there_only_with_a_release_source(tmp_path: Path) -> None:
    without = build(load_settings(None, state_dir=tmp_path / "a"), host="127.0.0.1", port=1)
    assert not any(
        c["platform"] == "update" for c in device_payload(without.info)["components"].values()
    )
    agent = agent_with_source(tmp_path / "b", "http://127.0.0.1:9/pypi/legwave/json")
    (entity,) = (
        c for c in device_payload(agent.info)["components"].values() if c["platform"] == "update"
    )
    assert entity["state_topic"] == agent.topics.update
    assert "command_topic" not in entity  # it tells; installing is not offered


def test_a_source_that_is_no_web_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, state_dir=tmp_path, update={"source": "ftp://example/legwave.json"})
    assert err.value.problems == ["update.source: must be an http:// or https:// URL"]


def installing_agent(tmp_path: Path) -> Agent:
    settings = load_settings(
        None,
        state_dir=tmp_path,
        update={"source": "http://127.0.0.1:9/legwave.json", "install": True},
    )
    return build(settings, host="127.0.0.1", port=1)


def ask_install(agent: Agent, payload: bytes = b"install", *, retain: bool = False) -> None:
    topic = agent.topics.update_install
    agent.receive(Incoming(aiomqtt.Message(topic, payload, 1, retain, 1, None)))


def test_with_install_on_the_update_entity_offers_to_install(tmp_path: Path) -> None:
    agent = installing_agent(tmp_path)
    (entity,) = (
        c for c in device_payload(agent.info)["components"].values() if c["platform"] == "update"
    )
    assert entity["command_topic"] == "legwave/" + agent.info.device_id + "/update/install"
    assert entity["payload_install"] == "install"


def test_install_needs_a_source_and_an_index_is_a_web_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, state_dir=tmp_path, update={"install": True})
    assert err.value.problems == ["update: install needs a source: the release it would install"]
    with pytest.raises(ConfigError) as err:
        load_settings(
            None,
            state_dir=tmp_path,
            update={"source": "http://127.0.0.1/x.json", "index_url": "/srv/wheels"},
        )
    assert err.value.problems == ["update.index_url: must be an http:// or https:// URL"]


def test_an_install_is_refused_with_the_reason_until_it_can_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from device import __version__

    monkeypatch.delenv("INVOCATION_ID", raising=False)
    agent = installing_agent(tmp_path)

    def summary() -> str:
        (body,) = update_sent(agent)[-1:]
        assert body["in_progress"] is False
        return str(body["release_summary"])

    ask_install(agent)
    assert summary() == "Not installed: the release source has not answered yet."
    agent.latest_release = Release(version=__version__)
    ask_install(agent)
    assert summary() == f"Not installed: legwave {__version__} is already installed."
    agent.latest_release = Release(version="99.0", summary="the next one")
    ask_install(agent)
    assert summary() == (
        "Not installed: nothing would start legwave again: it does not run under systemd."
        "\n\nthe next one"
    )
    monkeypatch.setenv("INVOCATION_ID", "0" * 32)
    agent.runner.submit(Command(Action.START))
    ask_install(agent)
    assert summary().startswith("Not installed: the massager is busy (fit_check): stop it")
    idle = installing_agent(tmp_path / "idle")
    idle.latest_release = agent.latest_release
    ask_install(idle)  # the tests run from a checkout, an editable install: git updates it
    (body,) = update_sent(idle)
    assert body["release_summary"].startswith("Not installed: legwave runs from a checkout")
    # a request left retained on the broker, or another payload, asks for nothing
    ask_install(agent, retain=True)
    ask_install(agent, b"please")
    assert update_sent(agent) == []


def test_while_held_no_session_or_self_test_starts(tmp_path: Path) -> None:
    agent = installing_agent(tmp_path)
    agent.massager.held = "legwave 0.2.0 is being installed"
    for action in (Action.START, Action.SELFTEST):
        with pytest.raises(CommandRejectedError) as err:
            agent.runner.submit(Command(action))
        assert (err.value.code, err.value.message) == ("busy", "legwave 0.2.0 is being installed")
    agent.massager.held = None
    agent.runner.submit(Command(Action.START))


def trial(tmp_path: Path, state: str, **extra: Any) -> None:
    update_guard.write_trial(
        tmp_path, {"from": "0.1.0", "to": "0.2.0", "state": state, "starts": 0, **extra}
    )


def test_the_guard_counts_the_starts_of_a_release_on_trial(tmp_path: Path) -> None:
    assert update_guard.main(["before", str(tmp_path)]) == 0  # no trial: nothing to do
    assert not update_guard.trial_path(tmp_path).exists()
    trial(tmp_path, TRYING)
    for start in range(1, update_guard.MAX_STARTS + 1):
        assert update_guard.main(["before", str(tmp_path)]) == 0
        got = read_trial(tmp_path)
        assert got is not None and (got["state"], got["starts"]) == (TRYING, start)
    update_guard.trial_path(tmp_path).write_text("{not json")
    assert read_trial(tmp_path) is None  # a broken file is no trial
    assert update_guard.main(["sideways", str(tmp_path)]) == 2


def test_the_guard_fails_a_start_that_does_not_come_online(tmp_path: Path) -> None:
    assert update_guard.after(tmp_path, within_s=0.0) == 0  # no trial
    trial(tmp_path, TRYING, starts=1)
    assert update_guard.after(tmp_path, within_s=0.0) == 1
    trial(tmp_path, ONLINE, starts=1)
    assert update_guard.after(tmp_path, within_s=0.0) == 0


@pytest.mark.parametrize(
    ("state", "running", "note"),
    [
        (TRYING, "0.2.0", "Updated from 0.1.0 to 0.2.0."),
        (TRYING, "0.1.0", "The update to 0.2.0 did not take: 0.1.0 runs."),
        (
            ROLLED_BACK,
            "0.1.0",
            "The update to 0.2.0 was rolled back: it crashed; 0.1.0 runs.",
        ),
        (ROLLBACK_FAILED, "0.2.0", "The update to 0.2.0 failed and its rollback too: 0.2.0 runs."),
        (ONLINE, "0.2.0", None),
    ],
)
def test_at_start_the_agent_says_what_became_of_the_last_install(
    tmp_path: Path, state: str, running: str, note: str | None
) -> None:
    trial(tmp_path, state, reason="it crashed")
    assert settle(tmp_path, running) == note
    assert not update_guard.trial_dir(tmp_path).exists()
    assert settle(tmp_path, running) is None  # said once


@pytest.mark.parametrize(
    ("wheel", "tag"),
    [
        ("Wheel-Version: 1.0\nTag: py3-none-any\n", "py3-none-any"),
        ("Tag: py2-none-any\nTag: py3-none-any\n", "py2.py3-none-any"),
        (
            "Tag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n",
            "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        ),
        (None, "py3-none-any"),
    ],
)
def test_a_kept_wheel_is_named_by_the_tags_it_was_installed_with(
    wheel: str | None, tag: str
) -> None:
    assert updates._wheel_tag(wheel) == tag
