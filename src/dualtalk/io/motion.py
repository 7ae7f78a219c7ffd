"""Motion files in two layouts (:mod:`dualtalk.layout`), 25 fps.

**FLAME** (:class:`Motion`): ``exp`` (T, 50) and ``pose`` (T, 6) = [global/neck rotation (3), jaw (3)].
Inside the model a frame is 56-d in the order [exp 50, jaw 3, global 3] ("model order"); the dataset
files keep ``pose`` = [global, jaw] (the 6-d FLAME pose, :attr:`Motion.flame_pose` in code). :class:`Motion`
converts between the two so that no other module has to know the orders (the orders themselves are
written down once, in :mod:`dualtalk.layout`).

**ARKit** (:class:`ArkitMotion`): ``arkit`` (T, 52) blendshape weights in [0, 1], columns in
:data:`~dualtalk.layout.ARKIT_NAMES` order (or in the order of an optional ``names`` key (52,) of strings,
reordered on reading), and ``head`` (T, 3), the head rotation as axis-angle in radians (FLAME's frame, the
same quantity as FLAME's global rotation). Model order: 55-d [arkit 52, head 3].

:func:`load_motion` reads FLAME motion (as it always did), :func:`load_any_motion` either layout (or the
one a model needs: a file of the other layout is one error line saying so); :func:`save_motion` writes
either.
"""

from __future__ import annotations

import difflib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DualTalkError, InputError
from ..layout import (
    ARKIT,
    ARKIT_DIM,
    ARKIT_HEAD_ROT,
    ARKIT_NAMES,
    ARKIT_WEIGHTS,
    EXP,
    FLAME,
    FLAME_POSE_HEAD_ROT,
    FLAME_POSE_JAW,
    FPS,
    HEAD_ROT,
    JAW,
    LAYOUTS,
    MOTION_DIM,
    N_ARKIT,
    N_EXP,
    N_FLAME_POSE,
    N_HEAD_ROT,
    NPZ_ARKIT,
    NPZ_EXP,
    NPZ_HEAD,
    NPZ_NAMES,
    NPZ_POSE,
    MotionLayout,
    get_layout,
)
from .files import atomic_path


@dataclass
class Motion:
    """FLAME motion (the ``flame`` layout)."""

    exp: np.ndarray  # (T, 50)
    jaw: np.ndarray  # (T, 3) axis-angle
    global_rot: np.ndarray  # (T, 3) axis-angle (global / neck rotation: the head rotation)
    fps: int = FPS
    layout: ClassVar[str] = "flame"

    def __len__(self) -> int:
        return int(self.exp.shape[0])

    @property
    def head_rot(self) -> np.ndarray:
        """(T, 3) the head rotation (the global rotation), as :attr:`ArkitMotion.head_rot`."""
        return self.global_rot

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
        return Motion.from_model(_fit(self.to_model(), n), self.fps)


@dataclass
class ArkitMotion:
    """ARKit motion (the ``arkit`` layout): 52 blendshape weights in [0, 1] and the head rotation."""

    weights: np.ndarray  # (T, 52) in ARKIT_NAMES order, in [0, 1]
    head_rot: np.ndarray  # (T, 3) axis-angle, radians
    fps: int = FPS
    layout: ClassVar[str] = "arkit"

    def __len__(self) -> int:
        return int(self.weights.shape[0])

    def to_model(self) -> np.ndarray:
        """(T, 55) in model order [arkit 52, head 3], float32."""
        return np.concatenate([self.weights, self.head_rot], axis=1).astype(np.float32)

    @classmethod
    def from_model(cls, x: np.ndarray, fps: int = FPS) -> ArkitMotion:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != ARKIT_DIM:
            raise ValueError(f"model-order ARKit motion must be (T, {ARKIT_DIM}), got {x.shape}")
        return cls(weights=x[:, ARKIT_WEIGHTS].copy(), head_rot=x[:, ARKIT_HEAD_ROT].copy(), fps=fps)

    def fit_length(self, n: int) -> ArkitMotion:
        """Trim to ``n`` frames, or extend by repeating the last frame."""
        return ArkitMotion.from_model(_fit(self.to_model(), n), self.fps)


#: motion of either layout
AnyMotion = Motion | ArkitMotion


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)], axis=0)


