"""Audio files: any sample rate from 4 kHz to 384 kHz and any channel count in, mono float32 at the model's rate out.

Reading uses libsndfile (``soundfile``: WAV, FLAC, OGG, ...); resampling uses the SoX resampler
(``soxr``, "HQ" quality), a band-limited resampler, never sample repetition.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import InputError
from ..layout import SAMPLE_RATE
from .files import atomic_path

#: the sample rates an audio file may have (those of the live protocol's ``start``): below, no speech fits
#: under the Nyquist frequency; beyond, no recorder makes them
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4_000, 384_000

#: the largest sample magnitude accepted: audio is within +-1 (+-32,768 where float audio was written
#: unnormalised); far larger finite samples (1e20) are no recording's, and their squares overflow float32 in
#: the encoders' normalisation, which would turn the motion into NaN
MAX_SAMPLE_MAGNITUDE = 100_000.0


#: the audio suffixes a dataset split's ``NAME_speakerK.*`` may have (any file libsndfile reads works elsewhere)
AUDIO_SUFFIXES = ("wav", "flac", "ogg", "opus", "mp3")


def unreadable(path: str | os.PathLike, exc: Exception) -> InputError:
    """The error for a file libsndfile could not open or decode: its reason, without the path it repeats; for a
    file that exists, not libsndfile's "does not exist" (what it says of some content it cannot decode)."""
    msg = str(exc).split(":")[-1].strip() or "unreadable"
    if "does not exist" in msg and Path(path).is_file():
        msg = "its content is not audio libsndfile can decode: corrupt, or a format it does not read"
    return InputError(path, f"not a readable audio file ({msg})")


def samples_problem(samples: np.ndarray) -> str | None:
    """What is wrong with float32 audio samples (NaN or infinite, or out of range), None if nothing: the one
    check of files, uploads and live messages."""
    if not np.isfinite(samples).all():
        return "contains NaN or infinite samples"
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > MAX_SAMPLE_MAGNITUDE:
        return (
            f"has samples up to {peak:.3g}: audio is within +-1 (+-32,768 unnormalised), "
            f"at most {MAX_SAMPLE_MAGNITUDE:,.0f} here"
        )
    return None


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling of a 1-D waveform (soxr HQ)."""
    if orig_sr == target_sr:
        return wave.astype(np.float32, copy=False)
    return soxr.resample(wave.astype(np.float32, copy=False), orig_sr, target_sr, quality="HQ").astype(np.float32)


def _wav_shortfall(path: Path) -> tuple[int, int] | None:
    """(bytes the data chunk of a RIFF/WAVE file declares, bytes it holds) when it holds fewer: a file cut
    short (a copy or download interrupted), which libsndfile reads as a shorter clip without a word. None
    for any other file, or a header that leaves the size open (streamed WAVs declare 0 or 0xFFFFFFFF)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(fh.fileno()).st_size
            offset = 12
            while offset + 8 <= size:
                fh.seek(offset)
                chunk = fh.read(8)
                declared = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"data":
                    held = size - (offset + 8)
                    if declared in (0, 0xFFFFFFFF) or held >= declared:
                        return None
                    return declared, held
                offset += 8 + declared + (declared & 1)
    except OSError:
        return None
    return None


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate``: shape (S,).

    Errors (one line naming the file): missing, not audio, a sample rate outside 4 kHz to 384 kHz, no samples,
    NaN/inf samples, samples beyond :data:`MAX_SAMPLE_MAGNITUDE`.
    A silent clip is valid (that person only listens).
    """
    path = Path(path)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise InputError(None, f"load_audio: sample_rate must be a whole number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(None, f"load_audio: sample_rate {sample_rate} Hz is outside 4,000 to 384,000 Hz")
    if not path.exists():
        raise InputError(path, "audio file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, expected an audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (S, C)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise unreadable(path, exc) from None
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise InputError(
            path, f"sample rate {sr} Hz is not an audio recording's ({MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz)"
        )
    if data.shape[0] == 0:
        raise InputError(path, "audio file contains no samples")
    short = _wav_shortfall(path)
    if short is not None:
        raise InputError(
            path, f"truncated: its header declares {short[0]:,} bytes of samples, the file holds {short[1]:,}"
        )
    problem = samples_problem(data)
    if problem is not None:
        raise InputError(path, f"audio {problem}")
    mono = data.mean(axis=1)  # (S,)
    return resample(mono, int(sr), sample_rate)


def save_audio(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono float waveform as a 32-bit float WAV (atomically)."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wave, sample_rate, subtype="FLOAT", format="WAV")
