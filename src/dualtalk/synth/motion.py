"""The motion rules: each person's FLAME motion (model order, 56-d) as a sum of documented components.

Indices are model order ``[exp 0-49, jaw 50-52, global 53-55]``; see the table in :mod:`dualtalk.synth`.
Every component is a deterministic function of the conversation's plan (what both people say and when)
except ``idle``, which is random and is what no model can predict: the noise floor.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from .timeline import Segment, Syllables, envelope, pitch_deviation, segment_mask, vowel_track

FPS = 25
DIM = 56

# --- indices (model order) ---
EXP_OPEN, EXP_ROUND, EXP_SPREAD, EXP_SMILE = 0, 1, 2, 3
EXP_SECONDARY = slice(4, 20)
EXP_SMILE_SECONDARY = slice(20, 36)  # a smile moves more than one coefficient (as in FLAME's basis)
SMILE_DIMS = np.r_[EXP_SMILE, np.arange(EXP_SMILE_SECONDARY.start, EXP_SMILE_SECONDARY.stop)]  # exp 3, 20-35
JAW_OPEN = 50  # jaw rotation about x
PITCH, YAW, ROLL = 53, 54, 55  # global (head) rotation about x, y, z

# --- own speech (visible in the person's own audio) ---
JAW_REST = 0.02  # rad, the mouth is slightly open at rest
JAW_GAIN = 0.16  # rad at full openness and stress 1
OPEN_GAIN, ROUND_GAIN, SPREAD_GAIN = 1.8, 1.6, 1.2
SECONDARY_GAIN = 0.35
SECONDARY_SEED = 20250611  # fixed: the same loadings for every conversation
PROSODY_GAIN = 0.25  # rad per unit of relative f0 deviation
PROSODY_SMOOTH_FRAMES = 1.5  # gaussian sigma
# --- listening (visible in the partner's audio or motion) ---
NOD_DELAY = 0.3  # s after the partner's phrase end
NOD_SECONDS = 0.5
NOD_GAIN = 0.08  # rad (head pitch), peak at NOD_DELAY + NOD_SECONDS / 2 = 0.55 s
TURN_GAIN = 0.15  # rad of yaw toward the partner (who sits at every person's positive-yaw side)
TURN_TAU = 0.2  # s, one-pole lag of the head turn
MIRROR_GAIN = 0.8
SMILE_SECONDARY_GAIN = 0.6  # smile intensity -> exp 20-35 through fixed loadings
SMILE_SEED = 20251122  # fixed: the same smile pattern for every conversation
MIRROR_DELAY_FRAMES = 12  # 0.48 s
LISTEN_SMOOTH_FRAMES = 5  # moving average that softens the listening gate
# --- idle (random: the noise floor) ---
JITTER_STD = {"exp": 0.05, "jaw": 0.005, "pose": 0.006}
JITTER_SMOOTH_FRAMES = 1.5
DRIFT_STD = 0.03  # rad, slow head drift on the three global rotations
DRIFT_SMOOTH_FRAMES = 25.0
MOOD_STD = 0.25  # slow smile/frown on EXP_SMILE
MOOD_SMOOTH_FRAMES = 20.0

COMPONENTS = ("rest", "speech", "prosody", "nod", "turn", "mirror", "idle")


def secondary_loadings() -> np.ndarray:
    """(3, 16) fixed loadings of [open, round, spread] on exp 4-19 (speech moves many components)."""
    return np.random.default_rng(SECONDARY_SEED).normal(0.0, 1.0, size=(3, 16)) / np.sqrt(3.0)


def smile_pattern() -> np.ndarray:
    """(50,) how a smile of intensity 1 moves the expression: exp3 = 1, exp 20-35 = 0.6 x fixed loadings."""
    pattern = np.zeros(50)
    pattern[EXP_SMILE] = 1.0
    loadings = np.random.default_rng(SMILE_SEED).normal(0.0, 1.0, size=16)  # (16,)
    pattern[EXP_SMILE_SECONDARY] = SMILE_SECONDARY_GAIN * loadings / np.sqrt(np.mean(loadings**2))
    return pattern


def frame_times(num_frames: int, fps: int = FPS) -> np.ndarray:
    """Centre of each motion frame in seconds (frame n covers samples [640 n, 640 (n + 1)))."""
    return (np.arange(num_frames) + 0.5) / fps


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float, std: float) -> np.ndarray:
    """Gaussian-smoothed white noise with (expected) standard deviation ``std`` per column."""
    white = rng.standard_normal(shape)  # (T, C)
    impulse = np.zeros(int(8 * sigma) * 2 + 1)
    impulse[len(impulse) // 2] = 1.0
    norm = np.sqrt(np.sum(ndimage.gaussian_filter1d(impulse, sigma) ** 2))
    return std * ndimage.gaussian_filter1d(white, sigma, axis=0, mode="reflect") / norm


def listening(times: np.ndarray, segments: list[Segment], k: int) -> np.ndarray:
    """Listening weight L_k(t) in [0, 1]: 1 - (own phrase mask, moving average of 5 frames)."""
    own = segment_mask(times, segments, k, kinds=("phrase",))
    return 1.0 - ndimage.uniform_filter1d(own, LISTEN_SMOOTH_FRAMES, mode="nearest")


def idle_noise(num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The irreducible part: ((T, 56) jitter on everything + slow head drift, (T,) slow smile mood)."""
    idle = np.zeros((num_frames, DIM))
    idle[:, :50] = smooth_noise(rng, (num_frames, 50), JITTER_SMOOTH_FRAMES, JITTER_STD["exp"])
    idle[:, 50:53] = smooth_noise(rng, (num_frames, 3), JITTER_SMOOTH_FRAMES, JITTER_STD["jaw"])
    idle[:, 53:56] = smooth_noise(rng, (num_frames, 3), JITTER_SMOOTH_FRAMES, JITTER_STD["pose"])
    idle[:, 53:56] += smooth_noise(rng, (num_frames, 3), DRIFT_SMOOTH_FRAMES, DRIFT_STD)
    mood = smooth_noise(rng, (num_frames, 1), MOOD_SMOOTH_FRAMES, MOOD_STD)[:, 0]  # (T,) smile intensity
    return idle, mood


