"""Conversations in the dataset layout: ``DIR/NAME_speaker{1,2}.{wav,npz}``.

Both audio files of a conversation are required (each person's audio is an input whichever side is
generated); motion may exist for one side only: that conversation can still be used to generate the other
side. Everything else is checked strictly, with one error line naming the file.

Length tolerance: audio of S samples covers ``T = ceil(S / 640)`` frames at 25 fps / 16 kHz
(:func:`dualtalk.layout.frames_for`). A motion
file may differ from its audio by at most :data:`MAX_LENGTH_MISMATCH_FRAMES` frames (0.2 s; trackers drop
or add a frame at the ends); the two audio files of a conversation by at most the same duration.
Within tolerance, the generated person's audio defines T, and the partner's inputs are trimmed or padded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..layout import FPS, SAMPLE_RATE, frames_for, frames_text
from .audio import AUDIO_SUFFIXES, load_audio
from .motion import load_any_motion, load_model_motion, motion_from_model

#: largest accepted difference between the lengths of two files of one conversation, in frames
MAX_LENGTH_MISMATCH_FRAMES = 5

_NAME_RE = re.compile(rf"^(?P<name>.+)_speaker(?P<k>\d+)\.(?P<ext>{'|'.join(AUDIO_SUFFIXES)}|npz)$")


#: T = ceil(samples / sample_rate * fps): :func:`dualtalk.layout.frames_for` under its older name here
num_frames = frames_for


def partner_speaker(k: int) -> int:
    return 3 - k


def check_length(path, frames: int, expected: int, what: str) -> None:
    if abs(frames - expected) > MAX_LENGTH_MISMATCH_FRAMES:
        raise InputError(
            path,
            f"{what} has {frames} frames but the audio implies {expected} "
            f"(more than the tolerated {MAX_LENGTH_MISMATCH_FRAMES} frames apart)",
        )


def fit_audio(wave: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad a waveform to ``n`` samples."""
    if len(wave) >= n:
        return wave[:n]
    return np.concatenate([wave, np.zeros(n - len(wave), dtype=wave.dtype)])


@dataclass
class Conversation:
    name: str
    directory: Path
    audio: dict[int, Path] = field(default_factory=dict)  # speaker -> wav/flac
    motion: dict[int, Path] = field(default_factory=dict)  # speaker -> npz (may miss one side)

    def path(self, k: int, kind: str) -> Path:
        if kind == "audio":
            return self.audio.get(k, self.directory / f"{self.name}_speaker{k}.wav")
        return self.motion.get(k, self.directory / f"{self.name}_speaker{k}.npz")

    def generatable(self) -> list[int]:
        """Speakers that can be generated: their partner's motion exists."""
        return [k for k in (1, 2) if partner_speaker(k) in self.motion]


def discover_conversations(directory: str | os.PathLike, require_motion: str = "partner") -> list[Conversation]:
    """Index ``directory``. ``require_motion``: ``partner`` (at least one side has motion) or ``both``.

    Raises :class:`InputError` for a missing/empty directory, a file with a speaker other than 1 or 2,
    an audio file missing for either person, or (``both``) a missing motion file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, "data directory not found")
    convs: dict[str, Conversation] = {}
    for entry in sorted(directory.iterdir()):
        m = _NAME_RE.match(entry.name)
        if not m or not entry.is_file():
            continue
        k = int(m["k"])
        if k not in (1, 2):
            raise InputError(entry, f"speaker {k} is not 1 or 2 (files are NAME_speaker1/NAME_speaker2)")
        conv = convs.setdefault(m["name"], Conversation(m["name"], directory))
        if m["ext"] in AUDIO_SUFFIXES:
            if k in conv.audio:
                raise InputError(entry, f"second audio file for speaker {k} (also {conv.audio[k].name})")
            conv.audio[k] = entry
        else:
            conv.motion[k] = entry
    if not convs:
        raise InputError(directory, "no conversations found (expected NAME_speaker{1,2}.{wav,npz})")
    for conv in convs.values():
        for k in (1, 2):
            if k not in conv.audio:
                raise InputError(
                    conv.path(k, "audio"),
                    f"audio file not found (.{', .'.join(AUDIO_SUFFIXES)}; each conversation needs both speakers' "
                    "audio)",
                )
        if not conv.motion:
            raise InputError(conv.path(1, "motion"), "no motion file for either speaker of this conversation")
        if require_motion == "both":
            for k in (1, 2):
                if k not in conv.motion:
                    raise InputError(conv.path(k, "motion"), "motion file not found")
    return [convs[name] for name in sorted(convs)]


@dataclass
class GenerationInputs:
    """Everything the model needs to generate one person: arrays already aligned to T frames."""

    self_audio: np.ndarray  # (S,) float32, S = samples of the generated person's audio
    partner_audio: np.ndarray  # (S,) float32, fitted to the same length
    partner_motion: np.ndarray | None  # (T, D) model order, fitted to T; None: the partner's face unseen
    num_frames: int


def load_generation_inputs(
    self_audio, partner_audio, partner_motion, sample_rate: int = SAMPLE_RATE, fps: int = FPS, layout: str = "flame"
) -> GenerationInputs:
    """Read and check the input files of one generation (``partner_motion`` may be None: audio only);
    T comes from the self audio. ``layout``: the model's motion layout (a partner motion file of the other
    layout is an error naming it)."""
    from ..errors import DualTalkError

    for name, given in (
        ("self_audio", self_audio),
        ("partner_audio", partner_audio),
        ("partner_motion", partner_motion),
    ):
        if given is not None and not isinstance(given, (str, os.PathLike)):  # arrays: StreamingSession, run_model
            raise DualTalkError(
                f"{name} must be a file path, got {type(given).__name__} "
                "(for arrays: dualtalk.inference.pipeline.run_model)"
            )
    wav_b = load_audio(self_audio, sample_rate)
    wav_a = load_audio(partner_audio, sample_rate)
    t = num_frames(len(wav_b), sample_rate, fps)
    t_a = num_frames(len(wav_a), sample_rate, fps)
    if abs(t_a - t) > MAX_LENGTH_MISMATCH_FRAMES:  # either may be the wrong one: name both
        raise InputError(
            partner_audio,
            f"the partner audio is {len(wav_a) / sample_rate:.2f} s ({frames_text(t_a)}) but the self audio "
            f"{os.fspath(self_audio)} is {len(wav_b) / sample_rate:.2f} s ({frames_text(t)}): more than the tolerated "
            f"{MAX_LENGTH_MISMATCH_FRAMES} frames apart (the two sides of one conversation)",
        )
    motion = None
    if partner_motion is not None:
        # a layout .npz (whatever its name: a server's upload) or a model-order .npy (what `predict` writes)
        who = f"the model (motion_layout {layout!r})"
        if Path(partner_motion).suffix.lower() == ".npy":
            mot_a = motion_from_model(load_model_motion(partner_motion, layout, who), layout)
        else:
            mot_a = load_any_motion(partner_motion, layout, who)
        check_length(partner_motion, len(mot_a), t, "partner motion")
        motion = mot_a.fit_length(t).to_model()  # (T, D)
    return GenerationInputs(
        self_audio=wav_b,
        partner_audio=fit_audio(wav_a, len(wav_b)),
        partner_motion=motion,
        num_frames=t,
    )


__all__ = [
    "Conversation",
    "GenerationInputs",
    "MAX_LENGTH_MISMATCH_FRAMES",
    "check_length",
    "discover_conversations",
    "fit_audio",
    "load_generation_inputs",
    "num_frames",
    "partner_speaker",
]
