"""Who speaks when: the turn-taking plan of a synthetic conversation (syllables, phrases, backchannels).

A conversation alternates *turns*. A turn is 1-3 *phrases* of one person separated by short pauses
(0.25-0.6 s); a phrase is 3-10 contiguous *syllables* of 0.16-0.28 s (4-6 syllables per second), each
with a vowel (a e i o u) and a stress; about 30 % of syllables carry a pitch accent. Between turns there
is a gap of 0.3-1.0 s or, one time in five, an overlap of 0.2-0.5 s (the next person starts before the
current one has finished). In a pause inside a turn the listener says a backchannel ("mm", one or two
syllables of the closed vowel ``m``) with probability 0.5, 0.1-0.25 s after the phrase ended.

Everything here is plain Python over a few dozen events per minute; the per-sample / per-frame signals
are built from these arrays in :mod:`.voice` and :mod:`.motion` with vectorised numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: vowel inventory: formants (Hz, an adult low voice; the high voice scales them) and articulation
#: (jaw/mouth openness, lip rounding, lip spreading), all in [0, 1]
VOWELS = {
    #     F1    F2    F3    open  round spread
    "a": (730, 1090, 2440, 1.00, 0.00, 0.20),
    "e": (530, 1840, 2480, 0.60, 0.00, 0.60),
    "i": (270, 2290, 3010, 0.25, 0.00, 1.00),
    "o": (570, 840, 2410, 0.65, 0.80, 0.00),
    "u": (300, 870, 2240, 0.30, 1.00, 0.00),
    "m": (250, 1100, 2300, 0.05, 0.30, 0.00),  # backchannel "mm": nearly closed mouth
}
VOWEL_NAMES = list(VOWELS)
SPEECH_VOWELS = "aeiou"
VOWEL_TABLE = np.array([VOWELS[v] for v in VOWEL_NAMES], dtype=np.float64)  # (V, 6)

SYLLABLE_SECONDS = (0.16, 0.28)
PHRASE_SYLLABLES = (3, 10)
PHRASES_PER_TURN = (1, 3)
PAUSE_SECONDS = (0.25, 0.6)
GAP_SECONDS = (0.3, 1.0)
OVERLAP_PROB = 0.2
OVERLAP_SECONDS = (0.2, 0.5)
BACKCHANNEL_PROB = 0.5
BACKCHANNEL_DELAY = (0.1, 0.25)
ACCENT_PROB = 0.3


@dataclass
class Segment:
    """One stretch of voice: a ``phrase`` (part of a turn) or a ``backchannel``."""

    speaker: int
    start: float
    end: float
    kind: str  # "phrase" | "backchannel"

    def to_dict(self) -> dict:
        return {"speaker": self.speaker, "start": round(self.start, 4), "end": round(self.end, 4), "kind": self.kind}


@dataclass
class Syllables:
    """All syllables of one person, sorted by time and never overlapping."""

    start: np.ndarray  # (N,) seconds
    dur: np.ndarray  # (N,) seconds
    vowel: np.ndarray  # (N,) index into VOWEL_NAMES
    stress: np.ndarray  # (N,) amplitude in (0, 1]
    accent: np.ndarray  # (N,) 1.0 where the syllable carries a pitch accent
    phrase_start: np.ndarray  # (N,) start of the syllable's phrase / backchannel (declination)
    phrase_end: np.ndarray  # (N,)

    @property
    def end(self) -> np.ndarray:
        return self.start + self.dur

    def transcript(self, t0: float = 0.0, t1: float = np.inf) -> str:
        """The vowels (``VOWEL_NAMES``) of the syllables whose centre lies in [t0, t1) seconds, in order."""
        centre = self.start + self.dur / 2
        inside = (centre >= t0) & (centre < t1)
        return "".join(VOWEL_NAMES[int(v)] for v in self.vowel[inside])


def plan_conversation(seconds: float, rng: np.random.Generator) -> tuple[list[Segment], dict[int, Syllables]]:
    """Draw the turn-taking plan: segments (sorted by start) and each person's syllables."""
    sylls: dict[int, list[tuple]] = {1: [], 2: []}
    segments: list[Segment] = []
    limit = seconds - 0.1

    def add_segment(k: int, t0: float, n: int, kind: str) -> float | None:
        """Add ``n`` syllables from ``t0`` (those that fit before the end); return the end time."""
        durs = rng.uniform(*SYLLABLE_SECONDS, size=n)
        if kind == "phrase":
            vowels = rng.choice([VOWEL_NAMES.index(v) for v in SPEECH_VOWELS], size=n)
            accent = (rng.random(n) < ACCENT_PROB).astype(float)
            stress = np.where(accent > 0, 1.0, rng.uniform(0.55, 0.85, size=n))
        else:
            vowels = np.full(n, VOWEL_NAMES.index("m"))
            accent = np.zeros(n)
            stress = rng.uniform(0.35, 0.5, size=n)
        starts = t0 + np.concatenate([[0.0], np.cumsum(durs)[:-1]])
        keep = starts + durs <= limit
        if not keep.any():
            return None
        starts, durs, vowels, accent, stress = starts[keep], durs[keep], vowels[keep], accent[keep], stress[keep]
        t1 = float(starts[-1] + durs[-1])
        for s, d, v, a, st in zip(starts, durs, vowels, accent, stress):
            sylls[k].append((s, d, v, st, a, t0, t1))
        segments.append(Segment(k, float(t0), t1, kind))
        return t1

    t = float(rng.uniform(0.2, 0.8))
    cur = int(rng.integers(1, 3))
    while t < limit:
        n_phrases = int(rng.integers(PHRASES_PER_TURN[0], PHRASES_PER_TURN[1] + 1))
        end = t
        for p in range(n_phrases):
            n = int(rng.integers(PHRASE_SYLLABLES[0], PHRASE_SYLLABLES[1] + 1))
            got = add_segment(cur, t, n, "phrase")
            if got is None:
                t = limit
                break
            end = got
            t = end
            if p < n_phrases - 1:
                pause = float(rng.uniform(*PAUSE_SECONDS))
                if rng.random() < BACKCHANNEL_PROB:
                    add_segment(
                        3 - cur, end + float(rng.uniform(*BACKCHANNEL_DELAY)), int(rng.integers(1, 3)), "backchannel"
                    )
                t = end + pause
        if rng.random() < OVERLAP_PROB:
            t = end - float(rng.uniform(*OVERLAP_SECONDS))
        else:
            t = end + float(rng.uniform(*GAP_SECONDS))
        cur = 3 - cur
        # the next person may overlap only the end of the last phrase, never their own backchannel
        own = [s.end for s in segments if s.speaker == cur]
        if own:
            t = max(t, max(own) + 0.05)
    segments.sort(key=lambda s: (s.start, s.speaker))
    out = {}
    for k in (1, 2):
        rows = sorted(sylls[k])
        arr = np.array(rows, dtype=np.float64).reshape(-1, 7)  # (N, 7)
        out[k] = Syllables(
            start=arr[:, 0],
            dur=arr[:, 1],
            vowel=arr[:, 2].astype(int),
            stress=arr[:, 3],
            accent=arr[:, 4],
            phrase_start=arr[:, 5],
            phrase_end=arr[:, 6],
        )
    return segments, out


