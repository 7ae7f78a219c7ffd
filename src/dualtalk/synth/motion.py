"""The motion rules: each person's FLAME motion (model order, 56-d) as a sum of documented components.

Indices are model order ``[exp 0-49, jaw 50-52, global 53-55]``; see the table in :mod:`dualtalk.synth`.
Speech components (``rest``, ``speech``, ``prosody``) follow the person's own syllables; each listening
cause of the scenario (:mod:`.causes`) adds one component named after it; ``idle`` is random and is what no
model can predict. A cause's component also holds the person's own spontaneous activations of that
expression, which no input predicts unless they are audible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from .. import layout  # module, not names: every upper-case name here is a parameter in the manifest
from .causes import PITCH, ROLL, YAW, IdleSpec, ListeningCause, Scenario  # noqa: F401 (ROLL, YAW: re-exported)
from .timeline import Segment, Syllables, envelope, pitch_deviation, segment_mask, vowel_track

FPS = layout.FPS  # 25
DIM = layout.MOTION_DIM  # 56

# --- indices (model order, :mod:`dualtalk.layout`) ---
EXP_OPEN, EXP_ROUND, EXP_SPREAD = 0, 1, 2
EXP_SECONDARY = slice(4, 20)
JAW_OPEN = layout.JAW.start  # 50, jaw rotation about x
# PITCH, YAW, ROLL = 53, 54, 55: global (head) rotation about x, y, z (from .causes, whose causes use them too)

# --- own speech (visible in the person's own audio) ---
JAW_REST = 0.02  # rad, the mouth is slightly open at rest
JAW_GAIN = 0.16  # rad at full openness and stress 1
OPEN_GAIN, ROUND_GAIN, SPREAD_GAIN = 1.8, 1.6, 1.2
SECONDARY_GAIN = 0.35
SECONDARY_SEED = 20250611  # fixed: the same loadings for every conversation
PROSODY_GAIN = 0.25  # rad per unit of relative f0 deviation
PROSODY_SMOOTH_FRAMES = 1.5  # gaussian sigma
# --- listening: see .causes (the scenario) ---
LISTEN_SMOOTH_FRAMES = 5  # moving average that softens the listening gate
OWN_INTENSITY = (0.4, 1.0)  # intensity of one spontaneous activation / laugh
LAUGH_SECONDS = (0.8, 1.6)  # length of one laugh (a partner_event carried by audio)

#: components every conversation has (each listening cause adds one, named after it)
SPEECH_COMPONENTS = ("rest", "speech", "prosody")


def secondary_loadings() -> np.ndarray:
    """(3, 16) fixed loadings of [open, round, spread] on exp 4-19 (speech moves many components)."""
    return np.random.default_rng(SECONDARY_SEED).normal(0.0, 1.0, size=(3, 16)) / np.sqrt(3.0)


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


def idle_noise(num_frames: int, rng: np.random.Generator, idle: IdleSpec) -> np.ndarray:
    """The irreducible part: (T, 56) smoothed jitter on everything + slow head drift."""
    out = np.zeros((num_frames, DIM))
    sigma = idle.jitter_smooth_frames
    head = layout.HEAD_ROT
    for part, std in (
        (layout.EXP, idle.jitter_std_exp),
        (layout.JAW, idle.jitter_std_jaw),
        (head, idle.jitter_std_pose),
    ):
        out[:, part] = smooth_noise(rng, (num_frames, part.stop - part.start), sigma, std)
    out[:, head] += smooth_noise(rng, (num_frames, head.stop - head.start), idle.drift_smooth_frames, idle.drift_std)
    return out


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


def draw_events(
    rng: np.random.Generator, seconds: float, rate_per_minute: float, length: tuple[float, float]
) -> np.ndarray:
    """Poisson events over a conversation: (N, 3) rows of (start s, length s, intensity)."""
    n = int(rng.poisson(rate_per_minute * seconds / 60.0)) if rate_per_minute > 0 else 0
    out = (
        np.stack([rng.uniform(-length[0], seconds, n), rng.uniform(*length, n), rng.uniform(*OWN_INTENSITY, n)], axis=1)
        if n
        else np.zeros((0, 3))
    )
    return out[np.argsort(out[:, 0])]


def bump_train(times: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Sum of intensity x sin(pi u) over each event, u = (t - start) / length in [0, 1). (T,)"""
    out = np.zeros(times.shape)
    for start, length, amp in events:
        u = (times - start) / length
        inside = (u >= 0) & (u < 1)
        out[inside] += amp * np.sin(np.pi * u[inside])
    return out


def expected_bump(rate_per_minute: float, length: tuple[float, float]) -> float:
    """Time-average of a bump train: rate x mean length x mean intensity x 2 / pi."""
    return rate_per_minute / 60.0 * np.mean(length) * np.mean(OWN_INTENSITY) * 2.0 / np.pi


