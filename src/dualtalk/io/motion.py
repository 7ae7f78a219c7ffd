"""FLAME motion: ``exp`` (T, 50) and ``pose`` (T, 6) = [global/neck rotation (3), jaw (3)], 25 fps.

Inside the model a frame is 56-d in the order [exp 50, jaw 3, global 3] ("model order"); the dataset
files keep ``pose`` = [global, jaw] (the 6-d FLAME pose, :attr:`Motion.flame_pose` in code). :class:`Motion`
converts between the two so that no other module has to know the orders (the orders themselves are
written down once, in :mod:`dualtalk.layout`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..layout import (
    EXP,
    FLAME_POSE_HEAD_ROT,
    FLAME_POSE_JAW,
    FPS,
    HEAD_ROT,
    JAW,
    MOTION_DIM,
    N_EXP,
    N_FLAME_POSE,
    NPZ_EXP,
    NPZ_POSE,
)
from .files import atomic_path


@dataclass
class Motion:
    exp: np.ndarray  # (T, 50)
    jaw: np.ndarray  # (T, 3) axis-angle
    global_rot: np.ndarray  # (T, 3) axis-angle (global / neck rotation: the head rotation)
    fps: int = FPS

    def __len__(self) -> int:
        return int(self.exp.shape[0])

    @property
    def flame_pose(self) -> np.ndarray:
        """(T, 6) the FLAME pose of the dataset files (their ``pose`` key): [global rotation, jaw]."""
        return np.concatenate([self.global_rot, self.jaw], axis=1)

    def to_model(self) -> np.ndarray:
        """(T, 56) in model order [exp, jaw, global], float32."""
        return np.concatenate([self.exp, self.jaw, self.global_rot], axis=1).astype(np.float32)

    @classmethod
    def from_model(cls, x: np.ndarray, fps: int = FPS) -> Motion:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != MOTION_DIM:
            raise ValueError(f"model-order motion must be (T, {MOTION_DIM}), got {x.shape}")
        return cls(exp=x[:, EXP].copy(), jaw=x[:, JAW].copy(), global_rot=x[:, HEAD_ROT].copy(), fps=fps)

    @classmethod
    def from_layout(cls, exp: np.ndarray, flame_pose: np.ndarray, fps: int = FPS) -> Motion:
        """From the dataset layout: ``exp`` (T, 50) and the 6-d FLAME pose (T, 6) = [global rotation, jaw]."""
        return cls(
            exp=np.asarray(exp, np.float32),
            jaw=np.asarray(flame_pose[:, FLAME_POSE_JAW], np.float32),
            global_rot=np.asarray(flame_pose[:, FLAME_POSE_HEAD_ROT], np.float32),
            fps=fps,
        )

    def fit_length(self, n: int) -> Motion:
        """Trim to ``n`` frames, or extend by repeating the last frame."""
        x = self.to_model()
        if len(x) >= n:
            x = x[:n]
        else:
            x = np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)], axis=0)
        return Motion.from_model(x, self.fps)


def _check_array(path, name: str, arr: np.ndarray, width: int) -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise InputError(path, f"'{name}' has non-numeric dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InputError(path, f"'{name}' must have shape (T, {width}), got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise InputError(path, f"'{name}' has no frames")
    if not np.isfinite(arr).all():
        raise InputError(path, f"'{name}' contains NaN or infinite values")
    return arr.astype(np.float32)


def load_motion(path: str | os.PathLike) -> Motion:
    """Read a motion ``.npz`` in the dataset layout; other keys (shape, tex, cam, light, ...) are ignored.

    Errors (one line naming the file): missing, not an npz, truncated, missing keys, wrong dims,
    NaN/inf, ``exp`` and ``pose`` of different lengths.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "motion file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, expected a motion .npz file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(path, "not an .npz archive (a single .npy array?)")
        with data:
            missing = [k for k in (NPZ_EXP, NPZ_POSE) if k not in data.files]
            if missing:
                raise InputError(path, f"missing key(s) {', '.join(missing)} (has: {', '.join(data.files) or 'none'})")
            exp = data[NPZ_EXP]
            flame_pose = data[NPZ_POSE]
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError) as exc:
        raise InputError(path, f"truncated or corrupt .npz file ({exc})") from None
    except ValueError as exc:
        raise InputError(path, f"not a readable .npz file ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    exp = _check_array(path, NPZ_EXP, exp, N_EXP)
    flame_pose = _check_array(path, NPZ_POSE, flame_pose, N_FLAME_POSE)
    if exp.shape[0] != flame_pose.shape[0]:
        raise InputError(path, f"'{NPZ_EXP}' has {exp.shape[0]} frames but '{NPZ_POSE}' has {flame_pose.shape[0]}")
    return Motion.from_layout(exp, flame_pose)


def save_motion(path: str | os.PathLike, motion: Motion) -> None:
    """Write ``exp`` (T, 50) and ``pose`` (T, 6) = [global, jaw] as float32 ``.npz`` (atomically)."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            # the keys are layout.NPZ_EXP and layout.NPZ_POSE
            np.savez(fh, exp=motion.exp.astype(np.float32), pose=motion.flame_pose.astype(np.float32))


def load_model_motion(path: str | os.PathLike) -> np.ndarray:
    """Read motion as (T, 56) model order from either a ``.npy`` (already model order) or a layout ``.npz``."""
    path = Path(path)
    if path.suffix == ".npz":
        return load_motion(path).to_model()
    if not path.exists():
        raise InputError(path, "motion file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise InputError(path, f"not a readable .npy file ({str(exc).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(path, "expected a single (T, 56) array")
    return _check_array(path, "array", arr, MOTION_DIM)


def save_model_motion(path: str | os.PathLike, x: np.ndarray) -> None:
    """Write (T, 56) model-order motion as ``.npy`` (atomically)."""
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(x, dtype=np.float32))
