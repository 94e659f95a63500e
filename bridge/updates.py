"""The newest legwave release (from a source the user names, never by default), and its install.

A source is the URL of a JSON document: a package index's JSON API (PyPI's
``https://pypi.org/pypi/legwave/json``, or a local index that speaks it) or a plain document
``{"version": "0.2.0", "release_url": "...", "release_summary": "..."}``. What comes back is
checked before it is believed: a version that is no version, or a document that is neither,
is an error that names the source and the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.update_guard import (
    INSTALLING,
    ONLINE,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    TRYING,
    read_trial,
    rollback,
    trial_dir,
    trial_path,
    write_trial,
)

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 10.0
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # PyPI's JSON for a project with a long history fits
VERSION = re.compile(r"^\d+(\.\d+){0,3}([._-]?(a|b|rc|post|dev)\d*)*$")
SUMMARY_CHARS = 255  # what Home Assistant's update entity shows of release notes


class UpdateSourceError(Exception):
    """The release source could not be read or understood; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Release:
    """The newest release a source announces."""

    version: str
    release_url: str | None = None
    summary: str | None = None


def parse_release(document: Any, *, source: str) -> Release:
    """The release in a source's JSON document (a package index's, or a plain one).

    Raises:
        UpdateSourceError: the document has no version, or one that is no version.
    """
    if not isinstance(document, dict):
        raise UpdateSourceError(f"{source}: not a JSON object")
    info = document.get("info")
    if isinstance(info, dict):  # a package index's JSON API
        version = info.get("version")
        urls = info.get("project_urls") or {}
        changelog = next(
            (v for k, v in urls.items() if k.lower() in ("changelog", "release notes")), None
        )
        release_url = changelog or info.get("release_url") or info.get("package_url")
        summary = info.get("summary")
    else:
        version = document.get("version")
        release_url = document.get("release_url")
        summary = document.get("release_summary")
    if not isinstance(version, str) or not VERSION.match(version.strip()):
        raise UpdateSourceError(f"{source}: version: {version!r} is not a version number")
    return Release(
        version=version.strip(),
        release_url=release_url if isinstance(release_url, str) else None,
        summary=summary[:SUMMARY_CHARS] if isinstance(summary, str) else None,
    )


def fetch_release(source: str, *, timeout: float = FETCH_TIMEOUT_S) -> Release:
    """Read the newest release from `source` (blocking: run it in a thread).

    Raises:
        UpdateSourceError: unreachable, an HTTP error, too large, not JSON, or no version.
    """
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in the settings
        source, headers={"Accept": "application/json", "User-Agent": "legwave"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            raw = reply.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise UpdateSourceError(f"{source}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UpdateSourceError(f"{source}: cannot be reached ({reason})") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise UpdateSourceError(f"{source}: more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise UpdateSourceError(f"{source}: not JSON ({exc})") from None
    return parse_release(document, source=source)


class UpdateInstallError(Exception):
    """An install that did not happen; the message says why (the environment is unchanged)."""


PIP_TIMEOUT_S = 900.0  # a Pi Zero on a slow link, building nothing
RESTART_EXIT = 75  # `legwave run` exits with it for the service manager to start the new release


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1]


def installed_from_checkout() -> bool:
    """True when legwave is an editable install (a checkout): git updates it, not pip."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        direct = distribution("legwave").read_text("direct_url.json")
    except PackageNotFoundError:
        return True  # a source tree that is not installed at all
    if not direct:
        return False
    try:
        return bool(json.loads(direct).get("dir_info", {}).get("editable", False))
    except (ValueError, AttributeError):
        return False


@dataclass(frozen=True, slots=True)
class Installer:
    """Installs a release into this interpreter's environment, and leaves a trial behind.

    The previous release's wheels are kept first (bridge/update_guard.py reinstalls them when
    the new one does not come online), then the new release is downloaded, then installed: a
    failure before the install leaves the environment as it was, and a failed install is undone
    from those wheels. legwave's release comes from `index_url` (pip's own index when unset);
    everything else from pip's own index, as it was installed.
    """

    state_dir: Path
    index_url: str | None = None
    python: str = field(default_factory=lambda: sys.executable)

    def refusal(self) -> str | None:
        """Why this environment cannot be updated in place, or None."""
        if installed_from_checkout():
            return "legwave runs from a checkout (an editable install): update it with git"
        purelib = Path(sysconfig.get_paths()["purelib"])
        if not os.access(purelib, os.W_OK):
            return (
                f"the agent cannot write to its environment ({purelib}): see docs/hardware.md, "
                "Updates (deploy/install.sh --updates)"
            )
        return None

    def _pip(self, *args: str, index: str | None = None) -> str:
        """Run pip; `index`: ``--index-url`` or ``--extra-index-url`` with the configured index."""
        command = [self.python, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]
        if index is not None and self.index_url is not None:
            command += [index, self.index_url]
        try:
            done = subprocess.run(  # noqa: S603 - our own pip, arguments we made
                command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise UpdateInstallError(f"pip {args[0]}: no answer in {PIP_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            raise UpdateInstallError(f"pip {args[0]}: {_last_line(done.stderr or done.stdout)}")
        return done.stdout

    def install(self, version: str, current: str, progress: Callable[[int], None]) -> None:
        """Install legwave `version` over `current`; leave the trial for the next start.

        `progress` hears the percentage done after each step (10, 40, 70, 90, 100).

        Raises:
            UpdateInstallError: a step failed; the environment is as it was.
        """
        folder = trial_dir(self.state_dir)
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "previous").mkdir(parents=True)
        progress(10)
        try:
            kept = keep_environment(folder / "previous")
        except OSError as exc:
            raise UpdateInstallError(
                f"{current} could not be kept for a way back ({exc}); nothing changed"
            ) from None
        log.info("kept %d distributions for a way back", kept)
        progress(40)
        try:
            self._pip(
                "download",
                *("--no-deps", "--dest", str(folder / "new"), f"legwave=={version}"),
                index="--index-url",  # the release from the configured index alone
            )
        except UpdateInstallError as exc:
            raise UpdateInstallError(f"{version} could not be downloaded ({exc})") from None
        progress(70)
        if not any((folder / "new").glob("legwave-*.whl")):
            raise UpdateInstallError(f"{version}: the index has no wheel of it; nothing changed")
        trial = {"from": current, "to": version, "starts": 0, "at": time.time()}
        # if the agent is stopped while pip runs, the guard puts the previous release back
        write_trial(self.state_dir, {**trial, "state": INSTALLING})
        try:
            # the release just downloaded (by name, so that pip records no path that is gone
            # tomorrow); what it needs beyond what is installed, from pip's own index
            self._pip("install", "--find-links", str(folder / "new"), f"legwave=={version}")
        except UpdateInstallError as exc:
            back = rollback(self.state_dir, python=self.python)
            trial_path(self.state_dir).unlink(missing_ok=True)
            undone = "undone" if back else "NOT undone: reinstall legwave by hand"
            raise UpdateInstallError(f"{version} did not install ({exc}); {undone}") from None
        progress(90)
        write_trial(self.state_dir, {**trial, "state": TRYING})
        progress(100)


KEEP_LEFT_OUT = frozenset({"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"})
"""Files of an installed dist-info that belong to the install, not to the wheel."""


def _wheel_tag(wheel_file: str | None) -> str:
    """The compressed tag (``py2.py3-none-any``) of an installed WHEEL file's ``Tag:`` lines."""
    tags = [
        line[len("Tag: ") :].strip().split("-")
        for line in (wheel_file or "").splitlines()
        if line.startswith("Tag: ")
    ]
    tags = [t for t in tags if len(t) == 3] or [["py3", "none", "any"]]
    return "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))


