"""`legwave run`: the device (simulator or a Raspberry Pi) and its agent in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bridge.agent import Agent, DuplicateAgentError
from bridge.broker import BrokerUnavailableError, Mosquitto, port_open
from bridge.config import resolve_device_id
from bridge.health import answering
from bridge.systemd import Notifier
from bridge.transport import quiet_teardown
from device.backends import PI_BACKENDS, HardwareUnavailableError, open_backend
from device.calibration import Calibration, calibrated
from device.control.massager import Massager
from device.runner import MonotonicClock, Runner
from device.store import (
    CalibrationFileError,
    StateDirectoryInUseError,
    Store,
    claim,
    load_calibration,
    restore,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bridge.config import AgentSettings
    from device.backends import Backend

log = logging.getLogger(__name__)


def refuse_unscaled(backend: object, settings: AgentSettings) -> None:
    """An HX710B channel with no counts per mmHg reads counts: no pressure rule could hold.

    Raises:
        HardwareUnavailableError: naming the zones and the command that measures them.
    """
    unscaled = getattr(backend, "unscaled", [])
    if unscaled:
        zones = ", ".join(settings.device.zones[i] for i in unscaled)
        raise HardwareUnavailableError(
            f"the HX710B channels of {zones} have no counts per mmHg yet: measure them with "
            "legwave calibrate (a reference gauge on each zone), or set pi.pressure.counts_per_mmhg"
        )


def wiring_fingerprint(settings: AgentSettings, calibration: Calibration | None = None) -> str:
    """Names what a self-test was run on; it stays valid until this changes.

    The zones, the heaters, every line and sensor setting, and the pressure calibration.
    """
    wiring = {
        "backend": settings.backend,
        "zones": settings.device.zones,
        "heaters": settings.device.heaters,
        "pi": settings.pi.model_dump(mode="json") if settings.backend in PI_BACKENDS else None,
        "calibration": (calibration or Calibration()).fingerprint(),
    }
    return hashlib.sha256(json.dumps(wiring, sort_keys=True).encode()).hexdigest()[:16]


def build(
    settings: AgentSettings,
    *,
    host: str,
    port: int,
    backend: Backend | None = None,
    notifier: Notifier | None = None,
) -> Agent:
    """The device, its control loop and its agent, wired together.

    Args:
        settings: the configuration.
        host: broker host.
        port: broker port.
        backend: an opened backend (default: the simulator).
        notifier: systemd's watchdog, fed from every control tick.
    """
    clock = MonotonicClock()
    device = settings.device
    if backend is None:
        backend = open_backend("sim", device=device, clock=clock.now)
    t0 = clock.now()
    wall0 = datetime.now(UTC)
    massager = Massager(
        device=device,
        wall=lambda t: wall0 + timedelta(seconds=t - t0),
        new_id=lambda: str(uuid.uuid4()),
    )
    try:
        calibration = load_calibration(settings.state_dir)
    except CalibrationFileError as exc:
        log.error("%s; the pressure channels run uncalibrated", exc)
        calibration = Calibration()
    massager.wiring = wiring_fingerprint(settings, calibration)
    # On real hardware no session starts before every channel is calibrated and a self-test
    # has passed on this wiring and calibration.
    if settings.backend in PI_BACKENDS:
        massager.commissioning_required = True
        massager.uncalibrated = calibration.missing(list(device.zones))
    hardware = calibrated(backend.hardware, calibration.gains(list(device.zones)))
    store = Store(settings.state_dir)
    restore(massager, store.load(), now=t0)
    runner = Runner(massager=massager, hardware=hardware, clock=clock)
    agent = Agent(
        settings=settings,
        runner=runner,
        device_id=resolve_device_id(settings),
        host=host,
        port=port,
        store=store,
    )
    if notifier is None or notifier.watchdog_interval_s is None:
        runner.on_tick = agent.after_tick
    else:
        watchdog = notifier.watchdog

        def on_tick(now: float) -> None:
            agent.after_tick(now)
            watchdog(now)  # from the tick itself: a wedged loop stops feeding it

        runner.on_tick = on_tick
    return agent


@contextlib.asynccontextmanager
async def serving(settings: AgentSettings, *, host: str, port: int) -> AsyncIterator[Agent]:
    """The device (simulator) and its agent on a broker, running until the block ends.

    For tests and benchmarks that watch the agent from inside its process; `serve` is the
    whole program.
    """
    agent = build(settings, host=host, port=port)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(agent.runner.run(stop=stop)),
        asyncio.create_task(agent.run(stop)),
    ]
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        agent.close()


async def serve(settings: AgentSettings, *, stop: asyncio.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM or `stop`: control loop, agent, and a broker if none is set.

    Returns the exit status: 0, or `RESTART_EXIT` when a new release was installed and must
    be started in its place.

    Raises:
        StateDirectoryInUseError: another agent runs with this state directory.
        DuplicateAgentError: another agent already serves this device id on the broker.
        BrokerUnavailableError: no broker configured, and none could be started.
        HardwareUnavailableError: the backend cannot open its hardware.
    """
    lock = claim(settings.state_dir)
    try:
        return await _serve(settings, stop=stop)
    except* DuplicateAgentError as group:
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    finally:
        lock.close()


