"""Feature cache: the outputs of *frozen* audio encoders, computed once and read back per window.

With ``model.audio_encoder.freeze=true`` the two audio encoders never change, so their outputs can be
computed once per file and stored: ``CACHE/<key>/<split>/NAME_speaker{1,2}.npy`` of shape (T, H), float16,
one directory per encoder (encoder 1 encodes the generated person's audio, encoder 2 the partner's, so
each file is encoded by both). The training loop then skips the encoders entirely.

``key`` is a hash of everything that determines the outputs: the audio encoder config, the sample rate
and frame rate, the chunk length and the encoder's weights. Change any of them and a new key (a fresh,
empty cache directory) is used: a stale cache is never read.

Each file is encoded in chunks of ``data.cache_chunk_seconds`` (eval mode: no dropout/SpecAugment), so a
window's features see up to that much audio context instead of the window alone; that is the one
difference from running the encoder on every window. Files are written atomically, so an interrupted
cache build resumes where it stopped; processes of a distributed run split the files between them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..config import DualTalkConfig, to_dict
from ..io.audio import load_audio
from ..io.files import atomic_path, atomic_write_text
from ..io.progress import progress as progress_bar
from ..layout import SAMPLES_PER_FRAME
from .clips import SplitIndex

ENCODERS = {"self": "audio_encoder1", "partner": "audio_encoder2"}


def encoder_key(cfg: DualTalkConfig, encoder: torch.nn.Module, chunk_seconds: float) -> str:
    """16 hex digits identifying what this encoder outputs."""
    h = hashlib.sha256()
    audio_encoder = to_dict(cfg.audio_encoder)
    audio_encoder.pop("pretrained", None)  # the weights themselves are hashed below
    audio_encoder.pop("freeze", None)
    audio_encoder.pop("freeze_feature_extractor", None)
    desc = {
        "audio_encoder": audio_encoder,
        "sample_rate": cfg.sample_rate,
        "fps": cfg.fps,
        "chunk_seconds": chunk_seconds,
        "format": 1,
    }
    h.update(json.dumps(desc, sort_keys=True).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def feature_path(directory: Path, name: str, speaker: int) -> Path:
    return Path(directory) / f"{name}_speaker{speaker}.npy"


@torch.inference_mode()
def encode_file(
    encoder: torch.nn.Module, wave: np.ndarray, frames: int, chunk_frames: int, device: torch.device
) -> np.ndarray:
    """(S,) waveform -> (frames, H) float16, in about ``chunk_frames``-frame chunks."""
    n = max(1, round(frames / chunk_frames))
    bounds = np.linspace(0, frames, n + 1).round().astype(int)
    outs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        w = torch.from_numpy(wave[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME]).to(device)[None]  # (1, S)
        outs.append(encoder(w, int(b - a))[0].float().cpu().numpy())  # (L, H)
    return np.concatenate(outs).astype(np.float16)  # (frames, H)


def build_cache(
    model,
    cache_root: Path,
    splits: dict[str, SplitIndex],
    chunk_seconds: float,
    rank: int = 0,
    world: int = 1,
    device="cpu",
    progress: bool = True,
) -> dict[str, dict[str, Path]]:
    """Encode every file of ``splits`` that the cache lacks; -> {split: {"self": dir, "partner": dir}}.

    Process ``rank`` encodes every ``world``-th conversation; the caller synchronises the processes.
    """
    cfg = model.config
    chunk_frames = max(1, round(chunk_seconds * cfg.fps))
    joint = model.joint_encoder
    dirs: dict[str, dict[str, Path]] = {split: {} for split in splits}
    for role, attr in ENCODERS.items():
        encoder = getattr(joint, attr, None)
        if encoder is None:  # that input is switched off: nothing to cache
            continue
        key = encoder_key(cfg, encoder, chunk_seconds)
        root = Path(cache_root) / key
        if rank == 0 and not (root / "meta.json").exists():
            meta = {"encoder": attr, "audio_encoder": to_dict(cfg.audio_encoder), "chunk_seconds": chunk_seconds}
            atomic_write_text(root / "meta.json", json.dumps(meta, indent=2) + "\n")
        was_training = encoder.training
        encoder.eval()
        for split, index in splits.items():
            out = root / split
            out.mkdir(parents=True, exist_ok=True)
            dirs[split][role] = out
            todo = [
                (c, k)
                for i, c in enumerate(index.clips)
                if i % world == rank
                for k in (1, 2)
                if not _cached(feature_path(out, c.name, k), c.frames)
            ]
            for clip, k in progress_bar(
                todo, desc=f"caching {attr} ({split})", unit="file", enabled=progress and bool(todo)
            ):
                wave = load_audio(clip.audio[k - 1])
                need = clip.frames * SAMPLES_PER_FRAME
                wave = np.pad(wave[:need], (0, max(0, need - len(wave))))
                feats = encode_file(encoder, wave, clip.frames, chunk_frames, torch.device(device))  # (T, H)
                with atomic_path(feature_path(out, clip.name, k), suffix=".npy") as tmp:
                    with open(tmp, "wb") as fh:
                        np.save(fh, feats)
        encoder.train(was_training)
    return dirs


def _cached(path: Path, frames: int) -> bool:
    """Whether ``path`` holds usable features of ``frames`` frames (written atomically, so anything else, a
    file truncated or replaced since, is computed again rather than read)."""
    if not path.exists():
        return False
    try:
        feats = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError):
        return False
    return feats.ndim == 2 and feats.shape[0] >= frames


def read_feature_window(directory: Path, name: str, speaker: int, start: int, frames: int, window: int) -> torch.Tensor:
    """Frames [start, start + frames) of a cached file, zero-padded to ``window``: (W, H) float32."""
    feats = np.load(feature_path(directory, name, speaker), mmap_mode="r")  # (T, H), not read yet
    x = np.zeros((window, feats.shape[1]), dtype=np.float32)
    x[:frames] = feats[start : start + frames]
    return torch.from_numpy(x)
