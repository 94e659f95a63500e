"""An update installed from Home Assistant's update entity, end to end, never from the internet.

Three releases are built from this tree with its own build backend and served by a package
index on 127.0.0.1: 0.1.0, 0.2.0, and 0.3.0, broken on purpose (it cannot start). A throwaway
venv holds 0.1.0 (its dependencies are the test environment's, seen through a .pth file, so
nothing is downloaded). deploy/legwave.service's own commands run it, in systemd's order:
ExecStartPre (the update guard), ExecStart (`legwave run`), ExecStartPost (the guard again),
and a start again after a failure, as ``Restart=on-failure`` does. systemd itself is not run
(a test machine or container seldom boots with it); `systemd-analyze verify` checks the unit's
lines in tests/deploy/test_pi_install.py, and docs/hardware.md (Updates) tells the same
sequence run under a real systemd.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bridge.broker import Mosquitto
from tests.deploy.test_pi_install import unit_entries

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "legwave.service"
DEVICE = "lwupdate"
HANG_GUARD_S = 120.0  # pip on a loaded machine; how long an update takes is not this test's
RESTART_SEC = 0.5  # the unit's RestartSec is 2 s; the order of events is what is tested


def _quiet_env() -> dict[str, str]:
    """This machine's environment without its pip configuration or a legwave setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEGWAVE_", "PIP_"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1"}


def build_release(tmp: Path, version: str, wheels: Path, *, broken: bool = False) -> None:
    """A wheel of this tree as `version` (`broken`: `legwave run` fails at once)."""
    tree = tmp / f"src-{version}"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("bridge", "device"):
        shutil.copytree(ROOT / name, tree / name, ignore=skip)
    for name in ("README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    project = (ROOT / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(
        project.replace('version = "0.1.0"', f'version = "{version}"', 1)
    )
    if broken:
        with (tree / "bridge" / "service.py").open("a") as out:
            out.write('\nraise RuntimeError("this release is broken on purpose")\n')
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--quiet", "--wheel-dir", str(wheels), str(tree)),
        ],
        env=_quiet_env(),
        check=True,
        timeout=HANG_GUARD_S,
    )


