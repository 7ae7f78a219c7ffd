"""ARKit's 52 blendshapes from FLAME motion: a linear map with named rows, its fit, and the CSV/JSON files.

    from dualtalk.export.arkit import load_arkit_map, flame_to_arkit, write_arkit_csv
    amap = load_arkit_map("MAP.json")
    w = flame_to_arkit(motion, amap)             # (T, 52) in [0, 1], columns in ARKIT_NAMES order
    write_arkit_csv("B.csv", w, head_angles(motion.global_rot))

**The map.** For each ARKit name ``n``: ``weight_n(t) = clip(W[n] . x(t) + b[n], 0, 1)`` where ``x(t)`` is
the motion frame in *model order* (:mod:`dualtalk.layout`): 56 inputs ``[exp 50, jaw 3, global 3]``, named
:data:`MAP_INPUTS` (``exp00`` .. ``exp49``, ``jaw_x`` .. ``jaw_z``, ``global_x`` .. ``global_z``; jaw and
global are axis-angle in radians). A map file is JSON::

    {"format": "dualtalk.arkit_map", "version": 1,
     "inputs": ["exp00", ..., "global_z"],                      optional; if given, exactly MAP_INPUTS
     "rows": {"jawOpen": {"weights": [56 numbers], "bias": 0.0},   ARKit names, Apple's spelling
              ...},                                              a name left out stays 0
     "fit": {...}}                                               optional, written by fit_arkit_map

Names are matched without regard to case (``JawOpen`` as Live Link Face writes it is ``jawOpen``).

**The fit** (:func:`fit_arkit_map`, ``dualtalk fit-arkit-map``): from paired sequences of FLAME motion and
ARKit weights, per name a ridge regression whose L2 penalty is scaled by each input's variance (ridge on
standardised inputs), made *censored* so that it agrees with the clipping of the output: frames whose
target is 0 (or 1) and whose prediction is already below 0 (above 1) cost nothing, and the fit is repeated
until that set stops changing. Mirrored names (``...Left`` / ``...Right``, ``jawLeft`` / ``jawRight``,
``mouthLeft`` / ``mouthRight``) are fitted together with a penalty ``symmetry * |w_right - P^T w_left|^2``
tying each to the mirror image of the other: ``P`` mirrors a motion frame about the face's x = 0 plane
(axis-angle ``(a, b, c) -> (a, -b, -c)`` for jaw and global; for the 50 expression coefficients the
mirror is only known with the FLAME model, :func:`exp_mirror_matrix`, so without it the expression
weights of a pair are not tied). The last ``holdout`` fraction of every sequence is kept out of the fit
and the error on it is reported.

**The files.** :func:`write_arkit_csv` writes the Live Link Face CSV layout (:data:`LIVE_LINK_FACE_HEADER`);
:func:`write_arkit_json` a JSON with the channel list, fps and name -> per-frame weights. Head rotation goes
to ``HeadYaw``, ``HeadPitch``, ``HeadRoll`` (:func:`head_angles`); the eye columns are 0 (the motion has no
eye rotation).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DualTalkError, InputError
from ..io.files import atomic_write_text
from ..io.motion import ArkitMotion, Motion
from ..layout import ARKIT_NAMES, FPS, MOTION_DIM, N_ARKIT, N_EXP

# ARKIT_NAMES (the 52 names in Live Link Face's column order) and N_ARKIT live in dualtalk.layout
HEAD_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll")
EYE_COLUMNS = ("LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
#: The header Live Link Face (Epic Games' iOS app) writes in its take CSV: Timecode, BlendShapeCount (61 =
#: 52 blendshapes + 3 head + 6 eye rotations), the 52 names capitalised, then head and eye rotations.
#: Checked against public readers of those files, which spell it out in full, e.g. the Blender Live Link Face
#: add-on (``LIVE_LINK_FACE_HEADER`` in its ``livelinkface`` module) and polyvox_filament's
#: ``lib/animations/dynamic_animation.dart`` (``_loadLiveLinkFaceCSV``); Epic's Unreal ``EARFaceBlendShape``
#: enum lists the same names (in Apple's order, which differs for jaw/mouth Left/Right).
LIVE_LINK_FACE_HEADER: tuple[str, ...] = (
    "Timecode",
    "BlendShapeCount",
    *(n[0].upper() + n[1:] for n in ARKIT_NAMES),
    *HEAD_COLUMNS,
    *EYE_COLUMNS,
)
MAP_FORMAT = "dualtalk.arkit_map"
MAP_VERSION = 1
#: the 56 inputs of a map row, in model order [exp 50, jaw 3, global 3]
MAP_INPUTS: tuple[str, ...] = (
    *(f"exp{i:02d}" for i in range(N_EXP)),
    "jaw_x",
    "jaw_y",
    "jaw_z",
    "global_x",
    "global_y",
    "global_z",
)
_LOWER = {n.lower(): i for i, n in enumerate(ARKIT_NAMES)}


def mirror_name(name: str) -> str | None:
    """The mirrored ARKit name (``eyeBlinkLeft`` <-> ``eyeBlinkRight``), None for a name without one."""
    for a, b in (("Left", "Right"), ("Right", "Left")):
        if name.endswith(a):
            other = name[: -len(a)] + b
            return other if other in ARKIT_NAMES else None
    return None


def arkit_index(name: str, path=None) -> int:
    """Position of an ARKit name in :data:`ARKIT_NAMES` (case-insensitive); an unknown name is an error."""
    i = _LOWER.get(str(name).lower())
    if i is None:
        close = difflib.get_close_matches(str(name).lower(), list(_LOWER), n=1)
        hint = f" (did you mean {ARKIT_NAMES[_LOWER[close[0]]]}?)" if close else ""
        raise InputError(path, f"unknown ARKit name {name!r}{hint}")
    return i


# ----------------------------------------------------------------------------------------------------
# the map


@dataclass
class ArkitMap:
    """``weights`` (52, 56) over model-order motion inputs, ``bias`` (52,); rows in :data:`ARKIT_NAMES` order.
    ``defined`` (52,) bool marks the rows the map gives (the others are 0). ``fit``: the fit's report."""

    weights: np.ndarray
    bias: np.ndarray
    defined: np.ndarray
    fit: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def zeros(cls) -> ArkitMap:
        return cls(np.zeros((N_ARKIT, MOTION_DIM)), np.zeros(N_ARKIT), np.zeros(N_ARKIT, bool))

    def to_dict(self) -> dict[str, Any]:
        rows = {
            name: {"weights": [float(x) for x in self.weights[i]], "bias": float(self.bias[i])}
            for i, name in enumerate(ARKIT_NAMES)
            if self.defined[i]
        }
        out: dict[str, Any] = {"format": MAP_FORMAT, "version": MAP_VERSION, "inputs": list(MAP_INPUTS), "rows": rows}
        if self.fit:
            out["fit"] = self.fit
        return out

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")


