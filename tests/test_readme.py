"""The README's `legwave` examples run as written (the plot file goes to a temporary folder)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bridge.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


HARDWARE = README.parent / "docs" / "hardware.md"
NEEDS_AN_AGENT = {"run", "ctl", "watch", "health", "discovery", "remove", "registrar", "plant"}


def examples() -> list[str]:
    """`legwave` lines of the README and the hardware guide that run anywhere (the simulator)."""
    out = []
    for doc in (README, HARDWARE):
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.DOTALL):
            for line in block.splitlines():
                if line.startswith("scripts/run "):  # scripts/run ARGS runs legwave ARGS
                    line = "legwave " + line.removeprefix("scripts/run ")
                if not line.startswith("legwave ") or "/etc/" in line:
                    continue  # a Pi's configuration is not here
                words = shlex.split(line, comments=True)
                if len(words) < 2 or words[1] in NEEDS_AN_AGENT:  # bare `scripts/run` is `run`
                    continue  # tests/integration runs these against a real broker and agent
                if "--raw" in line and "--once" not in line:
                    continue  # a live view until Ctrl-C
                out.append(line.strip())
    return out


def test_the_readme_configuration_example_loads(tmp_path: Path) -> None:
    from bridge.config import load_settings

    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks
    path = tmp_path / "legwave.yaml"
    ca = tmp_path / "ca.pem"  # the example's CA file, which the settings check exists
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert "/etc/legwave/ca.pem" in blocks[0]
    path.write_text(blocks[0].replace("/etc/legwave/ca.pem", str(ca)))
    path.chmod(0o600)  # it holds the broker password: as the README says
    settings = load_settings(path)
    assert settings.mqtt.host == "broker.lan"
    assert settings.device.limits.max_setpoint_mmhg == 70
    assert "~" not in str(settings.state_dir)


def test_the_readme_has_examples() -> None:
    assert len(examples()) >= 3


@pytest.mark.parametrize("command", examples())
def test_readme_example_runs(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(tmp_path / "state"))  # selftest keeps a record
    args = shlex.split(command, comments=True)[1:]
    for i, arg in enumerate(args):
        if arg == "--plot":
            args[i + 1] = str(tmp_path / args[i + 1])
    # an example that shows a failure says so in its comment ("# failed: …", "refused")
    comment = command.partition("#")[2]
    expected = 1 if "failed" in comment or "refused" in comment else 0
    assert main(args) == expected
    out = capsys.readouterr().out
    assert out.strip()
    for i, arg in enumerate(args):
        if arg == "--plot":
            assert Path(args[i + 1]).stat().st_size > 10_000


DOCS = [README, *sorted((README.parent / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_and_images_exist(doc: Path) -> None:
    targets = re.findall(r"\]\(([^)\s]+)\)", doc.read_text())
    local = [t.split("#")[0] for t in targets if "://" not in t and not t.startswith("#")]
    missing = [t for t in local if t and not (doc.parent / t).exists()]
    assert not missing, f"{doc.name} links to missing files: {missing}"
