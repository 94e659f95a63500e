"""systemd's notify protocol: READY, STOPPING, STATUS and the watchdog (``sd_notify(3)``).

The watchdog is fed from the control tick itself, not from a thread of its own: a wedged
control loop stops feeding it and systemd kills and restarts the agent (``WatchdogSec=``); the
GPIO lines are released on exit and the sleeves vent by their wiring.

Without ``$NOTIFY_SOCKET`` (not started by systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Talks to systemd over ``$NOTIFY_SOCKET``.

    Args:
        env: where ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` come from.
        clock: monotonic seconds, for spacing the watchdog messages.
    """

    def __init__(
        self,
        env: Mapping[str, str] = os.environ,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self._socket: socket.socket | None = None
        self._failed = False
        self.watchdog_interval_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        for_us = not pid or (pid.isdigit() and int(pid) == os.getpid())
        if self._address and usec.isdigit() and int(usec) > 0 and for_us:
            self.watchdog_interval_s = int(usec) / 2e6  # systemd's advice: half the timeout
        self._last_ping = -float("inf")
        self.pings = 0

    @property
    def enabled(self) -> bool:
        """True when systemd listens."""
        return self._address is not None

    def send(self, message: str) -> bool:
        """Send one notification; never blocks, never raises (a full queue drops it)."""
        if self._address is None:
            return False
        try:
            if self._socket is None:
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                self._socket = socket.socket(socket.AF_UNIX, kind)
                self._socket.setblocking(False)
            self._socket.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._failed:  # say it once: a stuck notify socket must not flood the log
                log.warning("cannot notify systemd (%s): %s", message.split("=")[0], exc)
                self._failed = True
            return False
        return True

    def ready(self, status: str) -> None:
        """The service is up: ``READY=1`` with a status line for ``systemctl status``."""
        self.send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """Update the status line."""
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        """The service is shutting down."""
        self.send("STOPPING=1")

    def watchdog(self, now: float | None = None) -> None:
        """Feed the watchdog, at most every half timeout; call it from the control tick."""
        if self.watchdog_interval_s is None:
            return
        now = self._clock() if now is None else now
        if now - self._last_ping >= self.watchdog_interval_s:
            self._last_ping = now
            if self.send("WATCHDOG=1"):
                self.pings += 1

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _address(value: str) -> str | None:
    """A filesystem path, or an abstract socket name given as ``@name``."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock addresses and the like: not for a Pi service


def under_service_manager(env: Mapping[str, str] = os.environ) -> bool:
    """Started by systemd as a service: it sets ``$INVOCATION_ID`` for each start of a unit.

    Only then does an exit with ``RESTART_EXIT`` start the agent again (``Restart=on-failure``).
    """
    return bool(env.get("INVOCATION_ID"))
