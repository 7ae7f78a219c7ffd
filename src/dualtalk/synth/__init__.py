"""Synthetic two-person conversations with known causes: ``dualtalk synth``.

    dualtalk synth --out data/synth --conversations 40 --seconds 60 --seed 0 --splits train=0.8,val=0.1,test=0.1

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
nod        listener nods after each of the partner's phrases:             global pitch (53)       partner audio (phrase end);
           0.08 sin(pi u) over [end + 0.3 s, end + 0.8 s] (peak 0.55 s                             also partner motion (jaw
           after the phrase end), times the listening weight L                                     stops)
turn       head turns toward the speaking partner: yaw target 0.15 rad      global yaw (54)         partner audio (+ own audio
           x partner-in-phrase x L, one-pole lag tau = 0.2 s                                       for the gate L)
mirror     the listener mirrors the partner's smile: smile_k[n] =          exp 3, exp 20-35        partner motion only
           mood_k[n] + 0.8 L_k[n] smile_partner[n - 12] (delay 0.48 s); a  (the smile)
           smile of intensity s moves exp3 by s and exp 20-35 by
           0.6 s V (fixed unit-RMS loadings V)
idle       random, unpredictable from any input: smoothed jitter           all 56                  nothing: the noise floor
           (std exp 0.05, jaw 0.005, global 0.006; sigma 1.5 frames), slow
           head drift (std 0.03 rad, sigma 25 frames), slow smile mood
           (std 0.25, sigma 20 frames; moves the smile coefficients)
=========  ==============================================================  ======================  ============================

L_k(t) = 1 - (person k's own phrase mask, moving average over 5 frames): 1 while listening, 0 while speaking
(backchannels do not count as speaking). So ``speech`` and ``prosody`` are visible only in the person's
own audio (a listener-only model cannot learn them), ``nod``, ``turn`` and ``mirror`` only in the partner's
inputs (a speaker-only model cannot learn them) and ``mirror`` only in the partner's motion.

The noise floor: the ``idle`` component is the only part of the motion that no input determines, so the
mean squared error between the motion and the motion without ``idle`` (the error of an oracle that knows
every rule) is the floor of every MSE-type metric. :func:`make_corpus` reports it per group (``exp`` 50,
``jaw`` 3, ``pose`` = global rotation 3, ``all`` 56), per conversation, per split and overall. One caveat:
the mood part of ``idle`` is mirrored by the partner 0.48 s later, so a model that reads the partner's
*future* motion (DualTalk reads the whole dialogue) can recover part of it (and, the mood being slow, the
partner's past motion says a little too); ``noise_floor_lower_bound`` is the floor with the smile
coefficients' idle removed entirely wherever the partner mirrors them (the achievable error lies between
the two).

Everything is deterministic given the seed (numpy ``SeedSequence`` streams for the plan, each voice and
the motion), vectorised, and fast (a 60 s conversation in a fraction of a second).
"""

from .corpus import GENERATOR_VERSION, SynthConversation, make_conversation, make_corpus, parse_splits

__all__ = ["GENERATOR_VERSION", "SynthConversation", "make_conversation", "make_corpus", "parse_splits"]
