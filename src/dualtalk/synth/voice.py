"""Speech-like audio: a harmonic source with a per-person pitch through vowel formants, syllable by syllable.

Source-filter synthesis, all vectorised:

1. source: a smooth periodic pulse ``exp(kappa (cos phi - 1))`` whose phase follows
   ``f0(t) = f0_base (1 + pitch_deviation(t))`` (declination over each phrase, pitch accents);
2. filter: short-time Fourier transform of the source, multiplied frame by frame by a three-formant
   envelope (Lorentzian peaks at F1-F3 of the current vowel, interpolated between syllable centres,
   scaled by the voice's formant factor), inverse transform;
3. amplitude: the syllable envelope ``stress * sin(pi u)``; a 40 ms burst of high-passed noise at each
   syllable onset (a consonant); a faint background hiss (-60 dB) everywhere so silence is not digital 0.

Two voices per conversation: a low one (f0 95-135 Hz, formant factor 1.0) and a high one (f0 175-240 Hz,
formant factor 1.17), randomly assigned to speaker 1 and 2. Laughs (a listening cause carried by audio)
are breathy "ha" pulses at five per second (aspiration noise through each), synthesised the same way at
1.9 times the person's f0.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .. import layout  # module, not names: every upper-case name here is a parameter in the manifest
from .timeline import VOWEL_NAMES, Syllables, envelope, pitch_deviation, vowel_track

SAMPLE_RATE = layout.SAMPLE_RATE  # 16000
LOW_VOICE = {"f0": (95.0, 135.0), "formant_scale": 1.0}
HIGH_VOICE = {"f0": (175.0, 240.0), "formant_scale": 1.17}
FORMANT_GAIN = (1.0, 0.6, 0.3)
FORMANT_BANDWIDTH = (90.0, 110.0, 170.0)  # Hz
KAPPA = 25.0
VOICE_RMS = 0.1  # RMS of a voiced stretch at stress 1
CONSONANT_SECONDS = 0.04
CONSONANT_GAIN = 0.25
HISS = 1e-3
_NFFT = 512
_HOP = 128


def synthesize(
    syl: Syllables,
    num_samples: int,
    f0_base: float,
    formant_scale: float,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
    breath: float = 0.0,
) -> np.ndarray:
    """The waveform (num_samples,) float32 of one person's syllables; ``breath``: aspiration noise through
    each whole syllable, relative to the voiced level (laughs)."""
    t = np.arange(num_samples) / sample_rate  # (S,)
    f0 = f0_base * (1.0 + pitch_deviation(t, syl))  # (S,)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    source = np.exp(KAPPA * (np.cos(phase) - 1.0))
    source -= source.mean()
    # time-varying formant filter in the STFT domain
    _, frame_t, spec = signal.stft(
        source, fs=sample_rate, nperseg=_NFFT, noverlap=_NFFT - _HOP, boundary="even", padded=True
    )  # (F, N)
    freqs = np.fft.rfftfreq(_NFFT, 1.0 / sample_rate)  # (F,)
    gain = np.zeros(spec.shape)
    for i in range(3):
        formant = formant_scale * vowel_track(frame_t, syl, i)  # (N,)
        gain += FORMANT_GAIN[i] / (1.0 + ((freqs[:, None] - formant[None, :]) / FORMANT_BANDWIDTH[i]) ** 2)
    _, voiced = signal.istft(spec * gain, fs=sample_rate, nperseg=_NFFT, noverlap=_NFFT - _HOP, boundary=True)
    voiced = _fit(voiced, num_samples)
    voiced *= VOICE_RMS / max(float(np.sqrt(np.mean(voiced**2))), 1e-9)
    env = envelope(t, syl)  # (S,)
    wave = voiced * env
    # consonant bursts at syllable onsets: high-passed noise under a sin(pi u) bump of 40 ms
    burst = np.zeros(num_samples)
    if len(syl.start):
        idx = np.searchsorted(syl.start - 0.5 * CONSONANT_SECONDS, t, side="right") - 1
        j = np.maximum(idx, 0)
        u = (t - (syl.start[j] - 0.5 * CONSONANT_SECONDS)) / CONSONANT_SECONDS
        inside = (idx >= 0) & (u >= 0) & (u < 1)
        burst = np.where(inside, syl.stress[j] * np.sin(np.pi * np.clip(u, 0, 1)), 0.0)
    wave += CONSONANT_GAIN * VOICE_RMS * burst * _highpassed_noise(rng, num_samples)
    if breath:
        wave += breath * VOICE_RMS * env * _highpassed_noise(rng, num_samples)
    wave += HISS * rng.standard_normal(num_samples)
    return wave.astype(np.float32)


def _highpassed_noise(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """(S,) white noise's first difference: high-passed (consonant bursts, breath)."""
    return np.diff(rng.standard_normal(num_samples + 1))


LAUGH_PULSE_SECONDS = 0.11  # one "ha"
LAUGH_PULSES_PER_SECOND = 5.0
LAUGH_PITCH = 1.9  # laughs are higher than the person's speech
LAUGH_BREATH = 0.8  # and breathy: aspiration noise through each pulse


def laugh_syllables(events: np.ndarray) -> Syllables:
    """Laughs as syllables: each event (start, length, intensity) -> "ha" pulses at 5 per second, vowel "a",
    the intensity as stress, decaying over the laugh. Synthesised with :func:`synthesize` at a raised f0."""
    rows = []
    a = VOWEL_NAMES.index("a")
    for start, length, amp in np.asarray(events).reshape(-1, 3):
        n = max(1, int(round(length * LAUGH_PULSES_PER_SECOND)))
        for i in range(n):
            t0 = start + i / LAUGH_PULSES_PER_SECOND
            if t0 >= 0:
                rows.append((t0, LAUGH_PULSE_SECONDS, a, amp * (1.0 - 0.5 * i / n), 0.0, start, start + length))
    arr = np.array(sorted(rows), dtype=np.float64).reshape(-1, 7)
    keep = np.r_[True, np.diff(arr[:, 0]) >= LAUGH_PULSE_SECONDS] if len(arr) else np.zeros(0, bool)
    arr = arr[keep]  # overlapping laughs: drop pulses that would overlap (syllables never overlap)
    return Syllables(
        start=arr[:, 0],
        dur=arr[:, 1],
        vowel=arr[:, 2].astype(int),
        stress=arr[:, 3],
        accent=arr[:, 4],
        phrase_start=arr[:, 5],
        phrase_end=arr[:, 6],
    )


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.concatenate([x, np.zeros(n - len(x))])


def rms_envelope(wave: np.ndarray, samples_per_frame: int = layout.SAMPLES_PER_FRAME) -> np.ndarray:
    """RMS of each motion frame's samples (T,) (used by tests and by curious users)."""
    t = -(-len(wave) // samples_per_frame)
    padded = np.zeros(t * samples_per_frame, dtype=np.float64)
    padded[: len(wave)] = wave
    return np.sqrt((padded.reshape(t, samples_per_frame) ** 2).mean(axis=1))  # (T,)


__all__ = ["HIGH_VOICE", "LOW_VOICE", "SAMPLE_RATE", "laugh_syllables", "rms_envelope", "synthesize"]
