"""The layout's rules (CONTRIBUTING.md: the map), read from every import of every module.

Every import counts: at the top, inside functions, under `if TYPE_CHECKING:`, in `try` blocks.

- `device` never imports `bridge`, and nothing that speaks MQTT.
- `device/control` imports no backend, no clock and no network: it is given the time and the
  readings, and returns orders.
- aiomqtt and paho only in `bridge/transport`.
- GPIO and I2C libraries only in the Pi backend, and there only inside functions (a machine
  without them still imports everything).
- The suite and the benchmarks never import each other; what both use lives in `testkit/`
  (and the simulated device in `device.harness`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MQTT = {"aiomqtt", "paho"}
HARDWARE = {"RPi", "gpiozero", "lgpio", "smbus2", "spidev", "pigpio"}
CLOCK_AND_NETWORK = {"time", "asyncio", "socket", "selectors", "threading", "ssl", "http"}
CLOCK_AND_NETWORK |= MQTT


@dataclass(frozen=True)
class Rule:
    """Modules under `where` (but not under `unless`) may not import `banned` (by prefix)."""

    where: str
    banned: frozenset[str]
    unless: str | None = None
    top_level_only: bool = False

    def applies_to(self, module: str) -> bool:
        inside = module == self.where or module.startswith(self.where + ".")
        exempt = self.unless is not None and (
            module == self.unless or module.startswith(self.unless + ".")
        )
        return inside and not exempt


RULES = (
    Rule("device", frozenset({"bridge"} | MQTT)),
    Rule("device.control", frozenset({"device.backends", "device.runner"} | CLOCK_AND_NETWORK)),
    Rule("bridge", frozenset(MQTT), unless="bridge.transport"),
    Rule("bridge", frozenset(HARDWARE)),
    Rule("device", frozenset(HARDWARE), unless="device.backends.pi"),
    Rule("device.backends.pi", frozenset(HARDWARE), top_level_only=True),
    Rule("tests", frozenset({"bench"})),
    Rule("bench", frozenset({"tests"})),
    Rule("testkit", frozenset({"tests", "bench"})),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str, *, top_level_only: bool = False) -> list[set[str]]:
    """What each import statement of `source` names: `from a import b` names `a` and `a.b`.

    Relative imports are resolved against `module`.
    """
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = module.split(".")
    statements: list[set[str]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            statements += [{alias.name} for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level], base]).strip(".")
            statements.append({base} | {f"{base}.{alias.name}" for alias in node.names})
    return statements


def violations(source: str, module: str) -> list[str]:
    """What `source`, as module `module`, imports against the rules (one line a statement)."""
    out: set[str] = set()
    for rule in RULES:
        if not rule.applies_to(module):
            continue

        def banned(name: str, rule: Rule = rule) -> bool:
            return any(name == b or name.startswith(b + ".") for b in rule.banned)

        for names in imports(source, module, top_level_only=rule.top_level_only):
            hits = sorted(n for n in names if banned(n))
            if hits:  # the shortest: the module itself, where the module is banned
                where = " at module level" if rule.top_level_only else ""
                out.add(f"{module} imports {hits[0]}{where}")
    return sorted(out)


def project_modules() -> list[Path]:
    folders = ("device", "bridge", "tests", "bench", "testkit")
    files = [p for folder in folders for p in (ROOT / folder).rglob("*.py")]
    assert len(files) > 100
    return sorted(files)


def test_every_module_keeps_the_rules() -> None:
    found = [v for p in project_modules() for v in violations(p.read_text(), module_name(p))]
    assert found == []


def test_the_rules_see_imports_hidden_in_functions_conditions_and_try_blocks() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from bridge.config import AgentSettings\n"
        "def tick():\n"
        "    import time\n"
        "    try:\n"
        "        from ..backends import sim\n"
        "    except ImportError:\n"
        "        pass\n"
    )
    assert violations(source, "device.control.massager") == [
        "device.control.massager imports bridge.config",
        "device.control.massager imports device.backends",
        "device.control.massager imports time",
    ]
    assert violations("def f():\n    import paho.mqtt.client\n", "bridge.watch") == [
        "bridge.watch imports paho.mqtt.client"
    ]
    assert violations("import aiomqtt\n", "bridge.transport") == []
    assert violations("import gpiozero\n", "device.backends.pi.lines") == [
        "device.backends.pi.lines imports gpiozero at module level"
    ]
    assert violations("def f():\n    import gpiozero\n", "device.backends.pi.lines") == []
    assert violations("def f():\n    import smbus2\n", "device.backends.sim") == [
        "device.backends.sim imports smbus2"
    ]
    assert violations("from bench.soak import soak\n", "tests.faults.test_soak") == [
        "tests.faults.test_soak imports bench.soak"
    ]


def test_importing_everything_pulls_in_no_hardware_or_plotting_library() -> None:
    code = (
        "import sys, device.simulate, device.runner, bridge.cli;"
        "lazy = {'RPi', 'gpiozero', 'lgpio', 'smbus2', 'matplotlib'};"
        "bad = {m.split('.')[0] for m in sys.modules} & lazy;"
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_simulator_path_loads_nothing_of_the_pi_backend_or_the_plotting_stack() -> None:
    """`legwave run` on the simulator: the wiring model only, no backend, no matplotlib."""
    code = (
        "import sys, bridge.cli, bridge.service\n"
        "from bridge.config import load_settings\n"
        "from bridge.service import build\n"
        "build(load_settings(None, device_id='arch', state_dir=sys.argv[1]), host='x', port=1)\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    with tempfile.TemporaryDirectory() as state:
        out = subprocess.run(
            [sys.executable, "-c", code, state], check=True, capture_output=True, text=True
        ).stdout.split()
    pi = [m for m in out if m.startswith("device.backends.pi")]
    assert pi == ["device.backends.pi", "device.backends.pi.config"], pi
    assert not [m for m in out if m.startswith(("matplotlib", "gpiozero", "RPi", "smbus2"))]
