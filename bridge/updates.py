"""Which legwave release is the newest, from a release source the user names (never by default).

A source is the URL of a JSON document: a package index's JSON API (PyPI's
``https://pypi.org/pypi/legwave/json``, or a local index that speaks it) or a plain document
``{"version": "0.2.0", "release_url": "...", "release_summary": "..."}``. What comes back is
checked before it is believed: a version that is no version, or a document that is neither,
is an error that names the source and the reason.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

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
