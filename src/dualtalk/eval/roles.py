"""Who speaks when, and how smooth motion is around the changes of role.

Roles come from voice activity on each person's *own* audio (:func:`dualtalk.io.vad.voice_activity`:
WebRTC's GMM voice-activity detector on 20 ms frames, pauses < 0.3 s closed, blips < 0.2 s dropped): a
frame is *speaking* where the person's voice is active and *listening* elsewhere.

Transition smoothness (the paper names this as missing): around every change of the person's role
(speaking -> listening or back) we take a window of +-``window`` seconds and report, over the frames in
those windows,

- ``trans_vel_err_G``: mean L2 velocity error ||(p_t - p_{t-1}) - (g_t - g_{t-1})|| * fps (units/s);
- ``trans_jerk_G`` / ``trans_jerk_gt_G``: mean L2 jerk ||third difference|| * fps^3 of the prediction and
  of the ground truth (units/s^3), and ``trans_jerk_ratio_G`` = prediction / ground truth (1 = as smooth
  as real motion, > 1 = jerkier);
- ``transitions``: the number of role changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.audio import load_audio
from ..io.conversation import MAX_LENGTH_MISMATCH_FRAMES
from ..io.vad import voice_activity
from ..layout import FPS, SAMPLE_RATE
from .data import GROUPS

ROLES = ("speaking", "listening")
#: half-width of the window around a role change, in seconds
TRANSITION_WINDOW_S = 0.5


def role_mask(audio_path, num_frames: int, fps: int = FPS, motion_path=None) -> np.ndarray:
    """(num_frames,) bool: True where the person speaks. VAD on the whole clip, then cut / padded (silent), up
    to the tolerated few frames (an audio file of another length than its motion, ``motion_path``, is an error
    naming both: either may be the wrong one)."""
    wave = load_audio(audio_path)
    mask = voice_activity(wave, fps=fps)  # (T_audio,)
    if abs(len(mask) - num_frames) > MAX_LENGTH_MISMATCH_FRAMES:
        raise InputError(
            audio_path,
            f"audio is {len(wave) / SAMPLE_RATE:.2f} s ({len(mask)} frames) but its ground-truth motion"
            + (f" {Path(motion_path).name}" if motion_path is not None else "")
            + f" has {num_frames} frames (more than the tolerated {MAX_LENGTH_MISMATCH_FRAMES} frames apart)",
        )
    out = np.zeros(num_frames, dtype=bool)
    m = min(num_frames, len(mask))
    out[:m] = mask[:m]
    return out


def role_steps(frames: np.ndarray) -> np.ndarray:
    """(T-1,) bool: steps t-1 -> t with both frames in the selection (STS on a subset of frames)."""
    return frames[1:] & frames[:-1]


def transition_window(mask: np.ndarray, window: int) -> tuple[np.ndarray, int]:
    """Frames within ``window`` frames of a role change, and the number of changes."""
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1  # first frame of each new role
    near = np.zeros(len(mask), dtype=bool)
    if len(change):
        hit = np.zeros(len(mask) + 1, dtype=np.int32)
        np.add.at(hit, np.clip(change - window, 0, len(mask)), 1)  # window opens
        np.add.at(hit, np.clip(change + window, 0, len(mask)), -1)  # window closes
        near = np.cumsum(hit[:-1]) > 0  # (T,)
    return near, len(change)


def _velocity_error(pred: np.ndarray, gt: np.ndarray, fps: int) -> np.ndarray:
    """(T,) L2 velocity error per frame (NaN at frame 0)."""
    out = np.full(len(pred), np.nan)
    out[1:] = np.linalg.norm(np.diff(pred, axis=0) - np.diff(gt, axis=0), axis=1) * fps  # (T-1,)
    return out


def _jerk(x: np.ndarray, fps: int) -> np.ndarray:
    """(T,) L2 jerk per frame: third difference of frames t-2..t+1 assigned to frame t (NaN at the ends)."""
    out = np.full(len(x), np.nan)
    if len(x) >= 4:
        out[2:-1] = np.linalg.norm(np.diff(x.astype(np.float64), n=3, axis=0), axis=1) * float(fps) ** 3  # (T-3,)
    return out


def transition_frames(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray,
    fps: int = FPS,
    window_s: float = TRANSITION_WINDOW_S,
    groups: Mapping[str, slice | list[int]] = GROUPS,
) -> dict:
    """Per-frame quantities in the transition windows, for averaging per file or pooling over files.

    Returns ``{"transitions": n, "vel_err_G": (m,), "jerk_G": (m,), "jerk_gt_G": (m,)}`` for G in exp,
    jaw, pose, where the arrays hold the defined values on the m window frames.
    """
    near, n = transition_window(mask, int(round(window_s * fps)))
    out: dict = {"transitions": n}
    for g, cols in groups.items():
        p, t = pred[:, cols], gt[:, cols]
        for name, values in (
            ("vel_err", _velocity_error(p, t, fps)),
            ("jerk", _jerk(p, fps)),
            ("jerk_gt", _jerk(t, fps)),
        ):
            v = values[near]
            out[f"{name}_{g}"] = v[np.isfinite(v)]
    return out


def summarise_transitions(parts: list[dict], groups: Mapping[str, slice | list[int]] = GROUPS) -> dict:
    """Frame-weighted means over the window frames of one or more files (``groups``: the layout's)."""
    out: dict = {"transitions": int(sum(p["transitions"] for p in parts))}
    for g in groups:
        vals = {name: np.concatenate([p[f"{name}_{g}"] for p in parts]) for name in ("vel_err", "jerk", "jerk_gt")}
        has = {name: len(v) > 0 for name, v in vals.items()}
        out[f"trans_vel_err_{g}"] = float(np.mean(vals["vel_err"])) if has["vel_err"] else None
        jp = float(np.mean(vals["jerk"])) if has["jerk"] else None
        jg = float(np.mean(vals["jerk_gt"])) if has["jerk_gt"] else None
        out[f"trans_jerk_{g}"] = jp
        out[f"trans_jerk_gt_{g}"] = jg
        out[f"trans_jerk_ratio_{g}"] = jp / jg if jp is not None and jg else None
    return out


__all__ = [
    "ROLES",
    "TRANSITION_WINDOW_S",
    "role_mask",
    "role_steps",
    "summarise_transitions",
    "transition_frames",
    "transition_window",
]