def syllable_shape(times: np.ndarray, syl: Syllables) -> tuple[np.ndarray, np.ndarray]:
    """For each time: (index of the syllable containing it or -1, position inside it in [0, 1))."""
    idx = np.searchsorted(syl.start, times, side="right") - 1  # (N,)
    safe = np.clip(idx, 0, max(len(syl.start) - 1, 0))
    if len(syl.start) == 0:
        return np.full(times.shape, -1), np.zeros(times.shape)
    u = (times - syl.start[safe]) / syl.dur[safe]
    inside = (idx >= 0) & (u >= 0) & (u < 1)
    return np.where(inside, idx, -1), np.where(inside, u, 0.0)


def envelope(times: np.ndarray, syl: Syllables) -> np.ndarray:
    """Syllable-rate amplitude envelope: stress * sin(pi u) inside each syllable, 0 outside."""
    idx, u = syllable_shape(times, syl)
    if len(syl.start) == 0:
        return np.zeros(times.shape)
    return np.where(idx >= 0, syl.stress[np.maximum(idx, 0)] * np.sin(np.pi * u), 0.0)


def vowel_track(times: np.ndarray, syl: Syllables, column: int) -> np.ndarray:
    """A vowel property (VOWEL_TABLE column) interpolated between syllable centres (coarticulation)."""
    if len(syl.start) == 0:
        return np.zeros(times.shape)
    centres = syl.start + 0.5 * syl.dur
    return np.interp(times, centres, VOWEL_TABLE[syl.vowel, column])


def pitch_deviation(times: np.ndarray, syl: Syllables) -> np.ndarray:
    """Relative f0 deviation: declination over the phrase (+0.10 -> -0.10) plus accents (+0.12 sin(pi u)).

    Zero outside syllables. f0(t) = f0_base * (1 + pitch_deviation(t)).
    """
    idx, u = syllable_shape(times, syl)
    if len(syl.start) == 0:
        return np.zeros(times.shape)
    j = np.maximum(idx, 0)
    progress = (times - syl.phrase_start[j]) / np.maximum(syl.phrase_end[j] - syl.phrase_start[j], 1e-3)
    dev = 0.10 * (1.0 - 2.0 * np.clip(progress, 0, 1)) + 0.12 * syl.accent[j] * np.sin(np.pi * u)
    return np.where(idx >= 0, dev, 0.0)


def segment_mask(
    times: np.ndarray, segments: list[Segment], speaker: int, kinds=("phrase", "backchannel")
) -> np.ndarray:
    """1.0 where ``speaker`` is inside one of their segments of the given kinds."""
    mask = np.zeros(times.shape)
    for s in segments:
        if s.speaker == speaker and s.kind in kinds:
            mask[(times >= s.start) & (times < s.end)] = 1.0
    return mask
