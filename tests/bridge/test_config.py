"""Configuration: YAML + environment, every problem with its path, the persisted device id."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bridge.agent import backoff_delay
from bridge.cli import main
from bridge.config import ConfigError, load_settings, resolve_device_id, write_atomic
from bridge.outbox import Message, Outbox


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "legwave.yaml"
    path.write_text(text)
    return path


def test_yaml_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "mqtt:\n  host: broker.lan\n  port: 1884\ndevice:\n  limits:\n    max_setpoint_mmhg: 60\n",
    )
    monkeypatch.setenv("LEGWAVE_MQTT__PORT", "1999")
    s = load_settings(path)
    assert (s.mqtt.host, s.mqtt.port) == ("broker.lan", 1999)
    assert s.device.limits.max_setpoint_mmhg == 60


def test_every_problem_is_listed_with_its_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mqtt:\n  port: 70000\ndevice:\n  limits:\n    max_setpoint_mmhg: 100\n  zones: [a, a]\n"
        "colour: red\ndevice_id: 'Bad Id'\n",
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    text = "\n".join(err.value.problems)
    for expected in (
        "mqtt.port:",
        "device.limits.max_setpoint_mmhg: Input should be less than or equal to 80",
        "device.zones:",
        "colour: Extra inputs are not permitted",
        "device_id:",
    ):
        assert expected in text
    assert len(err.value.problems) == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [("mqtt: [\n", "not valid YAML"), ("- a\n- b\n", "must be a mapping"), ("", None)],
)
def test_broken_files(tmp_path: Path, text: str, message: str | None) -> None:
    path = write(tmp_path, text)
    if message is None:
        assert load_settings(path).mqtt.host is None  # an empty file is just defaults
        return
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")


def test_config_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "mqtt:\n  host: 127.0.0.1\n")
    assert main(["--config", str(good), "config", "check"]) == 0
    assert "configuration OK" in capsys.readouterr().out
    bad = write(tmp_path, "mqtt:\n  port: 0\n  keepalive_s: 1\n")
    assert main(["--config", str(bad), "config", "check"]) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "mqtt.port:" in err and "mqtt.keepalive_s:" in err


def test_device_id_is_generated_once_and_kept(tmp_path: Path) -> None:
    s = load_settings(None, state_dir=tmp_path / "state")
    first = resolve_device_id(s)
    assert first.startswith("legwave_") and resolve_device_id(s) == first
    assert (tmp_path / "state" / "device_id").read_text().strip() == first
    assert (
        resolve_device_id(load_settings(None, state_dir=tmp_path / "state", device_id="mine"))
        == "mine"
    )


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "x" / "file"
    write_atomic(target, "one")
    write_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["file"]


def test_backoff_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, cap=5.0, rng=rng) for n in range(30)]
    assert all(0.1 <= d <= 5.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 20
    assert max(backoff_delay(1, cap=60.0, rng=rng) for _ in range(200)) <= 1.0


def test_outbox_coalesces_state_and_bounds_the_queue() -> None:
    box = Outbox(limit=3)
    for i in range(5):
        box.put_latest(Message("s", str(i).encode(), retain=True, coalesce=True))
        box.put(Message("e", str(i).encode()))
    taken = box.take()
    assert [(m.topic, m.payload) for m in taken] == [
        ("e", b"2"),
        ("e", b"3"),
        ("e", b"4"),
        ("s", b"4"),
    ]
    assert box.dropped == 2 and len(box) == 0
    # a failed send goes back, unless a newer state is already waiting
    box.put_latest(Message("s", b"9", retain=True, coalesce=True))
    box.give_back(taken)
    assert [(m.topic, m.payload) for m in box.take()] == [
        ("e", b"2"),
        ("e", b"3"),
        ("e", b"4"),
        ("s", b"9"),
    ]
