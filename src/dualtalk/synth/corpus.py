"""One conversation (:func:`make_conversation`) and a corpus on disk in the dataset layout (:func:`make_corpus`).

A corpus directory holds ``NAME_speaker{1,2}.wav`` (16 kHz float) and ``NAME_speaker{1,2}.npz`` (``exp``,
``pose``) per conversation, or with splits ``DIR/<split>/...``, and ``DIR/manifest.json``: the generator
version, seed and parameters, the noise floor (overall, per split, per conversation) and every
conversation's turn segments (who speaks when). The corpus is written to a temporary directory beside
``DIR`` and renamed into place at the end: an interrupted run leaves no partial corpus.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import DualTalkError, InputError
from ..io.audio import save_audio
from ..io.files import atomic_write_text
from ..io.motion import Motion, save_motion
from ..io.progress import progress as progress_bar
from ..layout import GROUPS as MOTION_GROUPS
from ..layout import MOTION_DIM, SAMPLE_RATE, frames_for
from . import causes as causes_mod
from . import motion as rules
from . import timeline, voice
from .causes import Scenario
from .timeline import Segment

#: bumped whenever the same seed would give a different corpus
GENERATOR_VERSION = 3
GENERATOR = "dualtalk.synth"
MIN_SECONDS = 1.0
#: the groups of the noise floor: the loss/metric groups of :mod:`dualtalk.layout` ("pose" = the 3-d head
#: rotation) and "all" 56
GROUPS = {**MOTION_GROUPS, "all": slice(0, MOTION_DIM)}


@dataclass
class SynthConversation:
    """A generated conversation: what both people say, how they sound, how they move, and why."""

    seconds: float
    seed: int
    audio: dict[int, np.ndarray]  # speaker -> (S,) float32, 16 kHz
    motion: dict[int, Motion]  # speaker -> Motion (T frames, T = ceil(S / 640))
    components: dict[int, dict[str, np.ndarray]]  # speaker -> component -> (T, 56) model order
    segments: list[Segment]  # phrases and backchannels, sorted by start
    voices: dict[int, dict] = field(default_factory=dict)  # speaker -> {"f0": Hz, "formant_scale": x}
    scenario: Scenario = field(default_factory=causes_mod.standard)
    oracle: dict[int, np.ndarray] = field(default_factory=dict)  # speaker -> (T, 56) the rules' prediction
    responses: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # speaker -> cause -> (T,)
    listening: dict[int, np.ndarray] = field(default_factory=dict)  # speaker -> (T,) listening weight L
    activity: dict[int, rules.Activity] = field(default_factory=dict)  # speaker -> own activations, laughs
    laugh_audio: dict[int, np.ndarray] = field(default_factory=dict)  # speaker -> (S,) the laughs in ``audio``
    syllables: dict[int, timeline.Syllables] = field(default_factory=dict)  # speaker -> what they say (vowels)

    @property
    def num_frames(self) -> int:
        return len(self.motion[1])

    def model_motion(self, k: int) -> np.ndarray:
        """(T, 56) model-order motion of speaker ``k``."""
        return self.motion[k].to_model()

    def clean_motion(self, k: int) -> np.ndarray:
        """(T, 56) what an oracle knowing every rule and every input predicts: the motion without ``idle``,
        with the silent spontaneous activations replaced by their mean."""
        return self.oracle[k].astype(np.float32)

    def noise_floor(self, k: int | None = None, lower_bound: bool = False) -> dict[str, float]:
        """Mean squared error of the oracle per group (``exp``, ``jaw``, ``pose``, ``all``), one speaker or both.

        ``lower_bound``: the ``idle`` noise alone (as if the spontaneous activations were known too: the
        partner's later mirror of them can reveal them to a model that reads the partner's future).
        """
        people = (1, 2) if k is None else (k,)
        if lower_bound:
            err = np.concatenate([self.components[j]["idle"] for j in people])
        else:
            err = np.concatenate([self.model_motion(j) - self.oracle[j] for j in people])  # (T', 56)
        return {g: float(np.mean(err[:, s] ** 2)) for g, s in GROUPS.items()}

    def truth(self) -> dict:
        """JSON-able ground truth: segments (who speaks when), voices, noise floor, events."""
        return {
            "seed": self.seed,
            "seconds": self.seconds,
            "frames": self.num_frames,
            "samples": len(self.audio[1]),
            "voices": {str(k): v for k, v in self.voices.items()},
            "segments": [s.to_dict() for s in self.segments],
            "noise_floor": self.noise_floor(),
        }


def make_conversation(seconds: float = 60.0, seed: int = 0, scenario=None) -> SynthConversation:
    """Generate one conversation of ``seconds`` seconds, fully determined by ``seed`` and the scenario
    (``None``/``"standard"``, a :class:`~dualtalk.synth.causes.Scenario` or its dict; see :mod:`.causes`)."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= MIN_SECONDS):
        raise DualTalkError(f"conversation length must be at least {MIN_SECONDS:g} s, got {seconds}")
    scenario = causes_mod.resolve(scenario)
    seeds = np.random.SeedSequence(int(seed)).spawn(6)  # plan, voice 1, voice 2, motion, activity, laughs
    plan_rng = np.random.default_rng(seeds[0])
    segments, syllables = timeline.plan_conversation(float(seconds), plan_rng)
    low = int(plan_rng.integers(1, 3))  # which speaker has the low voice
    voices: dict[int, dict[str, float]] = {}
    for k in (1, 2):
        kind = voice.LOW_VOICE if k == low else voice.HIGH_VOICE
        f0_range = cast("tuple[float, float]", kind["f0"])
        voices[k] = {
            "f0": round(float(plan_rng.uniform(*f0_range)), 2),
            "formant_scale": cast(float, kind["formant_scale"]),
        }
    num_samples = int(round(seconds * SAMPLE_RATE))
    audio = {
        k: voice.synthesize(
            syllables[k], num_samples, voices[k]["f0"], voices[k]["formant_scale"], np.random.default_rng(seeds[k])
        )
        for k in (1, 2)
    }
    activity_rng = np.random.default_rng(seeds[4])
    activity = {k: rules.draw_activity(activity_rng, float(seconds), scenario) for k in (1, 2)}
    laugh_rng = np.random.default_rng(seeds[5])
    laugh_audio = {}
    for k in (1, 2):
        laughs = activity[k].audible(scenario)
        laugh_audio[k] = np.zeros(num_samples, np.float32)
        if len(laughs):
            laugh_audio[k] = voice.synthesize(
                voice.laugh_syllables(laughs),
                num_samples,
                voices[k]["f0"] * voice.LAUGH_PITCH,
                voices[k]["formant_scale"],
                laugh_rng,
                breath=voice.LAUGH_BREATH,
            )
            audio[k] = audio[k] + laugh_audio[k]
    t = frames_for(num_samples)
    truth = rules.build_motion(t, segments, syllables, scenario, activity, np.random.default_rng(seeds[3]))
    # the components are never empty, so the sum is an array (not sum()'s start value 0)
    motion = {
        k: Motion.from_model(cast(np.ndarray, sum(truth.components[k].values())).astype(np.float32)) for k in (1, 2)
    }
    return SynthConversation(
        seconds=float(seconds),
        seed=int(seed),
        audio=audio,
        motion=motion,
        components=truth.components,
        segments=segments,
        voices=voices,
        scenario=scenario,
        oracle=truth.oracle,
        responses=truth.responses,
        listening=truth.listening,
        activity=activity,
        laugh_audio=laugh_audio,
        syllables=syllables,
    )


