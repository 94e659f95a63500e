"""`legwave plant`: the simulated board, served on a Unix socket.

One JSON object per line. A client claims lines and sets their levels (no answer), reads input
lines and I2C registers (one answer each), or asks for the plant's `status` (the physics' truth:
pressures, temperatures, pump, valves). When a client's connection closes, every line it claimed
is released: the line is an input again and the wiring's pull-down holds it low.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from device.backends.pi.config import PiConfig
from device.backends.plant.model import Plant
from device.backends.sim import FaultInjection, SimConfig, SimulatedMassager
from device.settings import DeviceSettings

log = logging.getLogger(__name__)


class PlantServer:
    """The simulated appliance behind emulated lines and chips.

    Args:
        socket_path: where to listen.
        device: zones and heaters.
        config: the wiring the clients use.
        faults: hardware faults to inject, in seconds from the start.
        seed: sensor-noise seed.
    """

    def __init__(
        self,
        *,
        socket_path: Path,
        device: DeviceSettings,
        config: PiConfig,
        faults: list[FaultInjection] | None = None,
        seed: int = 0,
    ) -> None:
        self.socket_path = socket_path
        self.sim = SimulatedMassager(
            zones=len(device.zones),
            heaters=device.heaters,
            clock=time.monotonic,
            config=SimConfig(seed=seed),
            faults=faults or (),
        )
        self.levels: dict[int, float] = {}
        self.changed_at: dict[int, float] = {}  # monotonic time of each line's last change
        self.owner: dict[int, int] = {}  # line → the connection that claimed it
        self.plant = Plant(sim=self.sim, config=config, driven=self.driven)
        self.releases = 0
        self._next_client = 0

    def driven(self, pin: int) -> float:
        """What a line drives: its level while claimed, 0 when released (pull-down)."""
        return self.levels.get(pin, 0.0) if pin in self.owner else 0.0

    def status(self) -> dict[str, Any]:
        """The physics' truth, for tests and people."""
        p = self.sim.physics
        self.sim.sync()
        return {
            "pressure_mmhg": [round(z.pressure, 2) for z in p.zones],
            "heater_c": [round(pad.temperature, 2) for pad in p.pads],
            "pump": p.pump_duty,
            "inlet_open": [z.inlet_open for z in p.zones],
            "exhaust_open": [z.exhaust_open for z in p.zones],
            "heater_supply": p.heater_supply,
            "claimed": sorted(self.owner),
            "releases": self.releases,
            "changed_at": {str(pin): t for pin, t in self.changed_at.items()},
        }

    def _answer(self, client: int, request: dict[str, Any]) -> dict[str, Any] | None:
        op = request.get("op")
        if op == "claim":
            pin = int(request["pin"])
            holder = self.owner.get(pin)
            if holder is not None and holder != client:
                return {"error": f"GPIO{pin} is claimed by another client"}
            self.owner[pin] = client
            self.levels[pin] = 0.0
            self.plant.sync()
            return {"ok": True}
        if op == "set":
            pin = int(request["pin"])
            if self.owner.get(pin) == client:
                value = float(request["value"])
                if value != self.levels.get(pin):
                    self.changed_at[pin] = time.monotonic()
                self.levels[pin] = value
                self.plant.sync()
            return None
        if op == "get":
            return {"value": self._input(int(request["pin"]))}
        if op == "i2c_write":
            try:
                self.plant.bus.write_i2c_block_data(
                    int(request["addr"]), int(request["reg"]), list(request["data"])
                )
            except OSError as exc:
                return {"errno": exc.errno}
            return {"ok": True}
        if op == "i2c_read":
            try:
                data = self.plant.bus.read_i2c_block_data(
                    int(request["addr"]), int(request["reg"]), int(request["len"])
                )
            except OSError as exc:
                return {"errno": exc.errno}
            return {"data": data}
        if op == "status":
            return self.status()
        return {"error": f"unknown op {op!r}"}

    def _input(self, pin: int) -> int:
        chips = self.plant.hx710b
        p = self.plant.config.pressure
        dout = getattr(p, "dout", [])
        if chips is not None and pin in dout:
            return chips.level(dout.index(pin))
        return 0

    def _release(self, client: int) -> None:
        mine = [pin for pin, holder in self.owner.items() if holder == client]
        for pin in mine:
            del self.owner[pin]
            self.levels.pop(pin, None)
        if mine:
            self.releases += 1
            self.plant.sync()
            log.info("client %d gone: released GPIO %s", client, ", ".join(map(str, mine)))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._next_client += 1
        client = self._next_client
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    answer = self._answer(client, request)
                except (ValueError, KeyError, TypeError) as exc:
                    answer = {"error": f"bad request: {exc}"}
                if answer is not None:
                    writer.write(json.dumps(answer).encode() + b"\n")
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._release(client)  # the process on the other side is gone: so are its lines
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        os.chmod(self.socket_path, 0o660)
        log.info("simulated board on %s", self.socket_path)
        async with server:
            await stop.wait()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
