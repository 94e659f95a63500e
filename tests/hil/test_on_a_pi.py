"""Hardware in the loop: the real backends, drivers and pneumatics on a Raspberry Pi.

Skipped on any machine that is not a Raspberry Pi, and on a Pi unless asked for, because it
moves air. To run it:

1. Wire the Pi as docs/hardware.md shows (or describe your wiring in a config file), with the
   sleeves on the table, closed (rolled up or around a cushion), never on a person.
2. Check the install first: ``legwave --config /etc/legwave/config.yaml doctor``.
3. Stop the service so it releases the lines: ``sudo systemctl stop legwave``.
4. From a checkout, in the venv that has ``legwave[pi,dev]``::

       LEGWAVE_HIL=1 LEGWAVE_CONFIG=/etc/legwave/config.yaml scripts/test -m hil tests/hil -v

   ``LEGWAVE_HIL_BACKEND=rpigpio`` tests the RPi.GPIO backend instead of gpiozero.

What it proves on the real thing: every line is claimed low; the sensors zero within limits
and deliver samples faster than the supervisor needs; a fit check inflates the first zone to
20 mmHg and the sleeves vent below 5 mmHg after `stop`; and a process killed with SIGKILL
while pumping leaves the lines to the pull-downs, so the sleeves vent by themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_settings
from device.backends.pi.board import board_model, is_raspberry_pi

pytestmark = [
    pytest.mark.hil,
    pytest.mark.skipif(
        not is_raspberry_pi(board_model()), reason="hardware-in-the-loop: needs a Raspberry Pi"
    ),
    pytest.mark.skipif(
        os.environ.get("LEGWAVE_HIL") != "1",
        reason="hardware-in-the-loop moves air: set LEGWAVE_HIL=1 (see the module docstring)",
    ),
]

BACKEND = os.environ.get("LEGWAVE_HIL_BACKEND", "gpiozero")


@pytest.fixture
def settings() -> Any:
    config = os.environ.get("LEGWAVE_CONFIG")
    return load_settings(Path(config) if config else None, backend=BACKEND)


@pytest.fixture
def pi(settings: Any) -> Iterator[Any]:
    from device.backends.pi import PiHardware, open_gpio

    hw = PiHardware(config=settings.pi, device=settings.device, gpio=open_gpio(settings.backend))
    try:
        hw.start()
        yield hw
    finally:
        hw.close()


def pressures(hw: Any) -> list[float]:
    return [s.value for s in hw.hardware.read().pressure]


def test_zero_offsets_and_sample_rate(pi: Any, settings: Any) -> None:
    limit = settings.pi.zero.max_offset_mmhg
    assert all(abs(o) <= limit for o in pi.zero_offsets), pi.zero_offsets
    assert max(abs(p) for p in pressures(pi)) < 5.0  # vented
    before = pi.pressure.readings
    time.sleep(2.0)
    per_s = (pi.pressure.readings - before) / 2.0
    needed = settings.device.control_hz / (settings.device.limits.sensor_stale_ticks - 2)
    assert per_s >= needed, f"{per_s:.0f} readings/s, the supervisor needs {needed:.0f}"
    assert pi.pressure.rejected <= 0.01 * max(pi.pressure.readings, 1) * pi.pressure.channels


def test_a_fit_check_inflates_and_stop_vents(pi: Any, settings: Any) -> None:
    import asyncio
    import uuid
    from datetime import UTC, datetime

    from device.control.massager import Action, Command, Massager, Status
    from device.runner import MonotonicClock, Runner
    from device.settings import SettingChanges

    massager = Massager(
        device=settings.device, wall=lambda t: datetime.now(UTC), new_id=lambda: str(uuid.uuid4())
    )
    running, vented = asyncio.Event(), asyncio.Event()

    def on_tick(now: float) -> None:
        if massager.status is Status.RUNNING:
            running.set()
        if running.is_set() and massager.status is Status.IDLE and max(pressures(pi)) < 5.0:
            vented.set()

    runner = Runner(
        massager=massager, hardware=pi.hardware, clock=MonotonicClock(), on_tick=on_tick
    )

    async def session() -> tuple[float, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop=stop))
        try:
            runner.submit(Command(action=Action.START, changes=SettingChanges(preset="first_use")))
            await asyncio.wait_for(running.wait(), 30)  # the fit check passed
            reached = max(pressures(pi))
            runner.submit(Command(action=Action.STOP))
            stopped_at = time.monotonic()
            await asyncio.wait_for(vented.wait(), 10)
            return reached, time.monotonic() - stopped_at
        finally:
            stop.set()
            await task

    reached, vent_s = asyncio.run(session())
    assert reached >= 15.0
    assert vent_s < 5.0


def test_a_killed_process_leaves_the_sleeves_to_vent(settings: Any) -> None:
    from device.backends.pi import PiHardware, open_gpio

    def open_pi() -> Any:
        return PiHardware(
            config=settings.pi, device=settings.device, gpio=open_gpio(settings.backend)
        )

    hw = open_pi()
    try:
        zero = hw.calibrate_zero()  # raw readings of the empty sleeves
    finally:
        hw.close()
    # A child claims the lines, runs the pump into zone 1 and is killed mid-inflation.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from bridge.config import load_settings\n"
            "from device.backends.pi import PiHardware, open_gpio\n"
            "from device.hal import Orders\n"
            f"s = load_settings(None, backend={BACKEND!r})\n"
            "hw = PiHardware(config=s.pi, device=s.device, gpio=open_gpio(s.backend))\n"
            "o = Orders(zones=len(s.device.zones), heaters=s.device.heaters, pump=1.0)\n"
            "o.inlet_open[0] = True; o.exhaust_open[0] = False\n"
            "hw.pressure.start()\n"
            "hw.hardware.apply(o)\n"
            "print('pumping', flush=True)\n"
            "time.sleep(3.0)\n"
            "print(hw.pressure.latest(0).value, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "pumping"
    inflated = float(child.stdout.readline()) - zero[0]
    assert inflated > 10.0  # it was really pumping when it died
    child.send_signal(signal.SIGKILL)  # no finally, no atexit: only the wiring is left
    child.wait()
    time.sleep(3.0)
    hw = open_pi()  # claims every line low again, reads without zeroing
    try:
        hw.pressure.start()
        assert hw.pressure.wait_for_samples(3.0) == []
        raw = [hw.pressure.latest(i).value for i in range(hw.pressure.channels)]
        assert max(r - z for r, z in zip(raw, zero, strict=True)) < 5.0, (raw, zero)
    finally:
        hw.close()
