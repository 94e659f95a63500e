"""Dependency direction (README: Layout): device never imports bridge or MQTT; hardware lazily."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_DEVICE = {"bridge", "aiomqtt", "paho"}
HARDWARE = {"RPi", "gpiozero", "lgpio", "smbus2"}


def imported_modules(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_device_never_imports_bridge_or_mqtt() -> None:
    files = sorted((ROOT / "device").rglob("*.py"))
    assert files
    for path in files:
        bad = imported_modules(path, top_level_only=False) & FORBIDDEN_IN_DEVICE
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_no_hardware_library_is_imported_at_module_level() -> None:
    for package in ("device", "bridge"):
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = imported_modules(path, top_level_only=True) & HARDWARE
            assert not bad, f"{path.relative_to(ROOT)} imports {bad} at module level"


def test_importing_everything_pulls_in_no_hardware_or_plotting_library() -> None:
    code = (
        "import sys, device.simulate, device.runner, bridge.cli;"
        "lazy = {'RPi', 'gpiozero', 'lgpio', 'smbus2', 'matplotlib'};"
        "bad = {m.split('.')[0] for m in sys.modules} & lazy;"
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
