"""A TCP proxy between the agent and the broker that delays, blackholes or resets the link.

What toxiproxy does, in the test's own event loop: `pass` forwards, `delay` holds every chunk
for a while, `blackhole` keeps both sockets open and forwards nothing (a dead Wi-Fi link: only
keep-alives notice), `reset` aborts every open connection (a router reboot) and lets new ones in.
`hold_replies` holds only what the broker sends (acknowledgements among it) until released.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Literal

Mode = Literal["pass", "delay", "blackhole"]


class Proxy:
    """Listens on 127.0.0.1:`port` and forwards to 127.0.0.1:`upstream`."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.mode: Mode = "pass"
        self.delay_s = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._replies = asyncio.Event()  # the broker → client direction only
        self._replies.set()
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.reset()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def set(self, mode: Mode, delay_s: float = 0.0) -> None:
        """Change what happens to the bytes from now on."""
        self.mode = mode
        self.delay_s = delay_s
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()

    def hold_replies(self, held: bool) -> None:
        """Hold (or release) every byte from the broker to the client; the other way flows."""
        if held:
            self._replies.clear()
        else:
            self._replies.set()

    def reset(self) -> None:
        """Abort every open connection with a TCP reset."""
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    # SO_LINGER 0: close() sends RST, not FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, up_w}
        for reader, writer, gate in ((client_r, up_w, None), (up_r, client_w, self._replies)):
            task = asyncio.create_task(self._pipe(reader, writer, gate))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        gate: asyncio.Event | None,
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                await self._flowing.wait()  # a blackhole holds it: nothing passes, nothing closes
                if gate is not None:
                    await gate.wait()
                if self.mode == "delay" and self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                if writer.is_closing():
                    return
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)
