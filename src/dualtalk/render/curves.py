"""Learning curves: validation loss per group (exp, jaw, pose, velocity; an ARKit run's mouth, upper, pose,
velocity) against steps, one line per run.

    from dualtalk.render.curves import plot_learning_curves
    plot_learning_curves({"dualtalk_paper": "reports/x/runs/dualtalk_paper", "speaker_only": ...}, "curves.png")

Reads each run's ``metrics.csv`` (rows with ``split == val``); the best step of each run is marked. A curve
that is still falling at the last step says the run is under-trained; one that rises after a minimum says
it over-fits (``best/`` keeps the minimum). ``dualtalk train`` and ``dualtalk benchmark`` write this plot
beside their outputs.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import DualTalkError, require
from ..io.files import atomic_path

GROUPS = ("loss", "exp", "jaw", "pose", "velocity")


def _groups(header: list[str]) -> tuple[str, ...]:
    """The plotted columns of a metrics.csv: ``loss`` to ``velocity`` (the loss's parts of the run's layout)."""
    if "loss" in header and "velocity" in header and header.index("loss") < header.index("velocity"):
        return tuple(header[header.index("loss") : header.index("velocity") + 1])
    return GROUPS


def read_validation(run_dir: str | os.PathLike) -> dict[str, list[float]]:
    """``{"step": [...], "loss": [...], "exp": [...], ...}`` from a run's metrics.csv (empty lists if none)."""
    out: dict[str, list[float]] = {k: [] for k in ("step",) + GROUPS}
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return out
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        groups = _groups(list(reader.fieldnames or []))
        out = {k: [] for k in ("step",) + groups}
        for row in reader:
            if row.get("split") != "val":
                continue
            try:
                values = {k: float(row[k]) for k in ("step",) + groups}
            except (KeyError, TypeError, ValueError):
                continue
            for k, v in values.items():
                out[k].append(v)
    return out


def plot_learning_curves(
    runs: Mapping[str, str | os.PathLike], out: str | os.PathLike, title: str | None = None, dpi: int = 110
) -> Path | None:
    """One panel per group (total loss, exp, jaw, pose, velocity), one line per run; -> the path, or None
    when no run has a validation row yet (or matplotlib is not installed: ``pip install 'dualtalk[render]'``)."""
    try:
        require("matplotlib", "render")
    except DualTalkError:  # plotting is a convenience of training, never a reason for it to fail
        return None
    from matplotlib.figure import Figure

    curves = {name: read_validation(path) for name, path in runs.items()}
    curves = {name: c for name, c in curves.items() if c["step"]}
    if not curves:
        return None
    groups = [g for g in next(iter(curves.values())) if g != "step"]  # the first run's (runs of one layout)
    fig = Figure(figsize=(3.2 * len(groups), 3.2), dpi=dpi)
    axes = fig.subplots(1, len(groups))
    for ax, group in zip(axes, groups):
        for name, c in curves.items():
            if group not in c:
                continue
            (line,) = ax.plot(c["step"], c[group], label=name, lw=1.3, marker="." if len(c["step"]) < 30 else None)
            best = min(range(len(c["loss"])), key=c["loss"].__getitem__)  # the step best/ keeps
            ax.plot([c["step"][best]], [c[group][best]], marker="o", ms=5, mfc="none", color=line.get_color())
        ax.set_title("validation loss" if group == "loss" else f"val {group}", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png")
    return out
