"""The newest release, from a release source on a local HTTP server (never the internet)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bridge import updates
from bridge.agent import Agent
from bridge.config import ConfigError, load_settings
from bridge.discovery import device_payload
from bridge.service import build
from bridge.updates import Release, UpdateSourceError, fetch_release, parse_release

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
    assert update_sent(agent) == [
        {
            "installed_version": __version__,
            "latest_version": None,
            "title": "legwave",
            "release_url": None,
            "release_summary": None,
            "in_progress": False,
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