def _number(path, where: str, x) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise InputError(path, f"{where} must be a finite number, got {x!r}")
    return float(x)


def arkit_map_from_dict(data: Any, path=None) -> ArkitMap:
    """Check a map's JSON content (see the module docstring) and build the :class:`ArkitMap`."""
    if not isinstance(data, dict):
        raise InputError(path, f"an ARKit map must be a JSON object, got {type(data).__name__}")
    if data.get("format", MAP_FORMAT) != MAP_FORMAT:
        raise InputError(path, f"not an ARKit map: 'format' is {data.get('format')!r}, expected {MAP_FORMAT!r}")
    if data.get("version", MAP_VERSION) != MAP_VERSION:
        raise InputError(path, f"ARKit map version {data.get('version')!r} is not supported (expected {MAP_VERSION})")
    if "inputs" in data and list(data["inputs"]) != list(MAP_INPUTS):
        raise InputError(
            path,
            f"'inputs' must be the {MOTION_DIM} model-order inputs exp00..exp49, jaw_x..jaw_z, global_x..global_z "
            f"in that order, got {len(data['inputs'])} names",
        )
    rows = data.get("rows")
    if not isinstance(rows, dict) or not rows:
        raise InputError(path, "an ARKit map needs 'rows': an object of ARKit name -> {weights, bias}")
    amap = ArkitMap.zeros()
    for name, row in rows.items():
        i = arkit_index(name, path)
        if amap.defined[i]:
            raise InputError(path, f"ARKit name {ARKIT_NAMES[i]!r} is given twice")
        if not isinstance(row, dict) or "weights" not in row:
            raise InputError(path, f"row {name!r} must be an object with 'weights' (and optionally 'bias')")
        unknown = sorted(set(row) - {"weights", "bias"})
        if unknown:
            raise InputError(path, f"row {name!r} has unknown key(s) {', '.join(unknown)}")
        w = row["weights"]
        if not isinstance(w, list) or len(w) != MOTION_DIM:
            got = len(w) if isinstance(w, list) else type(w).__name__
            raise InputError(
                path, f"row {name!r} has {got} weights, expected {MOTION_DIM} (model order: exp 50, jaw 3, global 3)"
            )
        amap.weights[i] = [_number(path, f"row {name!r} weight {k}", x) for k, x in enumerate(w)]
        amap.bias[i] = _number(path, f"row {name!r} bias", row.get("bias", 0.0))
        amap.defined[i] = True
    amap.fit = data.get("fit") or {}
    return amap


