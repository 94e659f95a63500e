"""The Home Assistant dashboard of one massager, for the name it has (`legwave dashboard`).

`bridge/dashboard.yaml` is the dashboard of a massager with the default name; every other
name gets the same view with its own entity ids (they follow the name: bridge/discovery.py).
`homeassistant/dashboards/legwave.yaml` is this for the default name
(`homeassistant.name`), and a test keeps it so.
"""

from __future__ import annotations

import re
from importlib import resources

from bridge.discovery import entity_slug

_IDS = re.compile(r"\b([a-z_]+)\.leg_massager(?=_|\b)")


def dashboard_yaml(name: str) -> str:
    """The dashboard view for a massager named `name`, as YAML text."""
    text = resources.files("bridge").joinpath("dashboard.yaml").read_text(encoding="utf-8")
    slug = entity_slug(name)
    text = _IDS.sub(lambda m: f"{m.group(1)}.{slug}", text)
    text = text.replace("leg-massager", slug.replace("_", "-"))  # the view's path
    return text.replace("Leg massager", name)