# ---------------------------------------------------------------------------------------------- corpus

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_splits(text: str) -> dict[str, float]:
    """``"train=0.8,val=0.1,test=0.1"`` (fractions) or ``"train=30,val=5,test=5"`` (counts) -> dict."""
    out: dict[str, float] = {}
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not _SPLIT_NAME.match(name):
            raise DualTalkError(f"--splits: expected NAME=VALUE items like train=0.8, got '{part}'")
        if name in out:
            raise DualTalkError(f"--splits: split '{name}' given twice")
        try:
            val = float(value) if ("." in value or "e" in value.lower()) else int(value)
        except ValueError:
            raise DualTalkError(f"--splits: '{value.strip()}' is not a number (in '{part}')") from None
        if not math.isfinite(val) or val < 0:
            raise DualTalkError(f"--splits: '{part}' must be a non-negative number")
        out[name] = val
    if not out:
        raise DualTalkError("--splits: no splits given (example: train=0.8,val=0.1,test=0.1)")
    return out


def split_counts(splits: dict[str, float], total: int) -> dict[str, int]:
    """Conversations per split. All integers: counts that must add up to ``total``; otherwise fractions
    that must add up to 1, rounded by largest remainder. Every split must get at least one conversation."""
    if all(isinstance(v, int) for v in splits.values()):
        if sum(splits.values()) != total:
            raise DualTalkError(f"--splits: counts add up to {sum(splits.values())}, not to --conversations {total}")
        counts = cast("dict[str, int]", dict(splits))  # all values are ints (checked above)
    else:
        s = float(sum(splits.values()))
        if abs(s - 1.0) > 1e-6:
            raise DualTalkError(f"--splits: fractions add up to {s:g}, not 1 (or give integer counts)")
        raw = {k: v * total for k, v in splits.items()}
        counts = {k: int(math.floor(v)) for k, v in raw.items()}
        order = sorted(splits, key=lambda k: (-(raw[k] - counts[k]), list(splits).index(k)))
        for k in order[: total - sum(counts.values())]:
            counts[k] += 1
    empty = [k for k, v in counts.items() if v == 0]
    if empty:
        raise DualTalkError(f"--splits: split '{empty[0]}' would get no conversation out of {total}")
    return counts