def load_arkit_map(path: str | os.PathLike) -> ArkitMap:
    """Read and check a map file; every problem is one :class:`~dualtalk.errors.InputError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "ARKit map file not found")

    def no_repeats(pairs: list[tuple[str, object]]) -> dict:  # json keeps the last of a repeated key silently
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputError(path, f"{key!r} is given twice")
            seen.add(key)
        return dict(pairs)

    try:  # utf-8-sig: a byte-order mark (editors on Windows write one) is not JSON, but no mistake either
        data = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=no_repeats)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable JSON file ({exc})") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    return arkit_map_from_dict(data, path)


def _model_frames(motion: Motion | np.ndarray) -> np.ndarray:
    x = motion.to_model() if isinstance(motion, Motion) else np.asarray(motion, np.float32)
    if x.ndim != 2 or x.shape[1] != MOTION_DIM:
        raise DualTalkError(f"motion must be a Motion or a (T, {MOTION_DIM}) model-order array, got {x.shape}")
    return x.astype(np.float64)


def flame_to_arkit(motion: Motion | np.ndarray, arkit_map: ArkitMap | str | os.PathLike) -> np.ndarray:
    """(T, 52) ARKit weights in [0, 1] (columns in :data:`ARKIT_NAMES` order) from a :class:`Motion` or a
    (T, 56) model-order array. Rows the map does not define are 0."""
    if isinstance(arkit_map, (str, os.PathLike)):  # a map file
        arkit_map = load_arkit_map(arkit_map)
    x = _model_frames(motion)
    y = x @ arkit_map.weights.T + arkit_map.bias  # (T, 52)
    y[:, ~arkit_map.defined] = 0.0
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def head_angles(global_rot: np.ndarray) -> np.ndarray:
    """(T, 3) head ``[yaw, pitch, roll]`` in radians from the axis-angle global rotation (T, 3).

    Intrinsic Y-X-Z Euler angles of FLAME's frame (y up, x to the subject's left, z out of the face, the
    frame ARKit's face anchor uses too): yaw about y (positive: the face turns to the subject's left),
    pitch about x (positive: the chin goes down), roll about z.
    """
    from scipy.spatial.transform import Rotation

    r = Rotation.from_rotvec(np.asarray(global_rot, np.float64).reshape(-1, 3))
    return r.as_euler("YXZ").astype(np.float32)  # (T, 3) yaw, pitch, roll


def head_rotvec(angles: np.ndarray) -> np.ndarray:
    """(T, 3) axis-angle head rotation (radians, FLAME's frame: an ARKit motion file's ``head``) from (T, 3)
    ``[yaw, pitch, roll]`` in radians (Live Link Face's HeadYaw, HeadPitch, HeadRoll); inverse of
    :func:`head_angles`."""
    from scipy.spatial.transform import Rotation

    r = Rotation.from_euler("YXZ", np.asarray(angles, np.float64).reshape(-1, 3))
    return r.as_rotvec().astype(np.float32)


#: the named channels of ARKit output frames (the service's ``"output": "arkit"``, ``dualtalk stream --format
#: arkit-*``): the 52 weights in [0, 1], then the head's yaw, pitch, roll in radians (:func:`head_angles`)
ARKIT_CHANNELS: tuple[str, ...] = (*ARKIT_NAMES, *HEAD_COLUMNS)


def arkit_channels(frames: np.ndarray, layout: str = "flame", arkit_map: ArkitMap | None = None) -> np.ndarray:
    """(n, 55) frames in :data:`ARKIT_CHANNELS` order from (n, D) model-order frames of ``layout``: ARKit
    motion's weights as they are (clipped to [0, 1]), FLAME motion's through ``arkit_map`` (required); the
    head rotation as yaw, pitch, roll."""
    x = np.asarray(frames, np.float32)
    if not len(x):
        return np.zeros((0, len(ARKIT_CHANNELS)), np.float32)
    if layout == "arkit":
        weights, rot = np.clip(x[:, :N_ARKIT], 0.0, 1.0), x[:, N_ARKIT : N_ARKIT + 3]
    else:
        if arkit_map is None:
            raise DualTalkError("ARKit output of FLAME motion needs an ARKit map (--arkit-map MAP.json)")
        weights, rot = flame_to_arkit(x, arkit_map), x[:, MOTION_DIM - 3 :]
    return np.concatenate([weights, head_angles(rot)], axis=1).astype(np.float32)


def write_arkit_channels(path, frames: np.ndarray, fps: int = FPS, format: str = "arkit-csv") -> Path:
    """Write (T, 55) :data:`ARKIT_CHANNELS` frames as the Live Link Face CSV or the JSON (atomically)."""
    frames = np.asarray(frames, np.float32).reshape(-1, len(ARKIT_CHANNELS))
    write = write_arkit_csv if format == "arkit-csv" else write_arkit_json
    return write(path, frames[:, :N_ARKIT], frames[:, N_ARKIT:], fps)


# ----------------------------------------------------------------------------------------------------
# files


def _timecode(frame: int, fps: int) -> str:
    """Live Link Face's ``HH:MM:SS:FF.mmm`` (frames counted at ``fps``, here the motion's 25)."""
    s, f = divmod(frame, fps)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{f:02d}.000"


def arkit_csv_text(weights: np.ndarray, head: np.ndarray | None = None, fps: int = FPS) -> str:
    """The Live Link Face CSV of (T, 52) weights and (T, 3) head yaw/pitch/roll (radians; None: zeros)."""
    weights = np.asarray(weights, np.float64)
    T = len(weights)
    head = np.zeros((T, 3)) if head is None else np.asarray(head, np.float64)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LIVE_LINK_FACE_HEADER)
    count = N_ARKIT + len(HEAD_COLUMNS) + len(EYE_COLUMNS)  # 61, as Live Link Face writes
    for t in range(T):
        values = [*weights[t], *head[t], *([0.0] * len(EYE_COLUMNS))]
        w.writerow([_timecode(t, fps), count, *(f"{v:.6f}" for v in values)])
    return buf.getvalue()


def write_arkit_csv(path, weights: np.ndarray, head: np.ndarray | None = None, fps: int = FPS) -> Path:
    """Write :func:`arkit_csv_text` atomically."""
    atomic_write_text(path, arkit_csv_text(weights, head, fps))
    return Path(path)


def arkit_json_dict(weights: np.ndarray, head: np.ndarray | None = None, fps: int = FPS) -> dict[str, Any]:
    """``{"format", "version", "fps", "frames", "channels": [52 names], "weights": {name: [T]}, "head": ...}``."""
    weights = np.asarray(weights, np.float64)
    out: dict[str, Any] = {
        "format": "dualtalk.arkit",
        "version": 1,
        "fps": fps,
        "frames": len(weights),
        "channels": list(ARKIT_NAMES),
        "weights": {n: [round(float(v), 6) for v in weights[:, i]] for i, n in enumerate(ARKIT_NAMES)},
    }
    if head is not None:
        head = np.asarray(head, np.float64)
        out["head"] = {
            "channels": list(HEAD_COLUMNS),
            "units": "radians",
            "values": {n: [round(float(v), 6) for v in head[:, i]] for i, n in enumerate(HEAD_COLUMNS)},
        }
    return out


def write_arkit_json(path, weights: np.ndarray, head: np.ndarray | None = None, fps: int = FPS) -> Path:
    atomic_write_text(path, json.dumps(arkit_json_dict(weights, head, fps)) + "\n")
    return Path(path)


def load_arkit(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Read ARKit weights from a Live Link Face CSV or our JSON: ``(weights (T, 52), present (52,) bool, fps)``.

    Columns are matched by name (case-insensitive); other columns (timecode, head, eyes) are ignored;
    ``present`` marks the names the file has (the others are 0). ``fps`` is None for a CSV (its rows are
    taken as consecutive frames).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "ARKit file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read file ({exc})") from None
    present = np.zeros(N_ARKIT, bool)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not a readable JSON file ({exc})") from None
        series = data.get("weights") if isinstance(data, dict) else None
        if not isinstance(series, dict) or not series:
            raise InputError(path, "an ARKit JSON needs 'weights': an object of ARKit name -> per-frame weights")
        lengths = {len(v) if isinstance(v, list) else -1 for v in series.values()}
        if len(lengths) != 1 or -1 in lengths or 0 in lengths:
            raise InputError(path, "every ARKit channel in 'weights' must be a list of the same, non-zero length")
        T = lengths.pop()
        weights = np.zeros((T, N_ARKIT))
        for name, values in series.items():
            i = arkit_index(name, path)
            weights[:, i] = [_number(path, f"{name!r} frame {t}", v) for t, v in enumerate(values)]
            present[i] = True
        fps = data.get("fps")
        return weights, present, int(fps) if isinstance(fps, (int, float)) else None
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise InputError(path, "not an ARKit CSV: expected a header line and at least one frame")
    header = [h.strip() for h in rows[0]]
    columns: dict[int, int] = {}  # ARKit index -> CSV column
    other = {n.lower() for n in LIVE_LINK_FACE_HEADER if n.lower() not in _LOWER}  # timecode, head, eyes
    for c, h in enumerate(header):
        k = _LOWER.get(h.lower())
        if k is not None:
            if k in columns:
                raise InputError(path, f"column {h!r} is given twice (columns {columns[k] + 1} and {c + 1})")
            columns[k] = c
        elif h.lower() not in other and difflib.get_close_matches(h.lower(), list(_LOWER), n=1, cutoff=0.85):
            arkit_index(h, path)  # a misspelt blendshape would be left out silently: the error names the name
    if not columns:
        raise InputError(path, "not an ARKit CSV: no ARKit blendshape names in the header (e.g. JawOpen)")
    weights = np.zeros((len(rows) - 1, N_ARKIT))
    for r, row in enumerate(rows[1:]):
        for i, c in columns.items():
            try:
                v = float(row[c])
            except (IndexError, ValueError):
                raise InputError(path, f"line {r + 2}: column {header[c]!r} is not a number") from None
            if not math.isfinite(v):
                raise InputError(path, f"line {r + 2}: column {header[c]!r} is not finite")
            weights[r, i] = v
    present[list(columns)] = True
    return weights, present, None


# ----------------------------------------------------------------------------------------------------
# fitting a map


def exp_mirror_matrix(model) -> tuple[np.ndarray, float]:
    """(50, 50) ``M`` with ``expdirs @ (M e) ~ mirror(expdirs @ e)`` (mirror: x -> -x about the face's
    middle, vertices paired with their mirror image by nearest neighbour), and the relative residual of
    that least-squares fit (near 0 for a symmetric model like FLAME's)."""
    from scipy.spatial import cKDTree

    used = np.unique(model.faces)
    v = model.v_template[used].astype(np.float64)
    pair = cKDTree(v).query(v * [-1.0, 1.0, 1.0])[1]  # (U,) index of each vertex's mirror image
    E = model.expdirs[used][:, :, :N_EXP].astype(np.float64)  # (U, 3, 50)
    mirrored = E[pair] * np.array([-1.0, 1.0, 1.0])[None, :, None]
    A, B = E.reshape(-1, N_EXP), mirrored.reshape(-1, N_EXP)
    M = np.linalg.lstsq(A, B, rcond=None)[0]  # (50, 50): A M ~ B
    residual = float(np.linalg.norm(A @ M - B) / max(np.linalg.norm(B), 1e-12))
    return M, residual


def mirror_operator(exp_mirror: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``P`` (56, 56) mirroring a model-order frame about the face's x = 0 plane, and ``known`` (56,) bool:
    the inputs whose mirror is known (jaw and global always; the expression only with ``exp_mirror``)."""
    P = np.zeros((MOTION_DIM, MOTION_DIM))
    known = np.zeros(MOTION_DIM, bool)
    for start in (N_EXP, N_EXP + 3):  # axis-angle (a, b, c) -> (a, -b, -c)
        P[start : start + 3, start : start + 3] = np.diag([1.0, -1.0, -1.0])
        known[start : start + 3] = True
    if exp_mirror is not None:
        P[:N_EXP, :N_EXP] = exp_mirror
        known[:N_EXP] = True
    return P, known


def _solve(
    Xs: list[np.ndarray],
    ys: list[np.ndarray],
    var: np.ndarray,
    l2: float,
    tie: tuple[np.ndarray, np.ndarray] | None,
    mu: float,
    iters: int,
) -> list[np.ndarray]:
    """Censored ridge for one name (one X, y) or a mirrored pair (two, tied). Returns [w (57,)] per name
    (weights then bias)."""
    D = MOTION_DIM + 1
    k = len(Xs)
    Xb = [np.concatenate([X, np.ones((len(X), 1))], 1) for X in Xs]  # (n, 57)
    n = [max(len(X), 1) for X in Xs]
    reg = np.concatenate([l2 * var, [0.0]])  # the bias is not penalised
    H0 = np.zeros((k * D, k * D))
    for j in range(k):
        H0[j * D : (j + 1) * D, j * D : (j + 1) * D] += np.diag(reg)
    if tie is not None and k == 2:  # mu * sum_known var_i (w_R - P^T w_L)_i^2 + mu (b_R - b_L)^2
        P, known = tie
        C = np.zeros((int(known.sum()) + 1, 2 * D))
        s = np.sqrt(var[known])
        C[:-1, :MOTION_DIM] = -(P.T[known]) * s[:, None]
        C[:-1, D : D + MOTION_DIM] = np.eye(MOTION_DIM)[known] * s[:, None]
        C[-1, MOTION_DIM], C[-1, D + MOTION_DIM] = -1.0, 1.0
        H0 += mu * C.T @ C
    active = [np.ones(len(X), bool) for X in Xs]
    z = np.zeros(k * D)
    for _ in range(max(1, iters)):
        H, g = H0.copy(), np.zeros(k * D)
        for j in range(k):
            A, y = Xb[j][active[j]], ys[j][active[j]]
            H[j * D : (j + 1) * D, j * D : (j + 1) * D] += A.T @ A / n[j]
            g[j * D : (j + 1) * D] = A.T @ y / n[j]
        z = np.linalg.solve(H + 1e-12 * np.eye(k * D), g)
        new = []
        for j in range(k):
            pred = Xb[j] @ z[j * D : (j + 1) * D]
            y = ys[j]
            new.append(~(((y <= 0) & (pred <= 0)) | ((y >= 1) & (pred >= 1))))
        if all((a == b).all() for a, b in zip(active, new)):
            break
        active = new
    return [z[j * D : (j + 1) * D] for j in range(k)]


def fit_arkit_map(
    motions: Sequence[Motion | np.ndarray],
    arkit: Sequence[np.ndarray],
    present: np.ndarray | None = None,
    l2: float = 1e-3,
    symmetry: float = 1.0,
    holdout: float = 0.2,
    exp_mirror: np.ndarray | None = None,
    iters: int = 20,
) -> ArkitMap:
    """Fit a map from paired sequences: ``motions[k]`` (T_k frames, :class:`Motion` or (T_k, 56) model order)
    and ``arkit[k]`` (T_k, 52) weights in [0, 1]. ``present`` (52,) marks the names to fit (default all).

    ``l2``: ridge penalty on standardised inputs; ``symmetry``: weight tying mirrored names (0: independent);
    ``holdout``: the last fraction of every sequence kept out and reported (``fit["heldout"]``: RMSE and
    MAE over the held-out frames and names, and per name). ``exp_mirror``: :func:`exp_mirror_matrix` of the
    FLAME model, to tie the expression weights of mirrored names too.
    """
    if len(motions) != len(arkit) or not motions:
        raise DualTalkError(f"need as many ARKit sequences as motion sequences, got {len(arkit)} and {len(motions)}")
    if not 0 <= holdout < 1:
        raise DualTalkError(f"holdout must be in [0, 1), got {holdout}")
    present = np.ones(N_ARKIT, bool) if present is None else np.asarray(present, bool)
    train_x, train_y, test_x, test_y = [], [], [], []
    for m, y in zip(motions, arkit):
        x = _model_frames(m)
        y = np.asarray(y, np.float64)
        if y.ndim != 2 or y.shape[1] != N_ARKIT:
            raise DualTalkError(f"ARKit sequences must be (T, {N_ARKIT}) weights in ARKIT_NAMES order, got {y.shape}")
        if not np.isfinite(y).all() or y.min() < 0.0 or y.max() > 1.0:
            raise DualTalkError(f"ARKit weights must be finite and in [0, 1]; got {y.min():g} to {y.max():g}")
        if len(x) != len(y):
            raise DualTalkError(f"a motion has {len(x)} frames but its ARKit sequence {len(y)}")
        cut = len(x) - int(round(holdout * len(x)))
        train_x.append(x[:cut])
        train_y.append(y[:cut])
        test_x.append(x[cut:])
        test_y.append(y[cut:])
    X, Y = np.concatenate(train_x), np.concatenate(train_y)
    Xt, Yt = np.concatenate(test_x), np.concatenate(test_y)
    if len(X) < 2:
        raise DualTalkError(f"too few frames to fit a map ({len(X)} training frames)")
    var = X.var(0) + 1e-12  # (56,)
    tie = mirror_operator(exp_mirror) if symmetry > 0 else None
    amap = ArkitMap.zeros()
    done = np.zeros(N_ARKIT, bool)
    for i, name in enumerate(ARKIT_NAMES):
        if done[i] or not present[i]:
            continue
        other = mirror_name(name)
        j = ARKIT_NAMES.index(other) if other else -1
        if tie is not None and j >= 0 and present[j]:
            left, right = (i, j) if name.endswith("Left") else (j, i)
            wl, wr = _solve([X, X], [Y[:, left], Y[:, right]], var, l2, tie, symmetry, iters)
            for k, w in ((left, wl), (right, wr)):
                amap.weights[k], amap.bias[k], amap.defined[k], done[k] = w[:-1], w[-1], True, True
        else:
            (w,) = _solve([X], [Y[:, i]], var, l2, None, 0.0, iters)
            amap.weights[i], amap.bias[i], amap.defined[i], done[i] = w[:-1], w[-1], True, True
    report: dict[str, Any] = {
        "l2": l2,
        "symmetry": symmetry,
        "expression_tied": exp_mirror is not None,
        "holdout": holdout,
        "sequences": len(motions),
        "train_frames": int(len(X)),
        "heldout_frames": int(len(Xt)),
        "names": [n for n, p in zip(ARKIT_NAMES, present) if p],
    }
    for key, (x, y) in (("train", (X, Y)), ("heldout", (Xt, Yt))):
        if len(x) == 0:
            continue
        err = (flame_to_arkit(x, amap) - y)[:, present]  # (T, K)
        report[key] = {
            "rmse": float(np.sqrt((err**2).mean())),
            "mae": float(np.abs(err).mean()),
            "rmse_per_name": {n: float(np.sqrt((err[:, k] ** 2).mean())) for k, n in enumerate(report["names"])},
        }
    amap.fit = report
    return amap


# ----------------------------------------------------------------------------------------------------
# the commands' functions

#: ``arkit-npz``: ARKit motion in the dataset layout (``arkit`` (T, 52) + ``head`` (T, 3)), what a model with
#: ``motion_layout: arkit`` trains on
ARKIT_FORMATS = ("arkit-csv", "arkit-json", "arkit-npz")


def flame_to_arkit_motion(motion: Motion | np.ndarray, arkit_map: ArkitMap) -> ArkitMotion:
    """:class:`~dualtalk.io.motion.ArkitMotion` of FLAME motion: the weights through the map, the head
    rotation kept (what ``dualtalk export --format arkit-npz`` writes: training data for an ARKit model)."""
    m = motion if isinstance(motion, Motion) else Motion.from_model(_model_frames(motion))
    return ArkitMotion(flame_to_arkit(m, arkit_map), np.asarray(m.global_rot, np.float32), m.fps)


def export_arkit(
    motion: Motion | ArkitMotion | str | os.PathLike,
    out: str | os.PathLike,
    arkit_map: ArkitMap | str | os.PathLike | None = None,
    format: str = "arkit-csv",
) -> dict[str, Any]:
    """Write ``out``: the ARKit weights of ``motion`` as the Live Link Face CSV (``format="arkit-csv"``),
    JSON (``"arkit-json"``) or an ARKit motion ``.npz`` (``"arkit-npz"``). FLAME motion goes through
    ``arkit_map`` (an :class:`ArkitMap` or a map file, required); ARKit motion (a model trained with
    ``motion_layout: arkit`` writes it) is written as it is, without a map. Returns a summary."""
    from ..io.motion import save_motion
    from .gltf import as_any_motion

    if format not in ARKIT_FORMATS:
        raise DualTalkError(f"format must be {' or '.join(map(repr, ARKIT_FORMATS))}, got {format!r}")
    m = as_any_motion(motion)
    if isinstance(m, ArkitMotion):
        if arkit_map is not None:
            where = "" if isinstance(motion, ArkitMotion) else f"{motion} "
            raise DualTalkError(
                f"--arkit-map maps FLAME motion to ARKit, but {where}is ARKit motion already: leave out --arkit-map"
            )
        am, channels = m, N_ARKIT
    else:
        if arkit_map is None:
            raise DualTalkError(
                f"--format {format} needs --arkit-map MAP.json for FLAME motion (make one with dualtalk "
                "fit-arkit-map; ARKit motion needs none)"
            )
        amap = arkit_map if isinstance(arkit_map, ArkitMap) else load_arkit_map(arkit_map)
        am, channels = flame_to_arkit_motion(m, amap), int(amap.defined.sum())
    if format == "arkit-npz":
        save_motion(out, am)
    else:
        write = write_arkit_csv if format == "arkit-csv" else write_arkit_json
        write(out, am.weights, head_angles(am.head_rot), am.fps)
    summary = {"path": str(out), "format": format, "frames": len(am), "fps": am.fps, "channels": channels}
    return {**summary, "source_layout": m.layout}


def fit_arkit_map_files(
    motions: list[str | os.PathLike],
    arkit: list[str | os.PathLike],
    out: str | os.PathLike | None = None,
    flame: str | os.PathLike | None = None,
    **options: Any,
) -> ArkitMap:
    """:func:`fit_arkit_map` from files: motion ``.npz``/``.npy`` and ARKit ``.csv``/``.json`` paired in order
    (each pair at the motion's 25 fps; up to 5 frames of difference are trimmed). ``flame``: the user's FLAME
    model, to tie the expression weights of mirrored names (:func:`exp_mirror_matrix`). Writes ``out``."""
    from ..io.conversation import MAX_LENGTH_MISMATCH_FRAMES
    from .gltf import as_motion

    if len(motions) != len(arkit):
        raise DualTalkError(
            f"--flame-motion and --arkit must pair up: got {len(motions)} motion file(s) and {len(arkit)} ARKit file(s)"
        )
    xs, ys, present = [], [], np.ones(N_ARKIT, bool)
    for mp, ap in zip(motions, arkit):
        m = as_motion(mp)
        y, has, fps = load_arkit(ap)
        if fps is not None and fps != m.fps:
            raise InputError(ap, f"is at {fps} fps but the motion at {m.fps}: resample one of them first")
        if abs(len(y) - len(m)) > MAX_LENGTH_MISMATCH_FRAMES:
            raise InputError(
                ap,
                f"has {len(y)} frames but {mp} has {len(m)} (more than the tolerated "
                f"{MAX_LENGTH_MISMATCH_FRAMES} frames apart)",
            )
        if ((y < 0) | (y > 1)).any():
            raise InputError(ap, "ARKit weights must be in [0, 1]")
        n = min(len(y), len(m))
        xs.append(m.to_model()[:n])
        ys.append(y[:n])
        present &= has
    if not present.any():
        raise DualTalkError("the ARKit files have no blendshape name in common")
    exp_mirror = None
    if flame is not None:
        from ..flame import load_flame

        exp_mirror, residual = exp_mirror_matrix(load_flame(flame))
    amap = fit_arkit_map(xs, ys, present=present, exp_mirror=exp_mirror, **options)
    if exp_mirror is not None:
        amap.fit["expression_mirror_residual"] = residual
    if out is not None:
        amap.save(out)
    return amap
