"""Backends implement the HAL; each is imported only when chosen, so any machine imports this."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from device.backends.pi.config import PiConfig
    from device.backends.sim import FaultInjection
    from device.hal import Hardware
    from device.settings import DeviceSettings


class HardwareUnavailableError(RuntimeError):
    """A backend cannot run here (no Pi, library, board or calibration); the message says why."""


BackendName = Literal["sim", "gpiozero", "rpigpio", "plant"]
BACKENDS: tuple[BackendName, ...] = ("sim", "gpiozero", "rpigpio", "plant")
PI_BACKENDS: tuple[BackendName, ...] = ("gpiozero", "rpigpio")


class Backend(Protocol):
    """An opened appliance: its parts, and how to bring it up and put it away."""

    hardware: Hardware

    def start(self) -> None:
        """Make the parts ready (e.g. zero the pressure sensors, start sampler threads)."""

    def close(self) -> None:
        """Every part to its safe state, then release what was claimed."""


class Simulated:
    """The simulator as a backend; `sim` is the simulated appliance (its physics, its faults)."""

    def __init__(
        self,
        *,
        device: DeviceSettings,
        clock: Callable[[], float],
        faults: Iterable[FaultInjection] = (),
        seed: int = 0,
    ) -> None:
        from device.backends.sim import SimConfig, SimulatedMassager

        self.sim = SimulatedMassager(
            zones=len(device.zones),
            heaters=device.heaters,
            clock=clock,
            config=SimConfig(seed=seed),
            faults=faults,
        )
        self.hardware = self.sim.hardware

    def start(self) -> None:
        """Nothing to prepare: the simulator starts vented and at room temperature."""

    def close(self) -> None:
        """Safe state."""
        self.hardware.safe_state()


def open_backend(
    name: BackendName,
    *,
    device: DeviceSettings,
    clock: Callable[[], float],
    pi: PiConfig | None = None,
    plant_socket: Path | None = None,
    counts_per_mmhg: Sequence[float | None] | None = None,
    raw_counts: bool = False,
    faults: Iterable[FaultInjection] = (),
    seed: int = 0,
) -> Backend:
    """Open the backend called `name`; a Pi backend imports its GPIO library now.

    ``plant`` drives a simulated board in another process (`legwave plant`) through the Pi
    backends' parts and drivers, at `plant_socket`. `counts_per_mmhg`: HX710B channels'
    calibrated scales; `raw_counts`: they all read counts (for a calibration). `faults` and
    `seed`: the simulator's (``sim`` only).

    Raises:
        HardwareUnavailableError: the backend cannot run here; the
            message says what to install or change.
    """
    if name == "sim":
        return Simulated(device=device, clock=clock, faults=faults, seed=seed)
    from device.backends.pi import PiConfig, PiHardware, open_gpio

    if name == "plant":
        from device.backends.plant.client import PlantGpio, PlantI2c

        if plant_socket is None:
            raise ValueError("the plant backend needs the socket of a legwave plant")
        return PiHardware(
            config=pi or PiConfig(),
            device=device,
            gpio=PlantGpio(plant_socket),
            i2c=lambda bus: PlantI2c(plant_socket, bus),
            clock=clock,
            counts_per_mmhg=counts_per_mmhg,
            raw_counts=raw_counts,
        )
    gpio = open_gpio(name)
    return PiHardware(
        config=pi or PiConfig(),
        device=device,
        gpio=gpio,
        clock=clock,
        counts_per_mmhg=counts_per_mmhg,
        raw_counts=raw_counts,
    )
