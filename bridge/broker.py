"""A mosquitto broker run as a child process: `legwave run`'s embedded broker, and the tests'."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MAX_PACKET_BYTES = 64 * 1024
"""The embedded broker's largest packet, as in the compose stack's configuration."""


class BrokerUnavailableError(RuntimeError):
    """mosquitto is not installed or would not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """One mosquitto on 127.0.0.1:`port` with its own config and folder.

    Args:
        port: the port to listen on (a free one when 0).
        config: extra mosquitto.conf lines (users, ACL, TLS listeners…).
        folder: where config, log and persistence go (a new temporary folder when None).
        max_packet_bytes: the largest packet it takes or sends (0: no limit).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        config: str = "",
        folder: Path | None = None,
        max_packet_bytes: int = MAX_PACKET_BYTES,
    ) -> None:
        self.port = port or free_port()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="legwave-mosquitto-"))
        self.extra = config
        self.max_packet_bytes = max_packet_bytes
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        """The generated mosquitto.conf."""
        return self.folder / "mosquitto.conf"

    def start(self, timeout: float = 5.0) -> Mosquitto:
        """Start and wait until the port accepts connections."""
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
            None,
        )
        if binary is None:
            raise BrokerUnavailableError(
                "mosquitto is not installed: apt-get install mosquitto, or set mqtt.host"
            )
        if port_open(self.port):
            raise BrokerUnavailableError(f"port {self.port} on 127.0.0.1 is already in use")
        # Run as root, mosquitto drops to user 'mosquitto' unless told not to; it could then not
        # write into our folder.
        user = "user root\n" if os.geteuid() == 0 else ""
        extra = self.extra or "allow_anonymous true\n"
        if self.max_packet_bytes:
            extra += f"max_packet_size {self.max_packet_bytes}\n"
        self.conf_path.write_text(
            # set_tcp_nodelay: without it every small reply waits ~40 ms for a delayed ACK.
            f"{user}listener {self.port} 127.0.0.1\npersistence false\nset_tcp_nodelay true\n"
            f"log_dest file {self.folder / 'mosquitto.log'}\n{extra}"
        )
        self.proc = subprocess.Popen(  # noqa: S603 - our own binary and config
            [binary, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise BrokerUnavailableError(f"mosquitto exited: {err.strip() or self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailableError(
                    f"mosquitto did not listen on {self.port} in {timeout} s"
                )
            time.sleep(0.02)
        return self

    def log(self) -> str:
        """The broker's log so far."""
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without a goodbye (`start` brings it back)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Terminate and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
