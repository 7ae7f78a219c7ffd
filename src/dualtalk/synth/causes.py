"""Listening causes: what makes a listener move, in a form that can be drawn at random.

A *scenario* is the set of rules a corpus follows beyond speech: its listening causes and its idle noise.
``standard`` is the documented fixed set (nod after the partner's phrases, head turn toward the speaking
partner, mirrored smile); ``random`` draws a new set from a seed, so that a method can be tested on
causes it was not tuned on:

============  =====================================================================================
field         what is drawn (``random``)
============  =====================================================================================
driver        ``phrase_end`` (the partner stops talking), ``partner_speaking`` (while the partner talks)
              or ``partner_event`` (a signal of the partner's: an expression or a laugh)
carrier       which of the partner's signals carries a ``partner_event``: ``motion`` (the partner's own
              expression on the same coefficients: a mirror), ``audio`` (a laugh, invisible in the
              partner's face) or ``both`` (the expression comes with a laugh). Speech drivers are carried
              by the partner's voice (``audio``; the partner's jaw shows it too)
targets       the listener's coefficients the response moves (model order): one, or a pattern of 4-12
              with fixed signed loadings (unit RMS); expression (exp 3, 20-49) or head rotation
delay         0.2-1.0 s from the driver to the response
duration      0.4-1.2 s, the length of one ``phrase_end`` response; for ``partner_speaking`` the lag's time
              constant (0.1-0.4 s); a ``partner_event`` response has the shape of the partner's event
amplitude     3-6 x the idle noise's std of the target coefficients, at full intensity
composition   ``add`` (own + response) or ``max`` (the larger of the two: a face saturates)
own_rate      2-6 per minute: the person's own, spontaneous activations of the same expression (events per minute):
              unpredictable from any input unless they are audible (carrier ``both``)
============  =====================================================================================

The idle noise of ``random`` scenarios is drawn too (smoothing, std of expression jitter, head jitter and
drift). Everything is recorded in the corpus manifest (``scenario``) and can be read back with
:meth:`Scenario.from_dict`, or written by hand and passed as ``dualtalk synth --causes FILE.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import DualTalkError, InputError
from ..layout import HEAD_ROT, JAW, MOTION_DIM, N_EXP

DRIVERS = ("phrase_end", "partner_speaking", "partner_event")
CARRIERS = ("audio", "motion", "both")
COMPOSITIONS = ("add", "max")
#: ranges of a random scenario: peak response / idle std, spontaneous activations and laughs per minute
AMPLITUDE = (3.0, 6.0)
OWN_RATE = (2.0, 6.0)
LAUGH_RATE = (4.0, 10.0)
DELAY = (0.2, 1.0)
#: coefficients no speech rule moves (model order): where listening causes may act
FREE_EXP = (3,) + tuple(range(20, N_EXP))
FREE_POSE = tuple(range(HEAD_ROT.start, HEAD_ROT.stop))  # (53, 54, 55): head pitch, yaw, roll
PITCH, YAW, ROLL = FREE_POSE  # global (head) rotation about x, y, z


@dataclass
class IdleSpec:
    """The random, unpredictable part of the motion (the noise floor)."""

    jitter_std_exp: float = 0.05
    jitter_std_jaw: float = 0.005
    jitter_std_pose: float = 0.006
    jitter_smooth_frames: float = 1.5  # gaussian sigma
    drift_std: float = 0.03  # rad, slow head drift on the three global rotations
    drift_smooth_frames: float = 25.0

    def std(self, dim: int) -> float:
        """Standard deviation of the idle noise of one model-order coefficient."""
        if dim < JAW.start:
            return self.jitter_std_exp
        if dim < HEAD_ROT.start:
            return self.jitter_std_jaw
        return float(np.hypot(self.jitter_std_pose, self.drift_std))


@dataclass
class ListeningCause:
    """One rule: the listener's ``targets`` respond to the partner's ``driver`` after ``delay``."""

    name: str
    driver: str
    carrier: str
    targets: list[int]
    loadings: list[float]
    delay: float
    duration: float
    amplitude: float
    composition: str = "add"
    own_rate: float = 0.0  # spontaneous activations of the same expression, per minute
    own_seconds: tuple[float, float] = (1.0, 2.5)  # length of one spontaneous activation
    laugh_rate: float = 0.0  # carrier audio: the partner's laughs per minute (the driver)

    def validate(self) -> ListeningCause:
        where = f"cause {self.name!r}"
        if self.driver not in DRIVERS:
            raise DualTalkError(f"{where}: driver must be one of {', '.join(DRIVERS)}, not {self.driver!r}")
        if self.carrier not in CARRIERS:
            raise DualTalkError(f"{where}: carrier must be one of {', '.join(CARRIERS)}, not {self.carrier!r}")
        if self.driver != "partner_event" and self.carrier != "audio":
            raise DualTalkError(f"{where}: a {self.driver} cause is carried by the partner's voice (carrier audio)")
        if self.composition not in COMPOSITIONS:
            raise DualTalkError(f"{where}: composition must be add or max, not {self.composition!r}")
        if not self.targets or len(self.targets) != len(self.loadings):
            raise DualTalkError(f"{where}: targets and loadings must be non-empty lists of the same length")
        if any(
            not 0 <= int(t) < MOTION_DIM
            or (int(t) < N_EXP and int(t) not in FREE_EXP)
            or JAW.start <= int(t) < JAW.stop
            for t in self.targets
        ):
            raise DualTalkError(f"{where}: targets must be free coefficients (exp 3, 20-49 or head rotation 53-55)")
        if not (0.0 <= self.delay <= 5.0 and 0.04 <= self.duration <= 10.0 and self.amplitude >= 0.0):
            raise DualTalkError(f"{where}: delay must be in [0, 5] s, duration in [0.04, 10] s, amplitude >= 0")
        if self.own_rate < 0 or self.laugh_rate < 0:
            raise DualTalkError(f"{where}: rates must be >= 0")
        if self.driver == "partner_event" and self.carrier == "audio" and self.laugh_rate <= 0:
            raise DualTalkError(f"{where}: an audio-carried partner_event needs laugh_rate > 0")
        if self.driver == "partner_event" and self.carrier != "audio" and self.own_rate <= 0:
            raise DualTalkError(
                f"{where}: a partner_event shown in motion needs own_rate > 0 (the partner's "
                "own activations are what the listener mirrors)"
            )
        return self

    @property
    def audible_own(self) -> bool:
        """The person's own activations come with a laugh (so their own audio reveals them)."""
        return self.driver == "partner_event" and self.carrier == "both"

    def peak(self, idle: IdleSpec) -> np.ndarray:
        """Displacement of each target at intensity 1: amplitude x idle std x loading. (len(targets),)"""
        return np.array([self.amplitude * idle.std(int(t)) * w for t, w in zip(self.targets, self.loadings)])