def conversation_seed(seed: int, index: int) -> int:
    """The seed of conversation ``index`` of a corpus made with ``seed`` (recorded in the manifest)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def parameters() -> dict:
    """The generator's constants (recorded in the manifest)."""
    mod = {name: getattr(rules, name) for name in dir(rules) if name.isupper() and not name.startswith("_")}
    mod.update({f"VOICE_{n}": getattr(voice, n) for n in dir(voice) if n.isupper() and not n.startswith("_")})
    mod.update(
        {
            f"PLAN_{n}": getattr(timeline, n)
            for n in dir(timeline)
            if n.isupper() and not n.startswith("_") and n != "VOWEL_TABLE"
        }
    )
    return json.loads(json.dumps(mod, default=_jsonable))


def _jsonable(x):
    if isinstance(x, slice):
        return [x.start, x.stop]
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        manifest = out_dir / "manifest.json"
        ours = False
        if manifest.is_file():
            try:
                ours = json.loads(manifest.read_text(encoding="utf-8")).get("generator") == GENERATOR
            except (ValueError, OSError, AttributeError):
                ours = False
        if not overwrite:
            raise InputError(
                out_dir,
                "directory exists and is not empty"
                + (" (use --overwrite to replace this synthetic corpus)" if ours else ""),
            )
        if not ours:
            raise InputError(
                out_dir, "not a corpus made by dualtalk synth (no manifest.json of ours): refusing to overwrite it"
            )
        foreign = _foreign_entries(out_dir)
        if foreign:  # a manifest says little: what --overwrite deletes must all be what synth writes
            raise InputError(
                foreign[0],
                f"was not written by dualtalk synth ({len(foreign)} such file(s) in {out_dir}): "
                "refusing to delete it with --overwrite; move it out, or choose another --out",
            )