def own_components(times: np.ndarray, syl: Syllables) -> dict[str, np.ndarray]:
    """Components caused by the person's own speech: ``rest``, ``speech``, ``prosody`` (each (T, 56))."""
    t = len(times)
    env = envelope(times, syl)  # (T,)
    artic = np.stack([env * vowel_track(times, syl, c) for c in (3, 4, 5)], axis=1)  # (T, 3) open/round/spread
    rest = np.zeros((t, DIM))
    rest[:, JAW_OPEN] = JAW_REST
    speech = np.zeros((t, DIM))
    speech[:, EXP_OPEN] = OPEN_GAIN * artic[:, 0]
    speech[:, EXP_ROUND] = ROUND_GAIN * artic[:, 1]
    speech[:, EXP_SPREAD] = SPREAD_GAIN * artic[:, 2]
    speech[:, EXP_SECONDARY] = SECONDARY_GAIN * artic @ secondary_loadings()  # (T, 3) @ (3, 16)
    speech[:, JAW_OPEN] = JAW_GAIN * artic[:, 0]
    prosody = np.zeros((t, DIM))
    prosody[:, PITCH] = PROSODY_GAIN * ndimage.gaussian_filter1d(pitch_deviation(times, syl), PROSODY_SMOOTH_FRAMES)
    return {"rest": rest, "speech": speech, "prosody": prosody}


def listener_components(times: np.ndarray, segments: list[Segment], k: int) -> dict[str, np.ndarray]:
    """Components caused by the partner's speech: ``nod`` (phrase ends) and ``turn`` (yaw toward them)."""
    t = len(times)
    listen = listening(times, segments, k)  # (T,)
    nod = np.zeros((t, DIM))
    for s in segments:
        if s.speaker != k and s.kind == "phrase":
            u = (times - s.end - NOD_DELAY) / NOD_SECONDS
            inside = (u >= 0) & (u < 1)
            nod[inside, PITCH] += NOD_GAIN * np.sin(np.pi * u[inside])
    nod[:, PITCH] *= listen
    target = TURN_GAIN * segment_mask(times, segments, 3 - k, kinds=("phrase",)) * listen  # (T,)
    alpha = 1.0 - np.exp(-1.0 / (FPS * TURN_TAU))
    turn = np.zeros((t, DIM))
    turn[:, YAW] = signal.lfilter([alpha], [1.0, alpha - 1.0], target)
    return {"nod": nod, "turn": turn}


def mirrored_smiles(mood: dict[int, np.ndarray],
                    listen: dict[int, np.ndarray]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Mirrored smile intensities m_k[n] = g * L_k[n] * smile_partner[n - d] and the smiles (mood + mirror).

    Solved forward in blocks of d frames (each block depends only on the previous one).
    """
    d = MIRROR_DELAY_FRAMES
    t = len(mood[1])
    smile = {k: mood[k].copy() for k in (1, 2)}
    mirror = {k: np.zeros(t) for k in (1, 2)}
    for b in range(d, t, d):
        e = min(b + d, t)
        for k in (1, 2):
            mirror[k][b:e] = MIRROR_GAIN * listen[k][b:e] * smile[3 - k][b - d:e - d]
        for k in (1, 2):
            smile[k][b:e] += mirror[k][b:e]
    return mirror, smile


def build_motion(num_frames: int, segments: list[Segment], syllables: dict[int, Syllables],
                 rng: np.random.Generator) -> tuple[dict[int, dict[str, np.ndarray]], dict[int, np.ndarray]]:
    """All components of both people, ``{k: {component: (T, 56)}}`` (the motion is their sum), and each
    person's smile intensity ``{k: (T,)}`` (mood + mirror; it moves the expression by :func:`smile_pattern`)."""
    times = frame_times(num_frames)
    noise = {k: idle_noise(num_frames, rng) for k in (1, 2)}
    listen = {k: listening(times, segments, k) for k in (1, 2)}
    mirror, smiles = mirrored_smiles({k: noise[k][1] for k in (1, 2)}, listen)  # intensities (T,) each
    pattern = smile_pattern()  # (50,)
    out = {}
    for k in (1, 2):
        comp = own_components(times, syllables[k])
        comp.update(listener_components(times, segments, k))
        comp["mirror"] = np.zeros((num_frames, DIM))
        comp["mirror"][:, :50] = mirror[k][:, None] * pattern  # (T, 50)
        jitter, mood = noise[k]
        comp["idle"] = jitter
        comp["idle"][:, :50] += mood[:, None] * pattern  # (T, 50)
        out[k] = {name: comp[name] for name in COMPONENTS}
    return out, smiles
