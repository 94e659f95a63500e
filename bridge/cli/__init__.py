"""The `legwave` command: one module per subcommand, the options they share in `options`.

Each subcommand module has `register(sub)`, which adds its parser and sets its handler, and
`run(args, settings)` (or `run(args)` for the two that need no configuration: `simulate` and
`config check`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.cli import health

if TYPE_CHECKING:
    from collections.abc import Sequence

SUBCOMMANDS = (
    "run",
    "doctor",
    "selftest",
    "calibrate",
    "plant",
    "ctl",
    "watch",
    "discovery",
    "remove",
    "dashboard",
    "registrar",
    "health",
    "config",
    "simulate",
)
"""The subcommands in the order `legwave --help` lists them; each is the module of that name."""


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    from device import __version__

    top = argparse.ArgumentParser(
        prog="legwave",
        description="Smart-home controller for air-compression leg massagers.",
    )
    top.add_argument("--version", action="version", version=f"legwave {__version__}")
    top.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("LEGWAVE_CONFIG"),
        metavar="FILE.yaml",
        help="configuration file (default: $LEGWAVE_CONFIG); LEGWAVE_… variables override it",
    )
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"bridge.cli.{name}").register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `legwave` console script."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away (`legwave discovery | head`): stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quick = health.quick(argv)  # the healthcheck, every 30 s: before anything else loads
    if quick is not None:
        return quick
    from bridge.cli.options import fail

    args = parser().parse_args(argv)
    import logging

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "settings_needed", True):
        code: int = args.handler(args)
        return code
    from bridge.config import ConfigError, load_settings

    overrides = {"backend": args.backend} if getattr(args, "backend", None) else {}
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigError as exc:
        return fail("the configuration has problems:\n  " + "\n  ".join(exc.problems))
    try:
        code = args.handler(args, settings)
    except ConfigError as exc:
        return fail("\n  ".join(exc.problems))
    return code


__all__ = ["main", "parser"]
