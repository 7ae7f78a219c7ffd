"""Voice activity on generated audio: speech-like segments (harmonic source + formants) in near-silence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dualtalk.io.vad import speech_segments, voice_activity

SR = 16000


def vowel_like(seconds: float, f0: float = 140.0, sr: int = SR) -> np.ndarray:
    """A voiced, speech-like sound: a sawtooth glottal source with vibrato through three formant
    resonators of /a/ (700, 1220, 2600 Hz), amplitude-modulated at a syllable rate of 4 Hz."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / sr
    source = signal.sawtooth(phase)
    out = np.zeros_like(t)
    for fc, bw in ((700, 110), (1220, 120), (2600, 160)):
        r, th = np.exp(-np.pi * bw / sr), 2 * np.pi * fc / sr
        out += signal.lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], source)
    return out * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2)


def make_clip(plan, noise=1e-3, f0=140.0, sr=SR, seed=0):
    """plan: [(seconds, is_speech)]; returns the waveform (peak 0.5) and the true frame mask (25 fps)."""
    rng = np.random.default_rng(seed)
    parts, truth = [], []
    for seconds, speech in plan:
        n = int(seconds * sr)
        parts.append(vowel_like(seconds, f0, sr) if speech else np.zeros(n))
        truth.append(np.full(int(round(seconds * 25)), speech))
    wave = np.concatenate(parts)
    wave = wave / np.abs(wave).max() * 0.5 + rng.normal(0, noise, len(wave))
    return wave.astype(np.float32), np.concatenate(truth)


PLAN = [(1.0, False), (2.0, True), (1.6, False), (1.4, True), (2.0, False)]  # 8 s = 200 frames


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("f0", [110.0, 210.0])
def test_finds_the_spoken_segments(f0):
    wave, truth = make_clip(PLAN, f0=f0)
    mask = voice_activity(wave)
    assert mask.shape == truth.shape and mask.dtype == bool
    assert _iou(mask, truth) > 0.85
    segs = speech_segments(mask)
    assert len(segs) == 2
    for (s, e), (ts, te) in zip(segs, [(1.0, 3.0), (4.6, 6.0)]):
        assert abs(s - ts) <= 0.1 and abs(e - te) <= 0.25  # the detector's hangover extends ends a little


def test_silence_and_noise_are_not_speech():
    assert not voice_activity(np.zeros(SR * 2, np.float32)).any()
    rng = np.random.default_rng(1)
    assert voice_activity(rng.normal(0, 1e-3, SR * 2).astype(np.float32)).mean() < 0.05


def test_speech_in_background_noise():
    wave, truth = make_clip(PLAN, noise=0.02)  # about 20 dB SNR
    assert _iou(voice_activity(wave), truth) > 0.8


def test_other_sample_rate_and_fixed_length():
    wave, truth = make_clip(PLAN, sr=44100)
    mask = voice_activity(wave, sample_rate=44100)
    assert len(mask) == len(truth) and _iou(mask, truth) > 0.85
    assert len(voice_activity(wave, sample_rate=44100, num_frames=150)) == 150
