"""Mesh metrics on FLAME vertices: LVE (lip vertex error) and FDD (upper-face dynamics deviation).

The vertices come from the user's own FLAME model (``generic_model.pkl``, licensed, never shipped) through
:func:`dualtalk.flame.load_flame`; the lip and upper-face vertex sets come from FLAME's region masks
(``FLAME_masks.pkl``, also licensed, from the FLAME website): ``lips`` for LVE, ``forehead`` and
``eye_region`` for FDD. Without the masks file the mesh metrics are refused with a clear error: a
geometric guess at "the lips" would give numbers nobody else can reproduce.

Definitions (as in VOCA / FaceFormer / CodeTalker; in millimetres, FLAME is in metres):

- LVE = mean over frames of the largest L2 error over the lip vertices;
- FDD = mean over upper-face vertices v of ( std_t ||g_t(v) - template(v)|| - std_t ||p_t(v) - template(v)|| ),
  ground truth minus prediction: > 0 when the prediction moves the upper face less than the real person.

Vertices are computed from expression and jaw with the global rotation set to zero, so the metrics measure
the face, not the head pose (which the pose metrics cover).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DualTalkError, InputError
from ..io.pickles import RestrictedUnpickler, latin1_encode, numpy_globals
from ..layout import EXP, JAW

if TYPE_CHECKING:
    from ..flame import FlameModel

LIP_REGIONS = ("lips",)
UPPER_FACE_REGIONS = ("forehead", "eye_region")
MM = 1000.0  # metres -> millimetres
_CHUNK = 256  # frames per forward pass (bounds memory: 256 x 5023 x 3 floats)


# ----------------------------------------------------------------------------- pure metric functions


def lip_max_errors(pred_verts: np.ndarray, gt_verts: np.ndarray, lip_idx: np.ndarray) -> np.ndarray:
    """(T,) largest L2 distance over the lip vertices per frame. Inputs (T, V, 3) (or already (T, L, 3))."""
    err = np.linalg.norm(pred_verts[:, lip_idx] - gt_verts[:, lip_idx], axis=-1)  # (T, L)
    return err.max(axis=1)


def lve(pred_verts: np.ndarray, gt_verts: np.ndarray, lip_idx: np.ndarray) -> float:
    """Lip vertex error: mean over frames of the max lip-vertex L2 error (units of the vertices)."""
    return float(np.mean(lip_max_errors(pred_verts, gt_verts, lip_idx)))


def upper_face_dynamics(verts: np.ndarray, template: np.ndarray, upper_idx: np.ndarray) -> np.ndarray:
    """(U,) per-vertex std over time of the displacement norm from the template."""
    disp = np.linalg.norm(verts[:, upper_idx] - template[upper_idx], axis=-1)  # (T, U)
    return disp.std(axis=0)


def fdd(pred_verts: np.ndarray, gt_verts: np.ndarray, template: np.ndarray, upper_idx: np.ndarray) -> float:
    """Upper-face dynamics deviation: mean over upper-face vertices of dyn(gt) - dyn(pred)."""
    return float(
        np.mean(
            upper_face_dynamics(gt_verts, template, upper_idx) - upper_face_dynamics(pred_verts, template, upper_idx)
        )
    )


# ----------------------------------------------------------------------------- region masks


def _mask_globals() -> dict:
    """The allow-list of a masks file, a pickled dict of numpy index arrays (bytes as protocol-2 pickles
    written by Python 3 store them)."""
    return {**numpy_globals(), ("_codecs", "encode"): latin1_encode}


def load_region_masks(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read FLAME's region masks: ``FLAME_masks.pkl`` (dict name -> vertex indices) or an ``.npz``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "FLAME region masks file not found")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                masks = {k: data[k] for k in data.files}
        else:
            with open(path, "rb") as fh:
                masks = RestrictedUnpickler(fh, _mask_globals(), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, OSError, AttributeError, ImportError) as exc:
        raise InputError(
            path, f"not a FLAME masks file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    if not isinstance(masks, dict):
        raise InputError(path, "not a FLAME masks file (expected a dict of vertex index arrays)")
    return {str(k): np.asarray(v) for k, v in masks.items()}


@dataclass
class MeshRegions:
    lips: np.ndarray  # (L,) vertex indices
    upper: np.ndarray  # (U,) vertex indices


def mesh_regions(masks: dict[str, np.ndarray], num_vertices: int, path=None) -> MeshRegions:
    """Lip and upper-face vertex indices from FLAME's masks, checked against the model's vertex count."""
    out = {}
    for what, names in (("lips", LIP_REGIONS), ("upper", UPPER_FACE_REGIONS)):
        missing = [n for n in names if n not in masks]
        if missing:
            raise InputError(path, f"masks file has no region {', '.join(missing)} (has: {', '.join(sorted(masks))})")
        idx = np.unique(np.concatenate([np.asarray(masks[n]).reshape(-1) for n in names]))
        if idx.dtype.kind not in "iu" or len(idx) == 0 or idx.min() < 0 or idx.max() >= num_vertices:
            raise InputError(
                path,
                f"region {'+'.join(names)} is not a set of vertex indices of a "
                f"{num_vertices}-vertex model (is the masks file for this FLAME model?)",
            )
        out[what] = idx.astype(np.int64)
    return MeshRegions(**out)


# ----------------------------------------------------------------------------- forward pass wiring


@dataclass
class MeshEvaluator:
    """A FLAME model and its regions; turns (T, 56) model-order motion into region vertices."""

    model: FlameModel
    regions: MeshRegions

    @classmethod
    def load(cls, flame_path, masks_path) -> MeshEvaluator:
        if masks_path is None:
            raise DualTalkError(
                "mesh metrics (LVE, FDD) need FLAME's region masks for the lip and upper-face vertices: "
                "pass --flame-masks FLAME_masks.pkl (from the FLAME website, beside generic_model.pkl)"
            )
        from ..flame import load_flame

        model = load_flame(flame_path)
        template = np.asarray(model.v_template)
        regions = mesh_regions(load_region_masks(masks_path), len(template), masks_path)
        return cls(model, regions)

    def region_vertices(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """(T, len(idx), 3) vertices of ``idx`` for model-order motion x (T, 56), global rotation zeroed."""
        parts = []
        for s in range(0, len(x), _CHUNK):
            c = x[s : s + _CHUNK].astype(np.float64)  # (C, 56)
            verts = self.model.vertices(c[:, EXP], c[:, JAW], np.zeros((len(c), 3)))  # (C, V, 3)
            parts.append(np.asarray(verts)[:, idx].astype(np.float64))  # (C, I, 3)
        return np.concatenate(parts, axis=0)

    def per_file(self, pred: np.ndarray, gt: np.ndarray) -> dict:
        """``lve_mm``, ``fdd_mm`` and the per-frame lip errors (mm) for pooling."""
        lips, upper = self.regions.lips, self.regions.upper
        all_idx = np.concatenate([lips, upper])
        p = self.region_vertices(pred, all_idx)  # (T, L+U, 3)
        g = self.region_vertices(gt, all_idx)  # (T, L+U, 3)
        li, ui = np.arange(len(lips)), np.arange(len(lips), len(all_idx))
        template = np.asarray(self.model.v_template, dtype=np.float64)[all_idx]  # (L+U, 3)
        errs = lip_max_errors(p, g, li) * MM  # (T,)
        return {"lve_mm": float(np.mean(errs)), "fdd_mm": fdd(p, g, template, ui) * MM, "lip_errors_mm": errs}


__all__ = [
    "LIP_REGIONS",
    "UPPER_FACE_REGIONS",
    "MeshEvaluator",
    "MeshRegions",
    "fdd",
    "lip_max_errors",
    "load_region_masks",
    "lve",
    "mesh_regions",
    "upper_face_dynamics",
]
