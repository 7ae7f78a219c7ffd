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
"""

from __future__ import annotations

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


def frames_for(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """T = ceil(samples / sample_rate * fps) (integer arithmetic: no float rounding surprises); 640 samples a
    frame at the defaults."""
    return -(-num_samples * fps // sample_rate)


__all__ = [
    "EXP",
    "FLAME_POSE_HEAD_ROT",
    "FLAME_POSE_JAW",
    "FPS",
    "GROUPS",
    "HEAD_ROT",
    "JAW",
    "MOTION_DIM",
    "NPZ_EXP",
    "NPZ_POSE",
    "N_EXP",
    "N_FLAME_POSE",
    "N_HEAD_ROT",
    "N_JAW",
    "SAMPLES_PER_FRAME",
    "SAMPLE_RATE",
    "frames_for",
]