def _foreign_entries(out_dir: Path) -> list[Path]:
    """What is in a corpus directory that ``make_corpus`` does not write: anything but ``manifest.json``,
    ``NAME_speaker{1,2}.{wav,npz}`` files, and split directories holding only those."""
    import re

    ours = re.compile(r"^.+_speaker[12]\.(wav|npz)$")
    foreign = []
    for entry in sorted(out_dir.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            foreign += [p for p in sorted(entry.iterdir()) if not (p.is_file() and ours.match(p.name))]
        elif not (entry.is_file() and (entry.name == "manifest.json" or ours.match(entry.name))):
            foreign.append(entry)
    return foreign


def make_corpus(
    out_dir: str | os.PathLike,
    conversations: int,
    seconds: float = 60.0,
    seed: int = 0,
    splits: dict[str, float] | str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    causes="standard",
) -> dict:
    """Write ``conversations`` conversations to ``out_dir`` (dataset layout) and return the manifest.

    ``splits``: ``None`` (all in ``out_dir``) or ``{name: fraction or count}`` (or the ``--splits`` text):
    conversation ``synth_0000`` ... go to the splits in the order given, into ``out_dir/<name>/``.
    Names are unique across splits. ``overwrite`` replaces an existing corpus made by this generator.
    ``causes``: the listening causes and idle noise (:mod:`.causes`): ``"standard"`` (the documented set),
    ``"random"`` (drawn from ``seed``), a :class:`Scenario`, its dict, or a JSON file; in the manifest.
    """
    if not isinstance(conversations, int) or conversations < 1:
        raise DualTalkError(f"--conversations must be a positive integer, got {conversations}")
    if not (math.isfinite(seconds) and seconds >= MIN_SECONDS):
        raise DualTalkError(f"--seconds must be at least {MIN_SECONDS:g}, got {seconds}")
    if isinstance(splits, str):
        splits = parse_splits(splits)
    counts = split_counts(splits, conversations) if splits else {"": conversations}
    scenario = causes_mod.resolve(causes, seed)
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # the corpus a directory like any other (mkdtemp's is private: 0700)
    except OSError as exc:
        raise InputError(out_dir, f"cannot create the output directory ({exc.strerror or exc})") from None
    try:
        entries = []
        idle_sq = {name: {g: 0.0 for g in GROUPS} for name in counts}
        idle_sq_low = {name: {g: 0.0 for g in GROUPS} for name in counts}
        frames = {name: 0 for name in counts}
        names_in_order = [name for name, n in counts.items() for _ in range(n)]
        bar = progress_bar(total=conversations, desc="synth", unit="conv", enabled=progress)
        for i, split in enumerate(names_in_order):
            name = f"synth_{i:04d}"
            cseed = conversation_seed(seed, i)
            conv = make_conversation(seconds, cseed, scenario)
            folder = tmp / split if split else tmp
            folder.mkdir(exist_ok=True)
            for k in (1, 2):
                save_audio(folder / f"{name}_speaker{k}.wav", conv.audio[k])
                save_motion(folder / f"{name}_speaker{k}.npz", conv.motion[k])
            floor, low = conv.noise_floor(), conv.noise_floor(lower_bound=True)
            for g in GROUPS:
                idle_sq[split][g] += floor[g] * 2 * conv.num_frames
                idle_sq_low[split][g] += low[g] * 2 * conv.num_frames
            frames[split] += 2 * conv.num_frames
            entry: dict[str, Any] = {"name": name, "split": split or None}
            entry.update(conv.truth())
            entry["noise_floor_lower_bound"] = low
            entries.append(entry)
            bar.update(1)
        bar.close()
        total_frames = sum(frames.values())
        manifest = {
            "generator": GENERATOR,
            "version": GENERATOR_VERSION,
            "seed": int(seed),
            "conversations": conversations,
            "seconds": float(seconds),
            "splits": {k: v for k, v in counts.items()} if splits else None,
            "scenario": scenario.to_dict(),
            "noise_floor": {g: sum(idle_sq[s][g] for s in counts) / total_frames for g in GROUPS},
            "noise_floor_lower_bound": {g: sum(idle_sq_low[s][g] for s in counts) / total_frames for g in GROUPS},
            "noise_floor_by_split": (
                {s: {g: idle_sq[s][g] / frames[s] for g in GROUPS} for s in counts} if splits else None
            ),
            "noise_floor_note": "mean squared idle noise per group (exp 50, jaw 3, pose = global rotation 3, "
            "all 56) over every frame of both speakers: the error of an oracle that knows "
            "every rule; see dualtalk.synth for the lower bound",
            "parameters": parameters(),
            "items": entries,
        }
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        if out_dir.exists():
            if overwrite and any(out_dir.iterdir()):
                shutil.rmtree(out_dir)
            else:
                out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def load_manifest(corpus_dir: str | os.PathLike) -> dict:
    """Read ``manifest.json`` of a synthetic corpus (refuses unknown generators and newer versions)."""
    path = Path(corpus_dir) / "manifest.json"
    if not path.is_file():
        raise InputError(path, "manifest not found (not a corpus made by dualtalk synth?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("generator") != GENERATOR:
        raise InputError(path, "not a manifest written by dualtalk synth")
    if int(data.get("version", 0)) > GENERATOR_VERSION:
        raise InputError(path, f"generator version {data.get('version')} is newer than this one ({GENERATOR_VERSION})")
    return data


def manifest_scenario(manifest: dict) -> Scenario:
    """The scenario a corpus was made with (version 3 on; older corpora followed fixed rules of their own)."""
    if int(manifest.get("version", 0)) < 3 or "scenario" not in manifest:
        raise DualTalkError(
            f"this corpus was made by generator version {manifest.get('version')}: regenerate it "
            f"with this version ({GENERATOR_VERSION}) to read its causes"
        )
    return Scenario.from_dict(manifest["scenario"], where="manifest.json: scenario")