def keep_environment(dest: Path) -> int:
    """A wheel of every distribution installed in this environment, made from its own files.

    The way back must depend neither on an index still offering each version nor on the
    folder a release was installed from (a checkout the hardened service cannot even read):
    the installed files are packed again with a fresh RECORD; pip reinstalls them offline.
    pip itself and compiled bytecode are left out. Returns how many wheels were made.

    Raises:
        OSError: a file could not be read or the wheel written.
    """
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    count = 0
    for dist in metadata.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if not name or name.lower() == "pip" or dist.files is None:
            continue
        info = f"{dist.metadata['Name']}-{dist.version}.dist-info"
        info = next(
            (f.parts[0] for f in dist.files if f.parts and f.parts[0].endswith(".dist-info")),
            info,
        )
        path = dest / f"{info[: -len('.dist-info')]}-{_wheel_tag(dist.read_text('WHEEL'))}.whl"
        record: list[str] = []
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
            for file in dist.files:
                rel = file.as_posix()
                inside_info = rel.startswith(f"{info}/")
                if (
                    rel.startswith("..")
                    or rel.endswith(".pyc")
                    or (inside_info and rel.split("/", 1)[1] in KEEP_LEFT_OUT)
                ):
                    continue  # scripts (made again from entry points), bytecode, install notes
                data = (site / rel).read_bytes()
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                record.append(f"{rel},sha256={digest.decode()},{len(data)}")
                wheel.writestr(rel, data)
            record.append(f"{info}/RECORD,,")
            wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
        count += 1
    return count


def settle(state_dir: Path, running: str) -> str | None:
    """At start: what became of the last install (for the update entity), then forget it.

    Returns None when there was none. The new release confirms itself by calling this once it
    is online; the guard then lets its start succeed.
    """
    trial = read_trial(state_dir)
    if trial is None:
        return None
    state, old, new = trial["state"], trial.get("from"), trial.get("to")
    if state == TRYING and running == new:
        write_trial(state_dir, {**trial, "state": ONLINE})
        note = f"Updated from {old} to {new}."
    elif state == TRYING:
        note = f"The update to {new} did not take: {running} runs."
    elif state == ROLLED_BACK:
        note = f"The update to {new} was rolled back: {trial.get('reason')}; {running} runs."
    elif state == ROLLBACK_FAILED:
        note = f"The update to {new} failed and its rollback too: {running} runs."
    else:
        note = None
    shutil.rmtree(trial_dir(state_dir), ignore_errors=True)
    return note