class Index:
    """A package index (PEP 503's simple API) and a release source, on 127.0.0.1."""

    def __init__(self, root: Path, wheels: Path) -> None:
        self.root = root
        project = root / "simple" / "legwave"
        project.mkdir(parents=True)
        links = "".join(
            f'<a href="/wheels/{w.name}">{w.name}</a>\n' for w in sorted(wheels.glob("*.whl"))
        )
        (project / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
        shutil.copytree(wheels, root / "wheels")
        handler = partial(_Quiet, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def announce(self, version: str) -> None:
        """The release source names `version` as the newest."""
        (self.root / "legwave.json").write_text(
            json.dumps({"version": version, "release_summary": f"legwave {version}"})
        )


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass


def venv_with(python_dir: Path, wheels: Path, version: str) -> Path:
    """A venv holding legwave `version`; its dependencies are this environment's (a .pth)."""
    env = _quiet_env()
    # (pip comes from this environment too: the agent runs `python -m pip`, which installs
    # into the interpreter's own venv wherever pip itself lies; ensurepip would cost seconds)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(python_dir)], check=True, env=env
    )
    python = python_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = python_dir.parent / "deps"
    deps.mkdir()
    ours = ("legwave", "bridge", "device", "testkit", "_editable", "__editable__")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(ours) and not entry.name.endswith(".pth"):
            (deps / entry.name).symlink_to(entry)
    (Path(purelib) / "legwave_test_deps.pth").write_text(f"{deps}\n")
    subprocess.run(
        [
            *(python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"),
            *("--find-links", str(wheels), f"legwave=={version}"),
        ],
        check=True,
        env=env,
        timeout=HANG_GUARD_S,
    )
    return python_dir


def installed(venv: Path) -> str:
    """The legwave version in `venv`, as pip knows it."""
    out = subprocess.run(
        [
            venv / "bin" / "python",
            "-c",
            "from importlib.metadata import version as v; print(v('legwave'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class Unit:
    """deploy/legwave.service's commands, run as systemd runs them, its paths made local."""

    def __init__(self, tmp: Path, venv: Path, env: dict[str, str]) -> None:
        unit = unit_entries(UNIT.read_text())
        service = unit["Service"]
        self.state = tmp / "state"
        self.log = (tmp / "unit.log").open("ab")
        guard = tmp / "update-guard.py"  # deploy/install.sh installs the release's guard
        shutil.copy(ROOT / "bridge" / "update_guard.py", guard)
        paths = {
            "/opt/legwave/venv": str(venv),
            "/opt/legwave/update-guard.py": str(guard),
            "/etc/legwave/config.yaml": str(tmp / "config.yaml"),
            "/var/lib/legwave": str(self.state),
        }

        def local(line: str) -> list[str]:
            for path, here in paths.items():
                line = line.replace(path, here)
            return shlex.split(line)

        self.pre = [local(c) for c in service["ExecStartPre"]]
        (self.main,) = [local(c) for c in service["ExecStart"]]
        self.post = [local(c) for c in service["ExecStartPost"]]
        self.burst = int(unit["Unit"]["StartLimitBurst"][0])
        self.env = {**env, "INVOCATION_ID": "0" * 32}
        for line in service["Environment"]:
            key, _, value = line.partition("=")
            self.env[key] = local(value)[0]
        self.starts = 0
        self.exits: list[int] = []
        self._stop = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """`systemctl stop`: SIGTERM, then wait."""
        self._stop.set()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        if self._thread is not None:
            self._thread.join(HANG_GUARD_S)

    def _run(self, command: list[str]) -> int:
        return subprocess.run(
            command, env=self.env, stdout=self.log, stderr=self.log, timeout=HANG_GUARD_S
        ).returncode

    def _serve(self) -> None:
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = self.state.parent / f"notify-{self.starts}"
        notify.bind(str(path))
        notify.settimeout(0.1)
        env = {**self.env, "NOTIFY_SOCKET": str(path)}
        try:
            while not self._stop.is_set() and self.starts < self.burst * 2:
                self.starts += 1
                if any(self._run(c) != 0 for c in self.pre):
                    self.exits.append(-1)
                else:
                    code = self._start(notify, env)
                    self.exits.append(code)
                    if code == 0:
                        return  # Restart=on-failure: a clean exit stays down
                self._stop.wait(RESTART_SEC)
        finally:
            notify.close()

    def _start(self, notify: socket.socket, env: dict[str, str]) -> int:
        """ExecStart; once it says READY=1 (Type=notify), ExecStartPost; its exit status."""
        process = subprocess.Popen(self.main, env=env, stdout=self.log, stderr=self.log)
        self._process = process
        while process.poll() is None:
            try:
                said = notify.recv(4096)
            except TimeoutError:
                continue
            if b"READY=1" in said:
                if any(self._run(c) != 0 for c in self.post):
                    process.send_signal(signal.SIGTERM)  # the start failed: stop it
                break
        return process.wait()


class Watcher:
    """What the device says on its update and state topics (paho, on its own thread)."""

    def __init__(self, port: int) -> None:
        self.base = f"legwave/{DEVICE}"
        self.updates: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"{self.base}/update", 1), (f"{self.base}/state", 1)])
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        with self._cond:
            if message.topic.endswith("/update"):
                self.updates.append(body)
            else:
                self.state = body
            self._cond.notify_all()

    def wait(self, what: str, check: Any) -> Any:
        """The first update (or state) `check` accepts, from now on or already seen."""
        with self._cond:
            ok = self._cond.wait_for(lambda: check(self), HANG_GUARD_S)
        assert ok, f"{what}; updates seen: {self.updates[-5:]}, state: {self.state.get('status')}"
        return check(self)

    def send(self, topic: str, payload: str) -> None:
        self.client.publish(f"{self.base}/{topic}", payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def last_update(**fields: Any) -> Any:
    """A check: the newest update message has these fields (a value may be a predicate)."""

    def check(w: Watcher) -> dict[str, Any] | None:
        if not w.updates:
            return None
        body = w.updates[-1]
        for key, want in fields.items():
            if not (want(body.get(key)) if callable(want) else body.get(key) == want):
                return None
        return body

    return check


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of 0.1.0, 0.2.0 and a broken 0.3.0."""
    tmp = tmp_path_factory.mktemp("releases")
    wheels = tmp / "wheels"
    for version, broken in (("0.1.0", False), ("0.2.0", False), ("0.3.0", True)):
        build_release(tmp, version, wheels, broken=broken)
    return wheels


def test_the_unit_runs_the_update_guard_around_each_start() -> None:
    service = unit_entries(UNIT.read_text())["Service"]
    guard = "/opt/legwave/venv/bin/python -S /opt/legwave/update-guard.py"
    assert service["ExecStartPre"] == [f"{guard} before /var/lib/legwave"]
    assert service["ExecStartPost"] == [f"{guard} after /var/lib/legwave"]
    assert service["Restart"] == ["on-failure"]


@pytest.mark.slow
def test_install_when_idle_then_a_broken_release_is_rolled_back(
    tmp_path: Path, releases: Path, broker: Mosquitto
) -> None:
    index = Index(tmp_path / "index", releases)
    index.announce("0.2.0")
    venv = venv_with(tmp_path / "venv", releases, "0.1.0")
    (tmp_path / "config.yaml").write_text(
        f"device_id: {DEVICE}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        f"update: {{source: '{index.url}/legwave.json', install: true,"
        f" index_url: '{index.url}/simple'}}\n"
    )
    # pip's own index is the local one too: nothing is asked of the internet
    unit = Unit(tmp_path, venv, {**_quiet_env(), "PIP_INDEX_URL": f"{index.url}/simple"})
    watcher = Watcher(broker.port)
    unit.start()
    try:
        watcher.wait(
            "0.1.0 says 0.2.0 is out",
            last_update(installed_version="0.1.0", latest_version="0.2.0", in_progress=False),
        )
        # during a session: refused, with the reason, and the session goes on
        watcher.send("set", '{"action": "start", "duration_min": 5}')
        watcher.wait("a session runs", lambda w: w.state.get("status") in ("fit_check", "running"))
        watcher.send("update/install", "install")
        refused = watcher.wait(
            "the install is refused",
            last_update(release_summary=lambda s: bool(s) and s.startswith("Not installed")),
        )
        assert "the massager is busy" in refused["release_summary"]
        assert refused["in_progress"] is False
        assert watcher.state["status"] in ("fit_check", "running")
        assert installed(venv) == "0.1.0"
        watcher.send("set", '{"action": "stop"}')
        watcher.wait("idle again", lambda w: w.state.get("status") == "idle")

        # idle: installed, with its progress, restarted, confirmed
        watcher.send("update/install", "install")
        done = watcher.wait(
            "0.2.0 runs",
            last_update(installed_version="0.2.0", in_progress=False),
        )
        assert done["release_summary"].startswith("Updated from 0.1.0 to 0.2.0.")
        # (each step's message replaces the one before it if it has not gone out yet)
        percentages = [u["update_percentage"] for u in watcher.updates if u["in_progress"]]
        assert percentages == sorted(percentages)
        assert set(percentages) <= {0, 10, 40, 70, 90, 100}
        assert percentages[-1] == 100
        assert installed(venv) == "0.2.0"
        assert 75 in unit.exits  # the agent stopped for the new release to start
        assert not (unit.state / "update").exists()  # the way back is no longer needed

        # a release that cannot start: two starts, then the previous release is back
        unit.stop()
        index.announce("0.3.0")
        starts_before = unit.starts
        unit.start()
        watcher.wait("0.2.0 says 0.3.0 is out", last_update(latest_version="0.3.0"))
        watcher.send("update/install", "install")
        back = watcher.wait(
            "the update is rolled back",
            last_update(
                installed_version="0.2.0",
                release_summary=lambda s: bool(s) and "rolled back" in s,
            ),
        )
        assert back["release_summary"].startswith(
            "The update to 0.3.0 was rolled back: 0.3.0 did not come online in 2 starts;"
            " 0.2.0 runs."
        )
        assert installed(venv) == "0.2.0"
        # started once, installed (exit 75), failed two starts, started as 0.2.0 again: the
        # update's own three starts stay within the unit's limit (5 in 2 minutes) with room for
        # two more before it
        assert unit.exits[-3:] == [75, 1, 1]
        assert unit.starts - starts_before == 4 <= unit.burst - 1

        # stopped while pip was changing the environment: the way back was kept, the trial
        # says `installing` (here 0.3.0 is wholly in place, as bad as half of it), and the
        # next start puts 0.2.0 back before anything of 0.3.0 runs
        unit.stop()
        keep = (
            "import pathlib, sys; from bridge.updates import keep_environment; "
            "keep_environment(pathlib.Path(sys.argv[1]))"
        )
        kept = unit.state / "update" / "previous"
        kept.mkdir(parents=True)
        python = str(venv / "bin" / "python")
        subprocess.run([python, "-c", keep, str(kept)], check=True, env=_quiet_env())
        (unit.state / "update" / "trial.json").write_text(
            json.dumps({"from": "0.2.0", "to": "0.3.0", "state": "installing", "starts": 0})
        )
        subprocess.run(
            [
                *(python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"),
                *("--find-links", str(releases), "legwave==0.3.0"),
            ],
            check=True,
            env=_quiet_env(),
        )
        exits_before = len(unit.exits)
        unit.start()
        cut = watcher.wait(
            "the cut-short install is undone",
            last_update(release_summary=lambda s: bool(s) and "cut short" in s),
        )
        assert cut["release_summary"].startswith(
            "The update to 0.3.0 was rolled back: the install of 0.3.0 was cut short; 0.2.0 runs."
        )
        assert installed(venv) == "0.2.0"
        assert unit.exits[exits_before:] == []  # 0.3.0 never started
    finally:
        unit.stop()
        unit.log.close()
        watcher.close()
        index.server.shutdown()
        index.server.server_close()