@dataclass
class Scenario:
    """The listening causes and the idle noise of a corpus."""

    name: str = "standard"
    causes: list[ListeningCause] = field(default_factory=list)
    idle: IdleSpec = field(default_factory=IdleSpec)

    def validate(self) -> Scenario:
        seen: set[int] = set()
        names = [c.name for c in self.causes]
        if len(set(names)) != len(names):
            raise DualTalkError(f"scenario {self.name!r}: cause names must be unique")
        for c in self.causes:
            c.validate()
            overlap = seen & set(int(t) for t in c.targets)
            if overlap:
                raise DualTalkError(f"scenario {self.name!r}: coefficient {min(overlap)} is the target of two causes")
            seen |= set(int(t) for t in c.targets)
        return self

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict, where: str = "scenario") -> Scenario:
        if not isinstance(data, dict):
            raise DualTalkError(f"{where}: expected a mapping")
        try:
            causes = []
            for c in data.get("causes", []):
                c = dict(c)
                if "own_seconds" in c:
                    c["own_seconds"] = tuple(float(v) for v in c["own_seconds"])
                c["targets"] = [int(v) for v in c["targets"]]
                c["loadings"] = [float(v) for v in c["loadings"]]
                causes.append(ListeningCause(**c))
            idle = IdleSpec(**data.get("idle", {}))
            unknown = set(data) - {"name", "causes", "idle"}
            if unknown:
                raise TypeError(f"unknown key(s) {', '.join(sorted(unknown))}")
            return cls(name=str(data.get("name", "custom")), causes=causes, idle=idle).validate()
        except (TypeError, ValueError, KeyError) as exc:
            raise DualTalkError(f"{where}: not a valid scenario ({exc})") from None


def smile_loadings() -> list[float]:
    """The standard smile: exp 3 at 1, exp 20-35 at 0.6 x fixed loadings (unit RMS over those 16)."""
    w = np.random.default_rng(20251122).normal(0.0, 1.0, size=16)
    w = 0.6 * w / np.sqrt(np.mean(w**2))
    return [1.0] + [float(v) for v in w]


