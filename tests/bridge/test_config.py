"""Configuration: YAML + environment, every problem with its path, the persisted device id."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import ConfigError, load_settings, resolve_device_id
from bridge.outbox import Message, Outbox
from bridge.transport import backoff_delay
from device.store import write_atomic


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


def check(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("homeassistant:\n  prefix: 'home/#'\n", "homeassistant.prefix: "),
        ("homeassistant:\n  prefix: 'homeassistant/'\n", "homeassistant.prefix: "),
        ("homeassistant:\n  status_topic: 'homeassistant/+'\n", "homeassistant.status_topic: "),
        ("base_topic: 'legwave/#'\n", "base_topic: "),
    ],
)
def test_a_topic_with_a_wildcard_is_refused_by_config_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, where: str
) -> None:
    path = write(tmp_path, f"state_dir: {tmp_path / 'state'}\n{yaml_text}")
    for command in (["config", "check"], ["run"]):
        code, text = check(["--config", str(path), *command], capsys)
        assert code in (1, 2)
        assert where in text and "Traceback" not in text


def test_bad_json_in_an_environment_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEGWAVE_DEVICE__ZONES", "notjson")
    monkeypatch.setenv("LEGWAVE_DEVICE__CONTROL_HZ", "50")  # valid, and not named
    code, text = check(["config", "check"], capsys)
    assert code == 1
    assert "LEGWAVE_DEVICE__ZONES: not valid JSON" in text
    assert "CONTROL_HZ" not in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 2  # "1 problem(s):" and the problem


def test_a_config_file_that_is_not_utf8_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "legwave.yaml"
    path.write_bytes(b"mqtt:\n  host: caf\xe9.lan\n")
    code, text = check(["--config", str(path), "config", "check"], capsys)
    assert code == 1
    assert f"{path}: not UTF-8 text (byte 0xe9 at offset 17)" in text and "Traceback" not in text


def test_a_missing_tls_file_is_named_by_config_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, f"mqtt:\n  host: broker.lan\n  tls:\n    ca_file: {tmp_path}/ca.pem\n")
    code, text = check(["--config", str(path), "config", "check"], capsys)
    assert code == 1
    assert f"mqtt.tls.ca_file: {tmp_path}/ca.pem does not exist" in text


def test_an_invalid_device_id_file_is_kept_and_replaced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "device_id").write_bytes(b"Not An Id \xff\n")
    new = resolve_device_id(load_settings(None, state_dir=folder))
    assert (folder / "device_id").read_text().strip() == new
    kept = list(folder.glob("device_id.invalid-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"Not An Id \xff\n"
    assert "Home Assistant will see a new device" in caplog.text and kept[0].name in caplog.text


def test_the_command_line_tools_never_make_a_device_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGWAVE_STATE_DIR", str(tmp_path / "empty"))
    tools = (
        ["ctl", "stop"],
        ["watch", "--once"],
        ["health", "--broker"],
        ["remove"],
        ["discovery"],
    )
    for command in tools:
        code, text = check(command, capsys)
        assert code == 2, command
        assert "device_id: none set, and none kept in" in text
    assert not (tmp_path / "empty" / "device_id").exists()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("''", "homeassistant.name: String should have at least 1 character"),
        ("'!!'", "homeassistant.name: needs a letter or a digit"),
        ("'" + "x" * 65 + "'", "homeassistant.name: String should have at most 64 characters"),
    ],
)
def test_a_device_name_that_makes_no_entity_id_is_refused(
    tmp_path: Path, name: str, problem: str
) -> None:
    path = write(tmp_path, f"homeassistant:\n  name: {name}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert [p[: len(problem)] for p in err.value.problems] == [problem]


def test_a_device_name_is_kept_with_its_spaces_tidied(tmp_path: Path) -> None:
    path = write(tmp_path, "homeassistant:\n  name: '  Bedroom   massager '\n")
    assert load_settings(path).homeassistant.name == "Bedroom massager"