async def _serve(settings: AgentSettings, *, stop: asyncio.Event | None) -> int:
    broker: Mosquitto | None = None
    host, port = settings.mqtt.host, settings.mqtt.port
    if host is None:
        host = "127.0.0.1"
        if port_open(port):
            log.info("no broker configured (mqtt.host): using the one on 127.0.0.1:%d", port)
        else:
            broker = Mosquitto(port=port).start()
            log.info(
                "no broker configured (mqtt.host): started an embedded mosquitto on 127.0.0.1:%d",
                port,
            )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_teardown)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    notifier = Notifier()
    backend: Backend | None = None
    agent: Agent | None = None
    try:
        try:
            counts = load_calibration(settings.state_dir).counts(list(settings.device.zones))
        except CalibrationFileError:
            counts = None  # build() says why; an HX710B then stops below
        backend = open_backend(
            settings.backend,
            device=settings.device,
            clock=MonotonicClock().now,
            pi=settings.pi,
            plant_socket=settings.plant_path,
            counts_per_mmhg=counts,
        )
        refuse_unscaled(backend, settings)
        if settings.backend != "sim":
            log.info(
                "%s backend: zeroing the pressure sensors with the sleeves vented", settings.backend
            )
        await asyncio.to_thread(backend.start)
        agent = build(settings, host=host, port=port, backend=backend, notifier=notifier)
        info = agent.info
        log.info(
            "device %s (%s backend) on %s:%d, base topic %s",
            info.device_id,
            settings.backend,
            host,
            port,
            agent.topics.base,
        )
        # What start-up built lives as long as the process. Taken out of the collector's sight,
        # a full collection walks only what the running agent allocates: a pause of about 4 ms
        # here (over 100 ms projected on a Pi Zero 2 W: several control periods) becomes well
        # under 0.1 ms.
        gc.freeze()
        notifier.ready(f"device {info.device_id} on {host}:{port}")
        async with answering(settings.state_dir, agent.health), asyncio.TaskGroup() as tg:
            tg.create_task(agent.runner.run(stop=stop))
            tg.create_task(agent.run(stop))
        return agent.exit_code
    finally:
        notifier.stopping()
        if agent is not None:
            agent.close()  # the memory, written one last time
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
        if backend is not None:
            backend.close()  # every line to its safe state, then released
        if broker is not None:
            broker.stop()
        notifier.close()


__all__ = [
    "BrokerUnavailableError",
    "DuplicateAgentError",
    "HardwareUnavailableError",
    "StateDirectoryInUseError",
    "build",
    "serve",
    "serving",
]
