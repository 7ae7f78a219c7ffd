"""Pairing predictions with ground truth, and loading one evaluation item.

Predictions: ``PRED_DIR/NAME_speakerK.npy`` (T, 56) model order [exp 50, jaw 3, global 3], or
``NAME_speakerK.npz`` in the dataset layout. ARKit motion (:mod:`dualtalk.layout`): (T, 55) ``.npy``
[arkit 52, head 3] or ``.npz`` with ``arkit`` and ``head``; the ground truth's layout decides, and every
file of an evaluation must be in it. Ground truth: ``GT_DIR/NAME_speakerK.npz`` for the person and
``GT_DIR/NAME_speaker{3-K}.npz`` for the partner (P-FD and rPCC need it); the person's own audio
``GT_DIR/NAME_speakerK.wav`` (optional) gives who speaks when.

Every problem is one :class:`~dualtalk.errors.InputError` naming the file, raised before any metric runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.audio import AUDIO_SUFFIXES
from ..io.conversation import partner_speaker
from ..io.motion import load_any_motion, load_model_motion
from ..layout import FLAME, GROUPS, MotionLayout  # GROUPS: FLAME's exp, jaw, "pose" (= the 3-d head rotation)

#: fewest common frames an item may have: the k-means of SID needs at least k = 40 frames
MIN_FRAMES = 40

_PRED_RE = re.compile(r"^(?P<name>.+)_speaker(?P<k>\d+)\.(?P<ext>npy|npz)$")
_AUDIO_EXTS = tuple(f".{ext}" for ext in AUDIO_SUFFIXES)


@dataclass(frozen=True)
class EvalItem:
    """One prediction and the files it is compared with."""

    key: str  # the prediction's file name: the per-file key of the JSON (e.g. conv00_speaker1.npy)
    name: str
    speaker: int
    pred: Path
    gt: Path
    partner: Path
    audio: Path | None  # the person's own audio in GT_DIR, if present


@dataclass
class ItemArrays:
    """An item cut to the common length n (the shortest of prediction, ground truth and partner)."""

    pred: np.ndarray  # (n, 56) float32, model order (a view of the loaded array, as the reference slices)
    gt: np.ndarray  # (n, 56) float32, model order
    partner: np.ndarray  # (n, 56) float32, model order
    lengths: dict  # frames before cutting: pred, gt, partner
    layout: MotionLayout = FLAME  # (ARKit: (n, 55) arrays, groups mouth, upper, pose)

    @property
    def groups(self):
        return self.layout.groups

    def group(self, which: str, g: str) -> np.ndarray:
        return getattr(self, which)[:, self.layout.groups[g]]  # (n, D_g)


def pair_files(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> list[EvalItem]:
    """All predictions of ``pred_dir`` with their ground-truth and partner files, checked to exist."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not d.is_dir():
            raise InputError(d, f"{what} directory not found")
    if not any(p.suffix == ".npz" for p in gt_dir.iterdir()):
        raise InputError(gt_dir, "no ground-truth motion files (expected NAME_speaker{1,2}.npz)")
    items: dict[str, EvalItem] = {}
    for path in sorted(pred_dir.iterdir()):
        if path.suffix not in (".npy", ".npz") or not path.is_file():
            continue
        m = _PRED_RE.match(path.name)
        if not m:
            raise InputError(path, "prediction name must be NAME_speaker1 or NAME_speaker2 (.npy or .npz)")
        k = int(m["k"])
        if k not in (1, 2):
            raise InputError(path, f"speaker {k} is not 1 or 2")
        stem = f"{m['name']}_speaker{k}"
        if stem in items:
            raise InputError(path, f"two predictions for {stem} ({items[stem].pred.name} and {path.name})")
        gt = gt_dir / f"{stem}.npz"
        partner = gt_dir / f"{m['name']}_speaker{partner_speaker(k)}.npz"
        if not gt.is_file():
            raise InputError(gt, f"ground truth for prediction {path.name} not found (names must match)")
        if not partner.is_file():
            raise InputError(
                partner,
                f"partner ground truth for prediction {path.name} not found "
                "(P-FD and rPCC need both speakers' ground truth)",
            )
        audio = next((gt_dir / f"{stem}{ext}" for ext in _AUDIO_EXTS if (gt_dir / f"{stem}{ext}").is_file()), None)
        items[stem] = EvalItem(path.name, m["name"], k, path, gt, partner, audio)
    if not items:
        raise InputError(pred_dir, "no predictions found (expected NAME_speaker{1,2}.npy or .npz)")
    return list(items.values())


def load_item(item: EvalItem, min_frames: int = MIN_FRAMES, layout: MotionLayout = FLAME) -> ItemArrays:
    """Read the three motion files (all of ``layout``) and cut them to the shortest (as the reference does)."""
    who = f"this evaluation (ground truth in the {layout.name} layout)"
    pred = load_model_motion(item.pred, layout, who)  # (Tp, D)
    gt = load_any_motion(item.gt, layout, who).to_model()  # (Tg, D)
    partner = load_any_motion(item.partner, layout, who).to_model()  # (Ta, D)
    n = min(len(pred), len(gt), len(partner))
    if n < min_frames:
        raise InputError(
            item.pred,
            f"only {n} frames in common with the ground truth ({len(gt)}) and partner "
            f"({len(partner)}); the metrics need at least {min_frames}",
        )
    lengths = {"pred": len(pred), "gt": len(gt), "partner": len(partner)}
    return ItemArrays(pred[:n], gt[:n], partner[:n], lengths, layout)


__all__ = ["GROUPS", "MIN_FRAMES", "EvalItem", "ItemArrays", "load_item", "pair_files"]
