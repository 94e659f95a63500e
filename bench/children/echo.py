"""The baseline: a bare aiomqtt client that echoes `bench/echo/in` on `bench/echo/out`.

Run: python bench/children/echo.py PORT; prints "ready" once subscribed.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import aiomqtt

NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


async def main(port: int) -> None:
    """Echo until killed."""
    async with aiomqtt.Client("127.0.0.1", port, socket_options=NO_DELAY) as c:
        await c.subscribe("bench/echo/in", qos=1)
        print("ready", flush=True)
        async for m in c.messages:
            payload = m.payload if isinstance(m.payload, bytes) else b""
            await c.publish("bench/echo/out", payload, qos=1)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