def motion_from_model(x: np.ndarray, layout: str | MotionLayout = "flame", fps: int = FPS) -> AnyMotion:
    """A (T, D) model-order array of ``layout`` -> :class:`Motion` (flame) or :class:`ArkitMotion` (arkit)."""
    if get_layout(layout).name == "arkit":
        return ArkitMotion.from_model(x, fps)
    return Motion.from_model(x, fps)


#: the largest magnitude a motion value may have: FLAME parameters and rotations (radians) are a few units,
#: ARKit weights at most 1; far larger finite values (1e30) are no face's, and a model reading them as the
#: partner's motion computes NaN
MAX_MOTION_MAGNITUDE = 1_000.0


def motion_values_problem(values: np.ndarray) -> str | None:
    """What is wrong with float32 motion values (NaN or infinite, or out of range), None if nothing: the one
    check of files, uploads and live messages."""
    if not np.isfinite(values).all():
        return "contains NaN or infinite values"
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak > MAX_MOTION_MAGNITUDE:
        return (
            f"holds values up to {peak:.3g}: motion parameters are a few units, "
            f"at most {MAX_MOTION_MAGNITUDE:,.0f} here"
        )
    return None


def _check_array(path, name: str, arr: np.ndarray, width: int) -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise InputError(path, f"'{name}' has non-numeric dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InputError(path, f"'{name}' must have shape (T, {width}), got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise InputError(path, f"'{name}' has no frames")
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32's range: inf, refused below
        x = arr.astype(np.float32)
    problem = motion_values_problem(x)
    if problem is not None:
        raise InputError(path, f"'{name}' {problem}")
    return x


def _check_weights(path, name: str, w: np.ndarray) -> None:
    lo, hi = float(w.min()), float(w.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(path, f"'{name}' holds ARKit weights, which must be in [0, 1]; got {lo:g} to {hi:g}")


def _mismatch(path, found: MotionLayout, expected: MotionLayout, who: str | None) -> InputError:
    return InputError(path, f"is {found.describe()}, but {who or 'this command'} uses {expected.describe()}")


def _npz_layout(keys: list[str]) -> MotionLayout | None:
    """The layout whose keys a motion ``.npz`` holds (``arkit`` wins; ``exp``/``pose`` alone: FLAME)."""
    if NPZ_ARKIT in keys or (NPZ_HEAD in keys and NPZ_EXP not in keys and NPZ_POSE not in keys):
        return ARKIT
    if NPZ_EXP in keys or NPZ_POSE in keys:
        return FLAME
    return None


def _read_npz(path: Path, layout: MotionLayout | None, who: str | None) -> tuple[MotionLayout, dict]:
    """The arrays of a motion ``.npz`` of ``layout`` (None: whichever it holds), every problem one line."""
    if not path.exists():
        raise InputError(path, "motion file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, expected a motion .npz file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(path, "not an .npz archive (a single .npy array?)")
        with data:
            found = _npz_layout(data.files)
            complete = layout is not None and all(k in data.files for k in layout.npz_keys)
            if layout is not None and not complete and found is not None and found is not layout:
                raise _mismatch(path, found, layout, who)  # a file with both layouts' keys serves either
            target = layout or found
            if target is None:
                raise InputError(
                    path,
                    f"no motion keys: expected {FLAME.describe()} or {ARKIT.describe()} "
                    f"(has: {', '.join(data.files) or 'none'})",
                )
            missing = [k for k in target.npz_keys if k not in data.files]
            if missing:
                raise InputError(path, f"missing key(s) {', '.join(missing)} (has: {', '.join(data.files) or 'none'})")
            keys = list(target.npz_keys) + ([NPZ_NAMES] if target is ARKIT and NPZ_NAMES in data.files else [])
            arrays = {k: _npz_array(path, data, k) for k in keys}
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError) as exc:
        raise InputError(path, f"truncated or corrupt .npz file ({exc})") from None
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy's word for "not a zip archive and not a .npy file either"
            raise InputError(path, "not a readable .npz file (not a zip archive of NumPy arrays)") from None
        raise InputError(path, f"not a readable .npz file ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    return target, arrays


def _npz_array(path: Path, data, key: str) -> np.ndarray:
    try:
        return data[key]
    except ValueError as exc:
        if "Object arrays" in str(exc):  # numpy refuses them without allow_pickle, and says so
            raise InputError(path, f"'{key}' holds Python objects (an object array), expected numbers") from None
        raise


def _flame_from_arrays(path, arrays: dict) -> Motion:
    exp = _check_array(path, NPZ_EXP, arrays[NPZ_EXP], N_EXP)
    flame_pose = _check_array(path, NPZ_POSE, arrays[NPZ_POSE], N_FLAME_POSE)
    if exp.shape[0] != flame_pose.shape[0]:
        raise InputError(path, f"'{NPZ_EXP}' has {exp.shape[0]} frames but '{NPZ_POSE}' has {flame_pose.shape[0]}")
    return Motion.from_layout(exp, flame_pose)


def _name_order(path, names: np.ndarray) -> np.ndarray:
    """Column ``j`` of a file whose ``names`` are given goes to ARKIT_NAMES position ``order[j]``."""
    if names.dtype.kind not in "US" or names.ndim != 1 or len(names) != N_ARKIT:
        raise InputError(path, f"'{NPZ_NAMES}' must be {N_ARKIT} strings (the ARKit names of the columns of 'arkit')")
    lower = {n.lower(): i for i, n in enumerate(ARKIT_NAMES)}
    order = []
    for raw in names.tolist():
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        i = lower.get(name.lower())
        if i is None:
            close = difflib.get_close_matches(name.lower(), list(lower), n=1)
            hint = f" (did you mean {ARKIT_NAMES[lower[close[0]]]}?)" if close else ""
            raise InputError(path, f"'{NPZ_NAMES}': unknown ARKit name {name!r}{hint}")
        if i in order:
            raise InputError(path, f"'{NPZ_NAMES}': ARKit name {ARKIT_NAMES[i]!r} is given twice")
        order.append(i)
    return np.asarray(order)


def _arkit_from_arrays(path, arrays: dict) -> ArkitMotion:
    weights = _check_array(path, NPZ_ARKIT, arrays[NPZ_ARKIT], N_ARKIT)
    head = _check_array(path, NPZ_HEAD, arrays[NPZ_HEAD], N_HEAD_ROT)
    if weights.shape[0] != head.shape[0]:
        raise InputError(path, f"'{NPZ_ARKIT}' has {weights.shape[0]} frames but '{NPZ_HEAD}' has {head.shape[0]}")
    if NPZ_NAMES in arrays:
        ordered = np.empty_like(weights)
        ordered[:, _name_order(path, arrays[NPZ_NAMES])] = weights
        weights = ordered
    _check_weights(path, NPZ_ARKIT, weights)
    return ArkitMotion(weights, head)


def load_motion(path: str | os.PathLike) -> Motion:
    """Read a FLAME motion ``.npz`` in the dataset layout; other keys (shape, tex, cam, light, ...) are ignored.

    Errors (one line naming the file): missing, not an npz, truncated, missing keys, wrong dims,
    NaN/inf, ``exp`` and ``pose`` of different lengths, ARKit motion where FLAME motion is needed.
    """
    path = Path(path)
    _, arrays = _read_npz(path, FLAME, None)
    return _flame_from_arrays(path, arrays)


def load_any_motion(
    path: str | os.PathLike, layout: str | MotionLayout | None = None, who: str | None = None
) -> AnyMotion:
    """Read a motion ``.npz`` of ``layout`` (``flame``, ``arkit``; None: whichever the file holds).

    A file of the other layout is one error line: ``is ARKit motion (...), but {who} uses FLAME motion
    (...)`` (``who``: e.g. "the model (motion_layout 'flame')"; default "this command").
    """
    path = Path(path)
    target, arrays = _read_npz(path, None if layout is None else get_layout(layout), who)
    return _arkit_from_arrays(path, arrays) if target is ARKIT else _flame_from_arrays(path, arrays)


#: the suffixes a motion file may have: a layout ``.npz`` or a model-order ``.npy`` array
MOTION_SUFFIXES = (".npz", ".npy")


def check_motion_suffix(path: str | os.PathLike) -> None:
    """A motion file to write is ``.npz`` or ``.npy`` (what the readers take): one :class:`InputError` otherwise."""
    if Path(path).suffix.lower() not in MOTION_SUFFIXES:
        raise InputError(path, "a motion file is .npz (the dataset layout) or .npy (a model-order array)")


def save_motion(path: str | os.PathLike, motion: AnyMotion) -> None:
    """Write float32 motion (atomically) as the suffix says: ``.npz``, FLAME ``exp`` (T, 50) and ``pose``
    (T, 6) = [global, jaw], or ARKit ``arkit`` (T, 52) and ``head`` (T, 3); ``.npy``, the (T, 56) / (T, 55)
    model-order array. Another suffix, or motion a reader would refuse (NaN), is an error."""
    if not isinstance(motion, (Motion, ArkitMotion)):
        raise DualTalkError(
            f"save_motion(path, motion): motion must be a Motion or ArkitMotion, got {type(motion).__name__}"
        )
    check_motion_suffix(path)
    problem = motion_values_problem(motion.to_model())
    if problem is not None:
        raise InputError(path, f"not written: the motion {problem}")
    if Path(path).suffix.lower() == ".npy":
        save_model_motion(path, motion.to_model())
        return
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            if isinstance(motion, ArkitMotion):  # the keys are layout.NPZ_ARKIT and layout.NPZ_HEAD
                np.savez(fh, arkit=motion.weights.astype(np.float32), head=motion.head_rot.astype(np.float32))
            else:  # the keys are layout.NPZ_EXP and layout.NPZ_POSE
                np.savez(fh, exp=motion.exp.astype(np.float32), pose=motion.flame_pose.astype(np.float32))


def motion_layout_of(path: str | os.PathLike) -> MotionLayout:
    """The layout of a motion file: a ``.npz`` by its keys, a ``.npy`` by its width (56 FLAME, 55 ARKit);
    the file is read (and checked) in full."""
    path = Path(path)
    if path.suffix == ".npz":
        return LAYOUTS[load_any_motion(path).layout]
    x = _load_npy(path)
    by_width = {lay.dim: lay for lay in LAYOUTS.values()}
    if x.ndim != 2 or x.shape[1] not in by_width:
        raise InputError(path, f"expected a (T, {MOTION_DIM}) FLAME or (T, {ARKIT_DIM}) ARKit model-order array")
    return by_width[x.shape[1]]


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise InputError(path, "motion file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        why = "not a NumPy array file" if "pickle" in str(exc) else str(exc).splitlines()[0]
        raise InputError(path, f"not a readable .npy file ({why})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(path, f"expected a single (T, {MOTION_DIM}) array")
    return arr


def load_model_motion(
    path: str | os.PathLike, layout: str | MotionLayout | None = "flame", who: str | None = None
) -> np.ndarray:
    """Read motion as a model-order array of ``layout`` ((T, 56) FLAME, (T, 55) ARKit; None: either) from a
    ``.npy`` (already model order) or a layout ``.npz``."""
    path = Path(path)
    lay = None if layout is None else get_layout(layout)
    if path.suffix == ".npz":
        return load_any_motion(path, lay, who).to_model()
    arr = _load_npy(path)
    by_width = {lay.dim: lay for lay in LAYOUTS.values()}
    if lay is None:
        if arr.ndim == 2 and arr.shape[1] in by_width:
            lay = by_width[arr.shape[1]]
        else:
            shape = tuple(arr.shape)
            raise InputError(path, f"'array' must have shape (T, {MOTION_DIM}) or (T, {ARKIT_DIM}), got {shape}")
    elif arr.ndim == 2 and arr.shape[1] != lay.dim and arr.shape[1] in by_width:
        other = by_width[arr.shape[1]]
        raise InputError(
            path, f"'array' must have shape (T, {lay.dim}), got {tuple(arr.shape)}: a (T, {other.dim}) array is "
            f"{other.name} model-order motion, but {who or 'this command'} uses the {lay.name} layout",
        )  # fmt: skip
    x = _check_array(path, "array", arr, lay.dim)
    if lay.bounded is not None:
        _check_weights(path, "array", x[:, lay.bounded])
    return x


def save_model_motion(path: str | os.PathLike, x: np.ndarray) -> None:
    """Write model-order motion ((T, 56) FLAME or (T, 55) ARKit) as ``.npy`` (atomically)."""
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(x, dtype=np.float32))
