"""Backends implement the HAL; each is imported only when chosen, so any machine imports this."""

from __future__ import annotations

BACKENDS = ("sim",)


class BackendUnavailableError(RuntimeError):
    """The chosen backend cannot run here (unknown name or missing library)."""


def check_backend(name: str) -> None:
    """Raise `BackendUnavailableError` unless `name` is a backend this version knows."""
    if name not in BACKENDS:
        raise BackendUnavailableError(
            f"backend: unknown backend {name!r}; available: {', '.join(BACKENDS)}"
        )
