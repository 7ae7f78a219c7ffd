"""Motion curves of one or two people over time, with speaking bands from voice activity.

    from dualtalk.render import plot_motion
    plot_motion("B.npz", "curves.png", audio="B.wav", partner_motion="A.npz", partner_audio="A.wav")

Per person: jaw opening (rotation about x, degrees), head rotation (pitch / yaw / roll = the x / y / z
components of the global axis-angle, degrees) and the leading expression coefficients (``exp[i]``,
0-based as everywhere in dualtalk). Shaded bands mark where that person speaks (WebRTC voice activity on
their own audio); a top row shows both people's speech side by side, so turn-taking (role switching) is
visible at a glance.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError, require
from ..io.files import atomic_path
from ..io.vad import speech_segments, voice_activity
from ..layout import FPS, SAMPLE_RATE
from .video import as_audio, as_motion, check_conversation

COLORS = {"partner": "#d9822b", "self": "#2b6cb0"}


def plot_motion(
    motion,
    out,
    audio=None,
    partner_motion=None,
    partner_audio=None,
    names: dict | None = None,
    num_exp: int = 3,
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Draw the curves to ``out`` (.png, .pdf or .svg); returns the path."""
    require("matplotlib", "render")
    from matplotlib.figure import Figure

    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError(out, "the plot must be a .png, .pdf or .svg file")
    if partner_audio is not None and partner_motion is None:
        from ..errors import DualTalkError

        raise DualTalkError("--partner-audio needs --partner-motion")
    people = []
    if partner_motion is not None:
        people.append(("partner", as_motion(partner_motion), as_audio(partner_audio)))
    people.append(("self", as_motion(motion), as_audio(audio)))
    check_conversation(
        people[-1][1],
        [
            (people[0][1] if partner_motion is not None else None, partner_motion, "partner motion"),
            (people[-1][2], audio, "audio"),
            (people[0][2] if partner_motion is not None else None, partner_audio, "partner audio"),
        ],
    )
    two = len(people) == 2
    default = {"self": "B (generated)" if two else "B", "partner": "A (partner)"}
    names = {**default, **(names or {})}
    T = max(len(m) for _, m, _ in people)
    t = np.arange(T) / FPS
    speech = {
        role: (voice_activity(a, SAMPLE_RATE, fps=FPS, num_frames=T) if a is not None else None)
        for role, _, a in people
    }

    rows = [("timeline", None)] + [(kind, role) for role, _, _ in people for kind in ("jaw", "head", "exp")]
    heights = [0.55 if k == "timeline" else 1.0 for k, _ in rows]
    fig = Figure(figsize=(12, 1.0 + 1.45 * sum(heights)), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(rows), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    motions = {role: m for role, m, _ in people}

    for ax, (kind, role) in zip(axes, rows):
        ax.grid(True, alpha=0.25)
        if kind == "timeline":
            for y, (r, _, _) in enumerate(reversed(people)):
                mask = speech[r]
                if mask is not None:
                    for s, e in speech_segments(mask, FPS):
                        ax.axvspan(
                            s,
                            e,
                            ymin=(y + 0.15) / len(people),
                            ymax=(y + 0.85) / len(people),
                            color=COLORS[r],
                            alpha=0.85,
                            lw=0,
                        )
            ax.set_yticks((np.arange(len(people)) + 0.5) / len(people))
            ax.set_yticklabels([names[r] for r, _, _ in reversed(people)])
            ax.set_ylim(0, 1)
            ax.set_title(
                title
                or (
                    "who speaks (voice activity)"
                    if any(v is not None for v in speech.values())
                    else "who speaks: no audio given"
                ),
                loc="left",
                fontsize=10,
            )
            continue
        assert role is not None  # every row but the timeline belongs to a person
        m = motions[role]
        tm = t[: len(m)]
        own_speech = speech[role]
        if own_speech is not None:
            for s, e in speech_segments(own_speech, FPS):
                ax.axvspan(s, e, color=COLORS[role], alpha=0.12, lw=0)
        if kind == "jaw":
            ax.plot(tm, np.degrees(m.jaw[:, 0]), color=COLORS[role], lw=1.4)
            ax.set_ylabel("jaw open (\u00b0)")
            ax.set_title(
                f"{names[role]}" + ("  \u2014 shaded: speaking" if speech[role] is not None else ""),
                loc="left",
                fontsize=10,
                color=COLORS[role],
                fontweight="bold",
            )
        elif kind == "head":
            for c, (label, style) in enumerate([("pitch (x)", "-"), ("yaw (y)", "--"), ("roll (z)", ":")]):
                ax.plot(tm, np.degrees(m.global_rot[:, c]), style, color="0.2", lw=1.1, label=label)
            ax.set_ylabel("head rot. (\u00b0)")
            ax.legend(loc="upper right", fontsize=8, ncol=3, framealpha=0.7)
        else:
            n = min(num_exp, m.exp.shape[1])
            if n <= 10:
                for c in range(n):
                    ax.plot(tm, m.exp[:, c], lw=1.1, label=f"exp[{c}]")
                ax.legend(loc="upper right", fontsize=8, ncol=n, framealpha=0.7)
            else:  # too many for a legend in one row: shades of one colour map, named in a corner
                from matplotlib import colormaps

                shades = colormaps["viridis"](np.linspace(0.0, 0.9, n))
                for c in range(n):
                    ax.plot(tm, m.exp[:, c], lw=0.9, color=shades[c])
                ax.text(
                    0.995, 0.96, f"exp[0] (dark) to exp[{n - 1}] (light)", transform=ax.transAxes, ha="right",
                    va="top", fontsize=8, bbox=dict(facecolor="white", alpha=0.7, edgecolor="none"),
                )  # fmt: skip
            ax.set_ylabel("expression")
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, max(T - 1, 1) / FPS)
    fmt = out.suffix.lower().lstrip(".")
    with atomic_path(out) as tmp:
        fig.savefig(os.fspath(tmp), format=fmt)
    return out
