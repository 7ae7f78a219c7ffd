"""Non-learned baselines: what a model has to beat.

    from dualtalk.baselines import predict_baseline
    predict_baseline("mean", "data/synth/train", "data/synth/test", "preds/mean")
    predict_baseline("mirror", None, "data/synth/test", "preds/mirror")
    predict_baseline("random_segment", "data/synth/train", "data/synth/test", "preds/random", seed=0)

Each writes ``OUT_DIR/NAME_speakerK.npy`` (T, 56) model order for every generatable side of every
conversation in ``data_dir`` (side K whose partner has motion), exactly like the model's ``predict``:
T = ceil(samples / 640) of speaker K's audio.

- ``mean``: the mean frame over every motion file of the training directory, repeated T times.
- ``mirror``: the partner's motion (trimmed, or extended by its last frame, to T frames).
- ``random_segment``: a random T-frame window of the ground-truth motion of another training
  conversation (never the one with the same name), seeded per (seed, conversation, side) so results do
  not depend on which other conversations are in ``data_dir``. A training motion shorter than T is
  wrapped around (read cyclically from the random start).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DualTalkError
from .io.audio import load_audio
from .io.conversation import discover_conversations, load_generation_inputs, partner_speaker
from .io.motion import load_motion, save_model_motion
from .layout import MOTION_DIM, frames_for

BASELINES = ("mean", "mirror", "random_segment")


def training_motions(train_dir: str | os.PathLike) -> list[tuple[str, int, np.ndarray]]:
    """Every ground-truth motion of ``train_dir``: (conversation name, speaker, (T, 56) model order)."""
    out = []
    for conv in discover_conversations(train_dir, require_motion="partner"):
        for k in sorted(conv.motion):
            out.append((conv.name, k, load_motion(conv.motion[k]).to_model()))
    return out


def training_mean(train_dir: str | os.PathLike) -> np.ndarray:
    """(56,) mean frame over all training motion frames (summed in float64, as the models' stored mean: a
    model whose output gain is 0 outputs exactly this frame)."""
    frames = np.concatenate([m for _, _, m in training_motions(train_dir)], axis=0)  # (sum T, 56)
    return frames.mean(axis=0, dtype=np.float64).astype(np.float32)


def random_window(
    pool: list[tuple[str, int, np.ndarray]], exclude: str, t: int, rng: np.random.Generator
) -> tuple[str, int, int, np.ndarray]:
    """A random ``t``-frame window (wrapped cyclically if short) of a pool motion not named ``exclude``.

    Returns (name, speaker, start frame, (t, 56)).
    """
    candidates = [p for p in pool if p[0] != exclude]
    if not candidates:
        raise DualTalkError(f"random_segment: the training directory has no conversation other than '{exclude}'")
    name, k, motion = candidates[int(rng.integers(len(candidates)))]
    n = len(motion)
    start = int(rng.integers(n - t + 1)) if n >= t else int(rng.integers(n))
    idx = (start + np.arange(t)) % n  # (t,)
    return name, k, start, motion[idx]


def _item_rng(seed: int, name: str, k: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8")), int(k)])


def predict_baseline(
    method: str,
    train_dir: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    seed: int = 0,
) -> list[Path]:
    """Write the baseline's prediction for every generatable side in ``data_dir``; return the paths."""
    if method not in BASELINES:
        raise DualTalkError(f"unknown baseline '{method}' (choose from {', '.join(BASELINES)})")
    mean: np.ndarray | None = None
    pool: list[tuple[str, int, np.ndarray]] | None = None
    if method != "mirror":
        if train_dir is None:
            raise DualTalkError(f"baseline '{method}' needs a training directory")
        mean = training_mean(train_dir) if method == "mean" else None
        pool = training_motions(train_dir) if method == "random_segment" else None
    out_dir = Path(out_dir)
    written = []
    for conv in discover_conversations(data_dir, require_motion="partner"):
        for k in conv.generatable():
            if method == "mirror":
                inputs = load_generation_inputs(
                    conv.audio[k], conv.audio[partner_speaker(k)], conv.motion[partner_speaker(k)]
                )
                pred = inputs.partner_motion  # (T, 56)
                assert pred is not None
            else:
                t = frames_for(len(load_audio(conv.audio[k])))
                if method == "mean":
                    assert mean is not None
                    pred = np.repeat(mean[None, :], t, axis=0)  # (T, 56)
                else:
                    assert pool is not None
                    pred = random_window(pool, conv.name, t, _item_rng(seed, conv.name, k))[3]
            assert pred.shape[1] == MOTION_DIM
            path = out_dir / f"{conv.name}_speaker{k}.npy"
            save_model_motion(path, pred)
            written.append(path)
    return written


__all__ = ["BASELINES", "predict_baseline", "random_window", "training_mean", "training_motions"]
