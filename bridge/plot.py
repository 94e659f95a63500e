"""A picture of a simulated session: per-zone pressure and target, heater temperature, phases."""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device.simulate import SimulationReport

PHASE_COLOURS = {
    "fit_check": "#fde68a",
    "inflating": "#dbeafe",
    "holding": "#bfdbfe",
    "venting": "#fee2e2",
    "resting": "#f3f4f6",
    "paused": "#e5e7eb",
    "fault": "#fca5a5",
}


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def check_plotting() -> None:
    """Raise `PlotUnavailableError` with the fix when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailableError("--plot needs matplotlib: pip install 'legwave[plot]'")


def _spans(times: list[float], labels: list[str | None]) -> list[tuple[float, float, str]]:
    spans: list[tuple[float, float, str]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            label = labels[start]
            if label is not None:
                spans.append((times[start], times[i - 1], label))
            start = i
    return spans


def plot_session(report: SimulationReport, path: str) -> None:
    """Write a PNG of `report`'s trace to `path`."""
    # its first run builds a font cache and says so at INFO level, which `-v` would print
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trace = report.trace
    if trace is None or not trace.t:
        raise ValueError("the report has no trace: simulate with trace_every")
    minutes = [t / 60.0 for t in trace.t]
    labels: list[str | None] = [
        ph if st == "running" else (st if st in PHASE_COLOURS else None)
        for st, ph in zip(trace.status, trace.phase, strict=True)
    ]
    has_heat = report.max_heater_c is not None and report.settings.heat != "off"
    rows = len(report.zones) + (1 if has_heat else 0)
    fig, axes = plt.subplots(
        rows, 1, sharex=True, figsize=(12, 1.5 * rows + 1.2), constrained_layout=True
    )
    axes = list(axes) if rows > 1 else [axes]
    spans = _spans(minutes, labels)
    top = max(max(report.max_pressure_mmhg.values()), max(report.max_target_mmhg.values()), 20.0)
    colours = plt.get_cmap("viridis")
    for i, zone in enumerate(report.zones):
        ax: Any = axes[i]
        for a, b, label in spans:
            ax.axvspan(a, b, color=PHASE_COLOURS[label], linewidth=0)
        targets = [tg[i] if tg[i] is not None else float("nan") for tg in trace.target]
        ax.plot(minutes, [p[i] for p in trace.pressure], color=colours(i / max(rows, 2)), lw=1.0)
        ax.plot(minutes, targets, color="black", lw=0.8, ls="--")
        ax.set_ylim(0, top * 1.15)
        ax.set_ylabel(f"{zone}\nmmHg", fontsize=9)
        ax.grid(alpha=0.3)
    if has_heat:
        ax = axes[-1]
        for a, b, label in spans:
            ax.axvspan(a, b, color=PHASE_COLOURS[label], linewidth=0)
        ax.plot(minutes, trace.heater_c, color="#dc2626", lw=1.2)
        ax.axhline(43.0, color="#7f1d1d", lw=0.8, ls=":")
        ax.set_ylabel("heater\n°C", fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes")
    s = report.settings
    faults = ", ".join(f"{f['code']}@{f['at_s']:.0f}s" for f in report.faults) or "none"
    fig.suptitle(
        f"legwave · {s.preset or s.mode} · {s.mode}, level {s.intensity}, heat {s.heat} · "
        f"{report.end_reason} · faults: {faults}",
        fontsize=11,
    )
    handles: list[Any] = [
        matplotlib.patches.Patch(color=c, label=name)
        for name, c in PHASE_COLOURS.items()
        if any(label == name for _, _, label in spans)
    ]
    handles.append(matplotlib.lines.Line2D([], [], color="black", ls="--", label="target"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
