"""The facts of the data, in one place: rates, dimensions, and where each part of a motion frame lives.

This is the bottom layer: it imports nothing from ``dualtalk``; every other module imports these names
instead of restating the numbers.

Time: audio is mono at :data:`SAMPLE_RATE` = 16 kHz, motion is at :data:`FPS` = 25 frames per second, so
a frame covers :data:`SAMPLES_PER_FRAME` = 640 samples (frame t covers samples [640 t, 640 (t + 1))) and
audio of S samples has ``T = ceil(S / 640)`` frames (:func:`frames_for`).

Motion, two orders of the same FLAME parameters:

- **model order** (inside the model, ``.npy`` predictions, training, evaluation): a frame is a
  :data:`MOTION_DIM` = 56-d vector ``[exp 50, jaw 3, head rotation 3]``; :data:`EXP`, :data:`JAW` and
  :data:`HEAD_ROT` are its column slices;
- **FLAME file order** (the dataset's ``.npz``): ``exp`` (T, 50) and ``pose`` (T, 6) =
  ``[global/head rotation 3, jaw 3]``; :data:`NPZ_EXP`, :data:`NPZ_POSE` are the keys and
  :data:`FLAME_POSE_HEAD_ROT`, :data:`FLAME_POSE_JAW` the column slices of that 6-d ``pose``.

The head rotation is FLAME's global rotation (axis-angle), which the reference renderer applies at the
neck joint; the code calls it ``global_rot`` / ``HEAD_ROT``. The word "pose" alone is ambiguous, so:

- in files, ``pose`` is the 6-d FLAME pose ``[head rotation, jaw]`` (the key is part of the file format;
  in code the array is called ``flame_pose``);
- in loss and metric names (:data:`GROUPS`: ``mse_pose``, ``fid_pose``, the loss weight ``pose``, ...),
  the group ``"pose"`` means **the 3-d head rotation only** (:data:`HEAD_ROT`), as in the paper and the
  reference metric files; the jaw is its own group.

**Two motion layouts** (:class:`MotionLayout`, chosen per model by ``DualTalkConfig.motion_layout``):

- ``flame`` (:data:`FLAME`, the default and the released model's): the 56-d FLAME frame above;
- ``arkit`` (:data:`ARKIT`): Apple's 52 ARKit blendshape weights in [0, 1] (:data:`ARKIT_NAMES`, Live Link
  Face's column order) then the head rotation, 55-d ``[arkit 52, head rotation 3]`` in model order; files
  hold ``arkit`` (T, 52) and ``head`` (T, 3) (:data:`NPZ_ARKIT`, :data:`NPZ_HEAD`), the head rotation as
  axis-angle in radians in FLAME's frame (the same quantity as FLAME's global rotation). Its groups:
  ``mouth`` (the 28 ``jaw*``, ``mouth*`` and ``tongueOut`` weights), ``upper`` (the other 24: eyes, brows,
  cheeks, nose) and ``pose`` (the head rotation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SAMPLE_RATE = 16000  # Hz, mono
FPS = 25  # motion frames per second
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640 samples = 40 ms

N_EXP = 50  # FLAME expression coefficients used
N_JAW = 3  # jaw rotation, axis-angle
N_HEAD_ROT = 3  # global (head) rotation, axis-angle
MOTION_DIM = N_EXP + N_JAW + N_HEAD_ROT  # 56, model order [exp, jaw, head rotation]

# --- model order: column slices of a (T, 56) frame ---
EXP = slice(0, N_EXP)  # 0:50
JAW = slice(N_EXP, N_EXP + N_JAW)  # 50:53
HEAD_ROT = slice(N_EXP + N_JAW, MOTION_DIM)  # 53:56, the global rotation

#: the parameter groups of the loss and the metrics, in the reference's order. NB: "pose" is the 3-d
#: head (global) rotation only, as the paper and the reference metric files (mse_pose, fid_pose, ...) name it
GROUPS = {"exp": EXP, "jaw": JAW, "pose": HEAD_ROT}

# --- FLAME file order: the dataset's .npz ---
NPZ_EXP = "exp"  # (T, 50)
NPZ_POSE = "pose"  # (T, 6) the FLAME pose [head rotation 3, jaw 3]
N_FLAME_POSE = N_HEAD_ROT + N_JAW  # 6
FLAME_POSE_HEAD_ROT = slice(0, N_HEAD_ROT)  # 0:3 of the file's pose
FLAME_POSE_JAW = slice(N_HEAD_ROT, N_FLAME_POSE)  # 3:6 of the file's pose


# --- the ARKit layout ---
#: the 52 ARKit blendshape names (Apple's spelling, ``ARFaceAnchor.BlendShapeLocation``) in the column order
#: of Live Link Face's CSV, which is also the order of every (T, 52) array and of the ARKit layout's model
#: order. Note that Live Link Face puts ``jawRight`` before ``jawLeft`` and ``mouthRight`` before ``mouthLeft``.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip
N_ARKIT = len(ARKIT_NAMES)  # 52
ARKIT_DIM = N_ARKIT + N_HEAD_ROT  # 55, model order [arkit 52, head rotation 3]
ARKIT_WEIGHTS = slice(0, N_ARKIT)  # 0:52 of an ARKit frame
ARKIT_HEAD_ROT = slice(N_ARKIT, ARKIT_DIM)  # 52:55, axis-angle (radians), FLAME's frame
#: columns of the ``mouth`` group: the weights whose names start with jaw, mouth or tongue (28)
ARKIT_MOUTH: tuple[int, ...] = tuple(i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("jaw", "mouth", "tongue")))
#: columns of the ``upper`` group: the other 24 weights (eyes, brows, cheeks, nose)
ARKIT_UPPER: tuple[int, ...] = tuple(i for i in range(N_ARKIT) if i not in ARKIT_MOUTH)
#: the groups of the ARKit layout's loss and metrics (columns as index lists: mouth and upper interleave)
ARKIT_GROUPS: dict[str, slice | list[int]] = {
    "mouth": list(ARKIT_MOUTH),
    "upper": list(ARKIT_UPPER),
    "pose": ARKIT_HEAD_ROT,
}
NPZ_ARKIT = "arkit"  # (T, 52) weights in [0, 1], ARKIT_NAMES order
NPZ_HEAD = "head"  # (T, 3) head rotation, axis-angle in radians
NPZ_NAMES = "names"  # optional (52,) strings: the column names of ``arkit`` (any order; reordered on reading)


@dataclass(frozen=True, eq=False)
class MotionLayout:
    """What a motion frame is: its width, its named columns, its loss/metric groups and which of its
    columns are bounded to [0, 1] (clipped at the model's output)."""

    name: str  # "flame" | "arkit"
    dim: int
    #: the groups of the loss and the metrics, in order: column slices or index lists of a model-order frame
    groups: Mapping[str, slice | list[int]]
    head_rot: slice  # the head (global) rotation, axis-angle
    #: columns whose values are weights in [0, 1] (None: unbounded parameters)
    bounded: slice | None
    #: the keys of the layout's motion files (``.npz``)
    npz_keys: tuple[str, ...]
    #: the names of the model-order columns
    channels: tuple[str, ...]

    def describe(self) -> str:
        """``FLAME motion ('exp' (T, 50), 'pose' (T, 6))`` and the like, for error messages."""
        if self.name == "flame":
            return f"FLAME motion ('{NPZ_EXP}' (T, {N_EXP}), '{NPZ_POSE}' (T, {N_FLAME_POSE}))"
        return f"ARKit motion ('{NPZ_ARKIT}' (T, {N_ARKIT}), '{NPZ_HEAD}' (T, {N_HEAD_ROT}))"


def group_width(cols: slice | list[int], dim: int) -> int:
    """How many columns a group (a slice or an index list) of a ``dim``-wide frame has."""
    return len(range(dim)[cols]) if isinstance(cols, slice) else len(cols)


FLAME = MotionLayout(
    name="flame",
    dim=MOTION_DIM,
    groups=GROUPS,
    head_rot=HEAD_ROT,
    bounded=None,
    npz_keys=(NPZ_EXP, NPZ_POSE),
    channels=(
        *(f"exp{i:02d}" for i in range(N_EXP)),
        *(f"jaw_{a}" for a in "xyz"),
        *(f"global_{a}" for a in "xyz"),
    ),
)
ARKIT = MotionLayout(
    name="arkit",
    dim=ARKIT_DIM,
    groups=ARKIT_GROUPS,
    head_rot=ARKIT_HEAD_ROT,
    bounded=ARKIT_WEIGHTS,
    npz_keys=(NPZ_ARKIT, NPZ_HEAD),
    channels=(*ARKIT_NAMES, *(f"head_{a}" for a in "xyz")),
)
#: the motion layouts by name (``DualTalkConfig.motion_layout``)
LAYOUTS: dict[str, MotionLayout] = {"flame": FLAME, "arkit": ARKIT}


def get_layout(name: str | MotionLayout) -> MotionLayout:
    """The :class:`MotionLayout` of a name (``flame``, ``arkit``); a layout is returned as it is."""
    if isinstance(name, MotionLayout):
        return name
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown motion layout {name!r} (choose from {', '.join(LAYOUTS)})") from None


def frames_for(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """T = ceil(samples / sample_rate * fps) (integer arithmetic: no float rounding surprises); 640 samples a
    frame at the defaults."""
    return -(-num_samples * fps // sample_rate)


def frames_text(n: int) -> str:
    """``n`` frames as words: "1 frame", "100 frames"."""
    return f"{n} frame" if n == 1 else f"{n} frames"


__all__ = [
    "ARKIT",
    "ARKIT_DIM",
    "ARKIT_GROUPS",
    "ARKIT_HEAD_ROT",
    "ARKIT_MOUTH",
    "ARKIT_NAMES",
    "ARKIT_UPPER",
    "ARKIT_WEIGHTS",
    "EXP",
    "FLAME",
    "FLAME_POSE_HEAD_ROT",
    "FLAME_POSE_JAW",
    "FPS",
    "GROUPS",
    "HEAD_ROT",
    "JAW",
    "LAYOUTS",
    "MOTION_DIM",
    "MotionLayout",
    "NPZ_ARKIT",
    "NPZ_EXP",
    "NPZ_HEAD",
    "NPZ_NAMES",
    "NPZ_POSE",
    "N_ARKIT",
    "N_EXP",
    "N_FLAME_POSE",
    "N_HEAD_ROT",
    "N_JAW",
    "SAMPLES_PER_FRAME",
    "SAMPLE_RATE",
    "frames_for",
    "frames_text",
    "get_layout",
    "group_width",
]
