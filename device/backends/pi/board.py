"""Which board this is, and the errors that tell a person what to install or change."""

from __future__ import annotations

from pathlib import Path

from device.backends import HardwareUnavailableError

MODEL_PATH = Path("/proc/device-tree/model")


def board_model(path: Path = MODEL_PATH) -> str | None:
    """The device tree's model string ("Raspberry Pi 5 Model B Rev 1.0"), None if unreadable."""
    try:
        return path.read_bytes().rstrip(b"\0\n").decode("ascii", "replace")
    except OSError:
        return None


def is_raspberry_pi(model: str | None) -> bool:
    """True for any Raspberry Pi model string."""
    return model is not None and model.startswith("Raspberry Pi")


def is_pi5_family(model: str | None) -> bool:
    """True for boards with the RP1 I/O chip (Pi 5, Pi 500, CM5), where RPi.GPIO cannot work."""
    if model is None:
        return False
    return any(
        model.startswith(f"Raspberry Pi {name}") for name in ("5", "500", "Compute Module 5")
    )


def require_pi(backend: str, model_path: Path = MODEL_PATH) -> str:
    """Return the board model, or raise `HardwareUnavailableError` when this is not a Pi."""
    model = board_model(model_path)
    if model is None or not is_raspberry_pi(model):
        seen = f"this machine reports {model!r}" if model else "this machine has no board model"
        raise HardwareUnavailableError(
            f"backend {backend!r} needs a Raspberry Pi, but {seen} ({model_path}); "
            "use --backend sim here"
        )
    return model
