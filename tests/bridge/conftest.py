"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cli_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state directory for `legwave` commands, and no configuration from outside."""
    folder = tmp_path / "state"
    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(folder))
    monkeypatch.delenv("LEGWAVE_CONFIG", raising=False)
    monkeypatch.delenv("LEGWAVE_BACKEND", raising=False)
    return folder