@dataclass
class Activity:
    """The random events of one person in one conversation (drawn once, used by every rule)."""

    own: dict[str, np.ndarray]  # cause name -> (N, 3) spontaneous activations of that expression
    laughs: dict[str, np.ndarray]  # cause name -> (N, 3) laughs (the driver of an audio-carried cause)

    def audible(self, scenario: Scenario) -> np.ndarray:
        """(N, 3) every event of this person that makes a sound: laughs, and own activations of ``both`` causes."""
        rows = [self.laughs[c.name] for c in scenario.causes if c.name in self.laughs]
        rows += [self.own[c.name] for c in scenario.causes if c.audible_own]
        return np.concatenate(rows) if rows else np.zeros((0, 3))


def draw_activity(rng: np.random.Generator, seconds: float, scenario: Scenario) -> Activity:
    own, laughs = {}, {}
    for c in scenario.causes:
        own[c.name] = draw_events(rng, seconds, c.own_rate, c.own_seconds)
        if c.driver == "partner_event" and c.carrier == "audio":
            laughs[c.name] = draw_events(rng, seconds, c.laugh_rate, LAUGH_SECONDS)
    return Activity(own, laughs)


def driver(
    times: np.ndarray, cause: ListeningCause, segments: list[Segment], partner: int, partner_activity: Activity
) -> np.ndarray:
    """What the listener responds to, delayed by ``cause.delay``: r(t) before the listening gate. (T,)"""
    t = times - cause.delay
    if cause.driver == "phrase_end":
        ends = np.array([[s.end, cause.duration, 1.0] for s in segments if s.speaker == partner and s.kind == "phrase"])
        return bump_train(t, ends.reshape(-1, 3))
    if cause.driver == "partner_speaking":
        talking = segment_mask(t, segments, partner, kinds=("phrase",))
        alpha = 1.0 - np.exp(-1.0 / (FPS * cause.duration))
        return signal.lfilter([alpha], [1.0, alpha - 1.0], talking)
    events = partner_activity.laughs[cause.name] if cause.carrier == "audio" else partner_activity.own[cause.name]
    return bump_train(t, events)


def compose(own: np.ndarray | float, response: np.ndarray, how: str) -> np.ndarray:
    return own + response if how == "add" else np.maximum(own, response)


def listener_components(
    times: np.ndarray, segments: list[Segment], k: int, scenario: Scenario, activity: dict[int, Activity]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each cause's motion of person ``k`` (T, 56), the part an oracle predicts (T, 56), the gated response (T,).

    intensity = compose(own activations, L_k x driver); motion[targets] = intensity x peak. The oracle
    knows every rule and input but not the silent own activations: it uses their mean instead.
    """
    listen = listening(times, segments, k)  # (T,)
    comps, oracle, responses = {}, {}, {}
    for c in scenario.causes:
        response = listen * driver(times, c, segments, 3 - k, activity[3 - k])  # (T,)
        own = bump_train(times, activity[k].own[c.name])  # (T,)
        known = own if c.audible_own else expected_bump(c.own_rate, c.own_seconds)
        peak = c.peak(scenario.idle)  # (n,)
        comps[c.name] = np.zeros((len(times), DIM))
        comps[c.name][:, c.targets] = compose(own, response, c.composition)[:, None] * peak
        oracle[c.name] = np.zeros((len(times), DIM))
        oracle[c.name][:, c.targets] = compose(known, response, c.composition)[:, None] * peak
        responses[c.name] = response
    return comps, oracle, responses


@dataclass
class MotionTruth:
    """Both people's motion components and what the rules know about them."""

    components: dict[int, dict[str, np.ndarray]]  # person -> component -> (T, 56); the motion is their sum
    oracle: dict[int, np.ndarray]  # person -> (T, 56) what an oracle knowing every rule predicts
    responses: dict[int, dict[str, np.ndarray]]  # person -> cause -> (T,) gated response to the partner
    listening: dict[int, np.ndarray]  # person -> (T,) listening weight L


def build_motion(
    num_frames: int,
    segments: list[Segment],
    syllables: dict[int, Syllables],
    scenario: Scenario,
    activity: dict[int, Activity],
    rng: np.random.Generator,
) -> MotionTruth:
    """All components of both people: speech (own audio), one per listening cause, idle."""
    times = frame_times(num_frames)
    out, oracle, responses, listen = {}, {}, {}, {}
    for k in (1, 2):
        comp = own_components(times, syllables[k])
        known = sum(comp.values())
        causes, predicted, responses[k] = listener_components(times, segments, k, scenario, activity)
        comp.update(causes)
        comp["idle"] = idle_noise(num_frames, rng, scenario.idle)
        out[k] = comp
        oracle[k] = known + sum(predicted.values(), np.zeros((num_frames, DIM)))
        listen[k] = listening(times, segments, k)
    return MotionTruth(out, oracle, responses, listen)
