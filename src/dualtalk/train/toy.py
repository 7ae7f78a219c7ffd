"""A tiny learnable corpus for tests and benchmarks of training (not a substitute for ``dualtalk synth``).

Two people take turns; a speaker's audio is a harmonic tone (its own pitch) whose loudness follows a
smooth speech envelope. The motion is a function of the audio: the speaker's mouth expression and jaw
follow their own loudness, a listening expression and head tilt follow the partner's loudness, plus a
shared resting face and a little noise; every dimension mixes the three drives. So a model can lower its
loss quickly, from either input.

    from dualtalk.train.toy import write_toy_corpus
    write_toy_corpus("toy", {"train": 6, "val": 2}, seconds=(3.0, 6.0))
    write_toy_corpus("toy-arkit", {"train": 6, "val": 2}, layout="arkit")   # ARKit motion, same rules

The ARKit corpus is the FLAME one mapped through a fixed linear map (:func:`toy_arkit_map`: weights in
[0, 1] after clipping, ``jawOpen`` following the jaw and the mouth-opening expression), the head rotation
kept: ``arkit`` (T, 52) and ``head`` (T, 3) files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.audio import save_audio
from ..io.motion import ArkitMotion, Motion, save_motion
from ..layout import ARKIT_NAMES, FPS, HEAD_ROT, JAW, MOTION_DIM, N_ARKIT, SAMPLE_RATE, SAMPLES_PER_FRAME, frames_for


def toy_arkit_map():
    """The fixed FLAME -> ARKit :class:`~dualtalk.export.arkit.ArkitMap` of the toy ARKit corpus: every name
    a small random mix of the 56 inputs around 0.3, ``jawOpen`` = 0.1 + 2 jaw_x + 0.3 exp00."""
    from ..export.arkit import ArkitMap

    rng = np.random.default_rng(5678)
    amap = ArkitMap(rng.normal(0.0, 0.05, (N_ARKIT, MOTION_DIM)), np.full(N_ARKIT, 0.3), np.ones(N_ARKIT, bool))
    jaw_open = ARKIT_NAMES.index("jawOpen")
    amap.weights[jaw_open] = 0.0
    amap.weights[jaw_open, JAW.start], amap.weights[jaw_open, 0], amap.bias[jaw_open] = 2.0, 0.3, 0.1
    return amap


def _envelopes(frames: int, rng: np.random.Generator) -> np.ndarray:
    """(2, T) speech loudness in [0, 1] for two people taking turns."""
    env = np.zeros((2, frames))
    t, who = 0, int(rng.integers(2))
    while t < frames:
        n = int(rng.integers(15, 45))
        env[who, t : t + n] = rng.uniform(0.5, 1.0)
        t += n
        who = 1 - who
    syll = 0.5 + 0.5 * np.sin(np.arange(frames) * 2 * np.pi * 4 / FPS)  # ~4 syllables per second
    kernel = np.hanning(7) / np.hanning(7).sum()
    return np.stack([np.convolve(e * syll, kernel, mode="same") for e in env])  # (2, T)


def write_conversation(
    directory: Path, name: str, seconds: float, rng: np.random.Generator, layout: str = "flame"
) -> None:
    samples = int(seconds * SAMPLE_RATE)
    frames = frames_for(samples)
    env = _envelopes(frames, rng)  # (2, T)
    mix = np.random.default_rng(1234).normal(0, 0.4, (3, MOTION_DIM))  # the same face "rig" for every corpus
    base = np.random.default_rng(4321).normal(0, 0.3, MOTION_DIM)  # the same resting face
    time_s = np.arange(samples) / SAMPLE_RATE
    for k in (0, 1):
        f0 = (120.0, 210.0)[k] * rng.uniform(0.9, 1.1)
        tone = sum(np.sin(2 * np.pi * f0 * h * time_s) / h for h in (1, 2, 3))
        loud = np.repeat(env[k], SAMPLES_PER_FRAME)[:samples]
        wave = 0.3 * loud * tone + 0.003 * rng.normal(size=samples)
        save_audio(directory / f"{name}_speaker{k + 1}.wav", wave.astype(np.float32))
        slow = np.convolve(env[k], np.ones(13) / 13, mode="same")  # (T,) recent speaking
        drive = np.stack([env[k], env[1 - k], slow], axis=1)  # (T, 3)
        x = base + drive @ mix + 0.02 * rng.normal(size=(frames, MOTION_DIM))  # (T, 56) model order
        x[:, 0] += 1.5 * env[k]  # mouth opening expression
        x[:, JAW.start] += 0.3 * env[k]  # jaw opening
        x[:, HEAD_ROT.start] += 0.2 * env[1 - k]  # head turns towards the speaker
        motion = Motion.from_model(x.astype(np.float32))
        if layout == "arkit":
            from ..export.arkit import flame_to_arkit

            save_motion(
                directory / f"{name}_speaker{k + 1}.npz",
                ArkitMotion(flame_to_arkit(motion, toy_arkit_map()), motion.global_rot),
            )
        else:
            save_motion(directory / f"{name}_speaker{k + 1}.npz", motion)


def write_toy_corpus(
    root: str | os.PathLike, splits: dict[str, int], seconds=(3.0, 6.0), seed: int = 0, layout: str = "flame"
) -> Path:
    """``root/<split>/convNNN_speaker{1,2}.{wav,npz}``; ``seconds``: (shortest, longest) duration; ``layout``:
    ``flame`` or ``arkit`` motion files."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for split, count in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            write_conversation(root / split, f"{split}{i:03d}", float(rng.uniform(*seconds)), rng, layout)
    return root
