"""Synthetic two-person conversations with known causes: ``dualtalk synth``.

    dualtalk synth --out data/synth --conversations 40 --seconds 60 --seed 0 --splits train=0.8,val=0.1,test=0.1
    dualtalk synth --out data/r5 --conversations 40 --seconds 45 --seed 5 --splits train=32,val=4,test=4 --causes random

    from dualtalk.synth import make_conversation, make_corpus
    conv = make_conversation(seconds=20, seed=3)       # audio / motion of both people + the truth
    manifest = make_corpus("data/synth", conversations=40, seconds=60, seed=0,
                           splits={"train": 0.8, "val": 0.1, "test": 0.1})

Two people take turns (phrases of 4-6 syllables per second, pauses, gaps, occasional overlaps, "mm"
backchannels; see :mod:`.timeline`). Each person has a distinct voice (a low one, f0 95-135 Hz, and a high
one, f0 175-240 Hz, formants x1.17) made by source-filter synthesis: a harmonic source whose pitch follows
phrase declination and accents, filtered by the formants of the current vowel (a e i o u, interpolated
between syllables), with a syllable-rate amplitude envelope and a consonant noise burst at each syllable
onset (see :mod:`.voice`). The motion (FLAME, 25 fps) is a sum of components with known causes
(:mod:`.motion`; indices are model order ``[exp 0-49, jaw 50-52, global 53-55]``):

=========  ==============================================================  ======================  ============================
component  rule                                                            parameters              visible in
=========  ==============================================================  ======================  ============================
rest       jaw slightly open at rest: jaw_x = 0.02 rad                     jaw_x (50)              (constant)
speech     while the person speaks, with env = stress * sin(pi u) of the    exp 0, 1, 2, exp 4-19,  own audio (envelope,
           current syllable (no lag) and the vowel's articulation           jaw_x (50)              formants)
           interpolated between syllable centres: mouth open
           exp0 = 1.8 env open, jaw_x = 0.16 env open; lip rounding
           exp1 = 1.6 env round (o, u); lip spreading exp2 = 1.2 env spread
           (i, e); exp 4-19 = 0.35 [open, round, spread] @ W (fixed W)
prosody    head pitch follows the person's own intonation: 0.25 x relative  global pitch (53)       own audio (f0)
           f0 deviation (declination +0.10 -> -0.10 over a phrase, +0.12
           accents), gaussian-smoothed (sigma 1.5 frames)
<cause>    one component per listening cause of the scenario               the cause's targets     the partner's audio, motion
           (:mod:`.causes`): intensity = compose(own activations,                                  or both (the cause's carrier)
           L x driver(t - delay)) x peak
idle       random, unpredictable from any input: smoothed jitter           all 56                  nothing: the noise floor
           (std exp 0.05, jaw 0.005, global 0.006; sigma 1.5 frames) and
           slow head drift (std 0.03 rad, sigma 25 frames); drawn per
           corpus in ``random`` scenarios
=========  ==============================================================  ======================  ============================

The ``standard`` scenario: ``nod`` (the partner's phrase ends -> head pitch, 0.08 rad peaking 0.55 s after),
``turn`` (the partner talking -> yaw toward them, 0.15 rad, lag 0.2 s), ``smile`` (the partner's own smiles,
seen in their motion -> mirrored 0.48 s later on exp 3 and exp 20-35, on top of the person's own smiles).
``random`` scenarios draw which coefficients each cause moves, its delay (0.2-1.0 s), amplitude, composition
(add or max) and carrier (audio: a laugh; motion; both), see :mod:`.causes`.

L_k(t) = 1 - (person k's own phrase mask, moving average over 5 frames): 1 while listening, 0 while speaking
(backchannels and laughs do not count as speaking). So ``speech`` and ``prosody`` are visible only in the
person's own audio (a listener-only model cannot learn them), and the listening causes only in the partner's
inputs (a speaker-only model cannot learn them).

The noise floor: the error of an oracle that knows every rule and input but not the random parts (``idle``,
and the silent spontaneous activations, of which it knows the mean) is the floor of every MSE-type metric.
:func:`make_corpus` reports it per group (``exp`` 50, ``jaw`` 3, ``pose`` = global rotation 3, ``all`` 56),
per conversation, per split and overall; ``noise_floor_lower_bound`` is the idle noise alone (a model that
reads the partner's future motion can recover some of the spontaneous activations from their mirror).

Everything is deterministic given the seed (numpy ``SeedSequence`` streams for the plan, each voice and
the motion), vectorised, and fast (a 60 s conversation in a fraction of a second).
"""

from .causes import ListeningCause, Scenario, random_scenario, standard
from .corpus import GENERATOR_VERSION, SynthConversation, make_conversation, make_corpus, parse_splits

__all__ = [
    "GENERATOR_VERSION",
    "ListeningCause",
    "Scenario",
    "SynthConversation",
    "make_conversation",
    "make_corpus",
    "parse_splits",
    "random_scenario",
    "standard",
]
