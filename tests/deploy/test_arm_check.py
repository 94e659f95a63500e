"""deploy/arm-check.sh (the ARM proof, run on demand): it parses, explains itself, and the hardware
guide carries its last result."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "arm-check.sh"


def test_it_parses_and_says_what_it_does() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    out = subprocess.run(
        ["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "debootstrap" in out and "qemu-user-static" in out
    assert "deploy/install.sh" in out


def test_unknown_options_are_refused() -> None:
    out = subprocess.run(
        ["bash", str(SCRIPT), "--fast"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 2
    assert "unknown option: --fast" in out.stderr


def test_the_hardware_guide_has_its_last_result() -> None:
    text = (ROOT / "docs" / "hardware.md").read_text()
    section = text[text.index("## On ARM") :]
    assert re.search(r"Python 3\.\d+\.\d+ on aarch64", section)
    assert re.search(r"\d+ passed", section)
    assert "sudo deploy/arm-check.sh" in section
