"""`legwave health`'s own path: the state directory found as the settings find it, and its edges."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import load_settings
from bridge.health import SOCKET_NAME, answering, ask, state_dir_of

CASES = {
    "the default": ({}, None),
    "the environment": ({"LEGWAVE_STATE_DIR": "{tmp}/from-env"}, None),
    "the environment, in lower case": ({"legwave_state_dir": "{tmp}/lower"}, None),
    "the file": ({}, "state_dir: {tmp}/from-file\n"),
    "the file, from home": ({}, "state_dir: ~/legwave-state\n"),
    "the environment over the file": (
        {"LEGWAVE_STATE_DIR": "{tmp}/env-wins"},
        "state_dir: {tmp}/file-loses\n",
    ),
    "a file without it": ({}, "mqtt:\n  port: 1884\n"),
    "an empty file": ({}, ""),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_state_directory_is_the_one_the_agent_runs_with(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ, text = CASES[case]
    for name in [n for n in os.environ if n.upper().startswith("LEGWAVE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in environ.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    config = None
    if text is not None:
        config = tmp_path / "legwave.yaml"
        config.write_text(text.format(tmp=tmp_path))
        config.chmod(0o600)
    found = state_dir_of(config, os.environ)
    assert found == load_settings(config).state_dir
    assert found.is_absolute()


def test_a_broken_file_is_reported_by_the_whole_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "legwave.yaml"
    config.write_text("state_dir: [unclosed\n")
    config.chmod(0o600)
    assert main(["--config", str(config), "health"]) == 2
    err = capsys.readouterr().err
    assert "the configuration has problems" in err and "not valid YAML" in err


def test_with_no_agent_it_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(tmp_path / "nobody"))
    assert main(["health"]) == 1
    said = capsys.readouterr().out
    assert said.startswith(f"offline: no agent answers in {tmp_path / 'nobody'}"), said


def test_a_state_directory_too_long_for_a_socket_leaves_the_agent_running_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deep = tmp_path / ("d" * 120)
    deep.mkdir()

    async def scenario() -> Path | None:
        async with answering(deep, lambda: {"status": "online"}) as path:
            return path

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(scenario()) is None
    assert "legwave health --broker still can" in caplog.text
    with pytest.raises(OSError):
        ask(deep, 1.0)


def test_the_agent_s_answer_is_one_json_object_and_the_socket_goes_with_the_agent(
    tmp_path: Path,
) -> None:
    async def scenario() -> dict[str, object]:
        async with answering(tmp_path, lambda: {"status": "online", "n": 1}) as path:
            assert path == tmp_path / SOCKET_NAME
            return await asyncio.to_thread(ask, tmp_path, 5.0)

    assert asyncio.run(scenario()) == {"status": "online", "n": 1}
    assert not (tmp_path / SOCKET_NAME).exists()