def standard() -> Scenario:
    """The documented fixed causes (README's table): nod, head turn, mirrored smile."""
    idle = IdleSpec()
    pitch_std, exp_std = idle.std(PITCH), idle.std(3)
    return Scenario(
        "standard",
        [
            # nod: head pitch +0.08 rad, sin(pi u) over [end + 0.3 s, end + 0.8 s] after each partner phrase
            ListeningCause(
                "nod", "phrase_end", "audio", [PITCH], [1.0], delay=0.3, duration=0.5, amplitude=0.08 / pitch_std
            ),
            # head turn toward the talking partner: 0.15 rad of yaw, one-pole lag of 0.2 s
            ListeningCause(
                "turn",
                "partner_speaking",
                "audio",
                [YAW],
                [1.0],
                delay=0.0,
                duration=0.2,
                amplitude=0.15 / idle.std(YAW),
            ),
            # mirrored smile: the partner's smiles, 0.48 s later, on exp 3 and exp 20-35 (peak exp 3: 0.5)
            ListeningCause(
                "smile",
                "partner_event",
                "motion",
                [3] + list(range(20, 36)),
                smile_loadings(),
                delay=0.48,
                duration=1.0,
                amplitude=0.5 / exp_std,
                composition="add",
                own_rate=6.0,
                own_seconds=(0.8, 2.5),
            ),
        ],
        idle,
    ).validate()


def random_scenario(seed: int, amplitude: tuple[float, float] = AMPLITUDE) -> Scenario:
    """A scenario drawn from ``seed``: 3 or 4 causes (one per driver, two partner events with different
    carriers), disjoint targets, random delays, amplitudes, compositions and idle noise.

    ``amplitude``: the range each cause's amplitude is drawn from (x the idle std of its targets). Every other
    draw is the same whatever the range (one uniform number per cause maps into it), so ``(1, 2)`` gives the
    same corpus plan with weaker causes: how weak a cause the recipe still learns."""
    lo, hi = (float(a) for a in amplitude)
    if not 0.0 < lo <= hi:
        raise DualTalkError(f"amplitude range must be 0 < low <= high, got {lo:g}, {hi:g}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7_700_001]))
    idle = IdleSpec(
        jitter_std_exp=float(rng.uniform(0.03, 0.08)),
        jitter_std_jaw=float(rng.uniform(0.003, 0.008)),
        jitter_std_pose=float(rng.uniform(0.004, 0.01)),
        jitter_smooth_frames=float(rng.uniform(1.0, 3.0)),
        drift_std=float(rng.uniform(0.01, 0.04)),
        drift_smooth_frames=float(rng.uniform(15.0, 40.0)),
    )
    free_exp, free_pose = list(FREE_EXP), list(FREE_POSE)
    carriers = list(rng.permutation(CARRIERS)[:2])
    plan = [("phrase_end", "audio"), ("partner_event", carriers[0]), ("partner_event", carriers[1])]
    if rng.random() < 0.5:
        plan.append(("partner_speaking", "audio"))
    causes = []
    for i, (driver, carrier) in enumerate(plan):
        pose = bool(free_pose) and rng.random() < (0.6 if driver != "partner_event" else 0.2)
        if pose:
            targets = [int(free_pose.pop(int(rng.integers(len(free_pose)))))]
        else:
            n = 1 if rng.random() < 0.5 else int(rng.integers(4, 13))
            idx = sorted(rng.choice(len(free_exp), size=n, replace=False).tolist(), reverse=True)
            targets = sorted(int(free_exp.pop(j)) for j in idx)
        if len(targets) == 1:
            loadings = [float(rng.choice([-1.0, 1.0]))]
        else:
            w = rng.normal(size=len(targets))
            loadings = [float(v) for v in w / np.sqrt(np.mean(w**2))]
        duration = float(rng.uniform(0.4, 1.2)) if driver != "partner_speaking" else float(rng.uniform(0.1, 0.4))
        causes.append(
            ListeningCause(
                name=f"{driver}_{i + 1}",
                driver=driver,
                carrier=carrier,
                targets=targets,
                loadings=loadings,
                delay=round(float(rng.uniform(*DELAY)), 3),
                duration=round(duration, 3),
                amplitude=round(float(rng.uniform(lo, hi)), 3),
                composition=str(rng.choice(COMPOSITIONS)),
                own_rate=round(float(rng.uniform(*OWN_RATE)), 3),
                laugh_rate=round(float(rng.uniform(*LAUGH_RATE)), 3)
                if (driver, carrier) == ("partner_event", "audio")
                else 0.0,
            )
        )
    return Scenario(f"random:{int(seed)}", causes, idle).validate()


def resolve(spec, seed: int = 0) -> Scenario:
    """``"standard"``, ``"random"`` (drawn from ``seed``), a :class:`Scenario`, a mapping or a JSON file."""
    if isinstance(spec, Scenario):
        return spec.validate()
    if spec is None or spec == "standard":
        return standard()
    if spec == "random":
        return random_scenario(seed)
    if isinstance(spec, dict):
        return Scenario.from_dict(spec)
    path = os.fspath(spec)
    if not os.path.isfile(path):
        raise DualTalkError(f"--causes must be standard, random or a scenario JSON file; {path!r} is none of these")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable JSON file ({exc})") from None
    try:
        return Scenario.from_dict(data.get("scenario", data) if isinstance(data, dict) else data, where=path)
    except DualTalkError as exc:
        raise InputError(path, str(exc).split(": ", 1)[-1]) from None
