"""Who speaks when: voice activity per motion frame from a person's own audio.

The detector is WebRTC's VAD (Google's GMM-based detector from the WebRTC project, via the
``webrtcvad`` module of the ``webrtcvad-wheels`` package): it classifies 20 ms frames of 16-bit PCM as
speech or not. We then (1) call a 40 ms motion frame speech when either of its two 20 ms halves is, (2)
close gaps shorter than ``min_gap`` seconds (pauses between words), and (3) drop speech runs shorter
than ``min_speech`` seconds (clicks, breaths). The result is one boolean per motion frame: True where
the person speaks, False where the person listens.
"""

from __future__ import annotations

import numpy as np

from ..layout import FPS, SAMPLE_RATE, frames_for
from .audio import resample

_VAD_RATE = 16000  # the rate the detector runs at (webrtcvad takes 8/16/32/48 kHz), whatever the input's
_VAD_FRAME_MS = 20


def _runs(mask: np.ndarray) -> list[tuple[int, int, bool]]:
    """Runs of equal values: (start, end_exclusive, value)."""
    if len(mask) == 0:
        return []
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(mask)]])
    return [(int(s), int(e), bool(mask[s])) for s, e in zip(starts, ends)]


def voice_activity(
    wave: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    fps: int = FPS,
    num_frames: int | None = None,
    aggressiveness: int = 2,
    min_gap: float = 0.3,
    min_speech: float = 0.2,
) -> np.ndarray:
    """Boolean speech mask (T,) at ``fps`` for a mono waveform; T = ceil(samples / sample_rate * fps)."""
    import webrtcvad

    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if sample_rate != _VAD_RATE:
        wave = resample(wave, sample_rate, _VAD_RATE)
    t = num_frames if num_frames is not None else frames_for(len(wave), _VAD_RATE, fps)
    hop = _VAD_RATE * _VAD_FRAME_MS // 1000  # 320 samples
    n_small = -(-len(wave) // hop)
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    pcm = np.zeros(n_small * hop, dtype=np.int16)
    if peak > 0:
        pcm[: len(wave)] = np.clip(wave * 32767.0, -32768, 32767).astype(np.int16)
    vad = webrtcvad.Vad(aggressiveness)
    small = np.zeros(n_small, dtype=bool)
    if peak > 0:
        for i in range(n_small):
            small[i] = vad.is_speech(pcm[i * hop : (i + 1) * hop].tobytes(), _VAD_RATE)
    # 20 ms decisions -> motion frames: a motion frame is speech if any 20 ms frame inside it is
    times = (np.arange(n_small) * hop) / _VAD_RATE  # start time of each small frame
    frame_idx = np.minimum((times * fps).astype(int), max(t - 1, 0))
    mask = np.zeros(t, dtype=bool)
    np.logical_or.at(mask, frame_idx, small)
    gap = int(round(min_gap * fps))
    shortest = int(round(min_speech * fps))
    for s, e, v in _runs(mask):  # close short pauses inside speech
        if not v and s > 0 and e < t and e - s < gap:
            mask[s:e] = True
    for s, e, v in _runs(mask):  # drop blips
        if v and e - s < shortest:
            mask[s:e] = False
    return mask


def speech_segments(mask: np.ndarray, fps: int = FPS) -> list[tuple[float, float]]:
    """(start_s, end_s) of each speech run of a frame mask."""
    return [(s / fps, e / fps) for s, e, v in _runs(np.asarray(mask, bool)) if v]
