"""`legwave health`'s channel: the running agent answers on a Unix socket in its state directory.

A container's healthcheck runs `legwave health` every 30 s for as long as the device lives, so
the asking side loads nothing but the standard library (and PyYAML with a configuration file):
no settings models, no MQTT client. The agent answers from its own event loop, so an answer also
says that the loop is not wedged.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Callable, Mapping

# (asyncio and logging load with the agent's side only: the asking side runs without them)

SOCKET_NAME = "health.sock"
"""The socket's name in the state directory."""

TICK_STALE_S = 2.0
"""An agent whose control loop has not ticked for this long is not healthy (it ticks at 10 Hz or
more, so this is twenty periods and more)."""


class HealthConfigError(Exception):
    """The configuration file cannot say where the state directory is."""


def default_state_dir() -> Path:
    """Where the device id, counters and history live by default."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "legwave"


def state_dir_of(config: Path | None, environ: Mapping[str, str]) -> Path:
    """The state directory the agent runs with, found as `bridge.config.load_settings` finds it.

    ``LEGWAVE_STATE_DIR`` (any case, as the settings read it), then the file's ``state_dir``,
    then the default.

    Raises:
        HealthConfigError: the file cannot be read or is not a mapping of settings.
    """
    for name, value in environ.items():
        if name.upper() == "LEGWAVE_STATE_DIR":
            return Path(value).expanduser()
    if config is not None:
        import yaml

        try:
            data = yaml.safe_load(config.read_bytes().decode())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise HealthConfigError(f"{config}: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise HealthConfigError(f"{config}: the top level must be a mapping of settings")
        if data and data.get("state_dir") is not None:
            return Path(str(data["state_dir"])).expanduser()
    return default_state_dir()


@contextlib.asynccontextmanager
async def answering(
    state_dir: Path, report: Callable[[], dict[str, Any]]
) -> AsyncIterator[Path | None]:
    """Answer every connection on the health socket with `report()` as one line of JSON.

    Yields the socket's path, or None when it cannot be made (the agent runs on without it;
    `legwave health --broker` still works).
    """
    import asyncio
    import logging

    path = state_dir / SOCKET_NAME

    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(report()).encode() + b"\n")
            await writer.drain()
        except OSError:
            pass  # the asker went away
        finally:
            writer.close()

    server: asyncio.AbstractServer | None = None
    try:
        # (a socket left by an agent that crashed is replaced: the state directory's lock
        # already says that no other agent runs here)
        server = await asyncio.start_unix_server(answer, path)
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "legwave health cannot ask this agent on %s: %s; legwave health --broker still can",
            path,
            exc.strerror or exc,
        )
    try:
        yield path if server is not None else None
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(OSError):
                path.unlink()


def ask(state_dir: Path, timeout: float) -> dict[str, Any]:
    """The running agent's answer.

    Raises:
        OSError: no agent answers on the state directory's socket within `timeout`.
        ValueError: the answer is not a JSON object.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(state_dir / SOCKET_NAME))
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError("not a JSON object")
    return answer
