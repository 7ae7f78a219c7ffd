"""Training data: an index of conversations, random windows every epoch, lazy loading, both directions.

A split directory holds conversations in the dataset layout (``NAME_speaker{1,2}.{wav,npz}``, both motions
required). Only the *index* is held in memory (names, paths, lengths); every example is read from disk
when the loader asks for it (``soundfile`` reads just the window's samples), so memory use does not grow
with the dataset.

An example is one window of one conversation seen from one side: the target person's audio, the
partner's audio and motion in, the target person's motion out. Each window gives two examples (speaker 1
as target with speaker 2 as partner, and the reverse).

Windows (training): every epoch a conversation of T frames is tiled with ``n = ceil(T / W)`` windows of W
frames starting at a fresh random offset; the two end windows are pulled inside the clip, so every frame
is seen every epoch and every window is full. A clip shorter than W gives one window padded to W frames
with a mask (padded frames carry no loss). Audio and motion are cut at the same instants (frame t starts
at sample 640 t). Validation windows are fixed: W-frame tiles from frame 0, the last one ending at the
clip's end and skipping, in the loss, the frames it shares with the one before (so no window is padded
and every frame counts once).

The plan of an epoch (which windows, in which order, which process gets which) depends only on
``(seed, epoch)``: a resumed run re-creates it and skips the batches it had already consumed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import InputError
from ..io.audio import load_audio, unreadable
from ..io.conversation import check_length, discover_conversations
from ..io.motion import load_any_motion
from ..io.progress import progress as progress_bar
from ..io.threads import usable_cpus
from ..layout import FLAME, SAMPLE_RATE, SAMPLES_PER_FRAME, MotionLayout, frames_for
from .clips import Clip, SplitIndex

#: columns of a plan row: conversation index, first frame, frames, target speaker (1|2), dummy (0|1), and
#: the leading frames that carry no loss (the last validation window overlaps the one before it)
CLIP, START, LENGTH, TARGET, DUMMY, SKIP = range(6)


@dataclass
class MotionStats:
    """Per-dimension mean and std (model order, 56-d FLAME or 55-d ARKit) over every frame of both people of
    a split."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    frames: int


def split_dir(data_dir: str | os.PathLike, split: str, role: str) -> Path:
    path = Path(data_dir) / split
    if not path.is_dir():
        raise InputError(
            path,
            f"{role} split not found (expected {Path(data_dir) / split}/NAME_speaker{{1,2}}.{{wav,npz}}; "
            f"choose another split with data.{role}_split=NAME)",
        )
    return path


def _audio_info(path: Path) -> tuple[int, int]:
    """(samples at 16 kHz, native sample rate) without reading the samples."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise unreadable(path, exc) from None
    if info.frames == 0:
        raise InputError(path, "audio file contains no samples")
    return -(-info.frames * SAMPLE_RATE // info.samplerate), int(info.samplerate)


def _who(layout: MotionLayout) -> str:
    return f"the model (motion_layout {layout.name!r})"


def index_split(
    data_dir: str | os.PathLike,
    split: str,
    role: str = "train",
    with_stats: bool = False,
    progress: bool = False,
    layout: MotionLayout = FLAME,
) -> tuple[SplitIndex, MotionStats | None]:
    """Index one split (lengths checked, nothing kept in memory); optionally motion statistics. Every motion
    file must be of ``layout`` (the model's): one of the other is an error naming it."""
    directory = split_dir(data_dir, split, role)
    try:
        convs = discover_conversations(directory, require_motion="both")
    except InputError as exc:
        if "no conversations found" in exc.what:
            raise InputError(
                directory, f"{role} split is empty (no NAME_speaker{{1,2}}.{{wav,npz}} conversations)"
            ) from None
        raise
    total = np.zeros(layout.dim, np.float64)
    total_sq = np.zeros(layout.dim, np.float64)
    count = 0
    clips = []
    for conv in progress_bar(convs, desc=f"indexing {split}", unit="conv", enabled=progress, leave=False, delay=2):
        lengths, rates = [], []
        for k in (1, 2):
            samples, sr = _audio_info(conv.audio[k])
            lengths.append(frames_for(samples))
            rates.append(sr)
        for k in (1, 2):
            motion = load_any_motion(conv.motion[k], layout, _who(layout)).to_model()  # (T, D)
            check_length(conv.motion[k], len(motion), lengths[k - 1], "motion")
            lengths.append(len(motion))
            if with_stats:
                x = motion.astype(np.float64)
                total += x.sum(0)
                total_sq += np.square(x).sum(0)
                count += len(x)
        check_length(conv.audio[2], lengths[1], lengths[0], "the partner's audio")
        clips.append(
            Clip(
                conv.name,
                (str(conv.audio[1]), str(conv.audio[2])),
                (str(conv.motion[1]), str(conv.motion[2])),
                int(min(lengths)),
                (rates[0], rates[1]),
            )
        )
    stats = None
    if with_stats:
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
        stats = MotionStats(mean.astype(np.float32), std.astype(np.float32), count)
    return SplitIndex(str(directory), clips), stats


# ----------------------------------------------------------------------------------------------------
# plans: which windows an epoch is made of


def train_plan(frames: np.ndarray, window: int, seed: int, epoch: int) -> np.ndarray:
    """Shuffled rows (clip, start, length, target, dummy, skip) of one training epoch: (2 * windows, 6)."""
    rng = np.random.default_rng([seed, epoch])
    rows = []
    for i, t in enumerate(frames.tolist()):
        if t <= window:
            rows.append(np.array([[i, 0, t, 0]]))
            continue
        n = -(-t // window)
        slack = n * window - t  # frames by which n windows overhang the clip
        offset = int(rng.integers(0, slack + 1))
        starts = np.clip(np.arange(n) * window - offset, 0, t - window)  # (n,)
        rows.append(np.stack([np.full(n, i), starts, np.full(n, window), np.zeros(n, dtype=np.int64)], axis=1))
    plan = np.concatenate(rows)  # (N, 4)
    plan = both_directions(plan)  # (2N, 6)
    return plan[rng.permutation(len(plan))]


def val_plan(frames: np.ndarray, window: int) -> np.ndarray:
    """Fixed tiles from frame 0, both directions, in order: (2 * windows, 6).

    Every window is full (the model never sees padding) except for a clip shorter than the window: the
    last window ends at the clip's end and overlaps the one before it, whose frames it skips in the loss,
    so every frame counts exactly once.
    """
    rows = []
    for i, t in enumerate(frames.tolist()):
        if t <= window:
            rows.append([i, 0, t, 0])
            continue
        n, rest = divmod(t, window)
        rows += [[i, k * window, window, 0] for k in range(n)]
        if rest:
            rows.append([i, t - window, window, window - rest])
    return both_directions(np.array(rows, dtype=np.int64))


def both_directions(rows: np.ndarray) -> np.ndarray:
    """(N, 4) windows (clip, start, length, skip) -> (2N, 6): each with target speaker 1 and with 2."""
    n = len(rows)
    out = np.zeros((2 * n, 6), dtype=np.int64)
    rows = np.repeat(rows, 2, axis=0)  # (2N, 4)
    out[:, :3] = rows[:, :3]
    out[:, SKIP] = rows[:, 3]
    out[:, TARGET] = np.tile([1, 2], n)
    return out


def shard(plan: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rows of process ``rank``: padded (with dummy rows, which carry no loss) to a multiple of ``world``."""
    if world == 1:
        return plan
    pad = (-len(plan)) % world
    if pad:
        extra = plan[np.arange(pad) % len(plan)].copy()  # (pad, 6), even when pad > len(plan)
        extra[:, DUMMY] = 1
        plan = np.concatenate([plan, extra])
    return plan[rank::world]


class PlanBatchSampler(Sampler):
    """Batches of plan rows for one process; ``set_epoch(epoch, skip)`` starts an epoch at batch ``skip``.

    Training: a fresh shuffled plan per epoch (every process gets the same number of batches). Validation
    (``shuffle=False``): the fixed plan.
    """

    def __init__(
        self,
        frames: np.ndarray,
        window: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
        max_batches: int = 0,
    ):
        self.frames = frames
        self.window = window
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world = world
        self.shuffle = shuffle
        self.max_batches = max_batches
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip

    def rows(self) -> np.ndarray:
        plan = (
            train_plan(self.frames, self.window, self.seed, self.epoch)
            if self.shuffle
            else val_plan(self.frames, self.window)
        )
        if self.max_batches:
            plan = plan[: self.max_batches * self.batch_size * self.world]
        return shard(plan, self.rank, self.world)

    def __len__(self) -> int:
        return math.ceil(len(self.rows()) / self.batch_size)

    def __iter__(self):
        rows = self.rows()
        for b in range(self.skip, math.ceil(len(rows) / self.batch_size)):
            yield [tuple(r) for r in rows[b * self.batch_size : (b + 1) * self.batch_size].tolist()]


# ----------------------------------------------------------------------------------------------------
# loading one example


def read_audio_window(path: str, native_rate: int, start: int, frames: int, window: int) -> np.ndarray:
    """Samples [640 start, 640 (start + frames)) of a file, zero-padded to 640 window: (640 window,)."""
    a, b = start * SAMPLES_PER_FRAME, (start + frames) * SAMPLES_PER_FRAME
    if native_rate == SAMPLE_RATE:
        try:
            data, _ = sf.read(path, start=a, stop=b, dtype="float32", always_2d=True)  # (S, C)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise unreadable(path, exc) from None
        wave = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)  # (S,)
    else:  # another rate: resample the whole file (slower; convert the corpus to 16 kHz once to avoid it)
        wave = load_audio(path)[a:b]
    if not np.isfinite(wave).all():
        raise InputError(path, "audio contains NaN or infinite samples")
    out = np.zeros(window * SAMPLES_PER_FRAME, dtype=np.float32)
    out[: len(wave)] = wave
    return out


def read_motion_window(path: str, start: int, frames: int, window: int, layout: MotionLayout = FLAME) -> np.ndarray:
    """Frames [start, start + frames) in model order, padded to ``window`` by repeating the last: (W, D)."""
    x = load_any_motion(path, layout, _who(layout)).to_model()[start : start + frames]  # (frames, D)
    if len(x) < window:
        x = np.concatenate([x, np.repeat(x[-1:], window - len(x), axis=0)])
    return x


class ConversationWindows(Dataset):
    """``dataset[(clip, start, length, target, dummy, skip)]`` -> one example (dict of arrays, see ``__getitem__``).

    With a feature cache (``features``: {"self": dir, "partner": dir}), the audio encoders' outputs are
    read from memory-mapped ``.npy`` files instead of the waveforms.
    """

    def __init__(
        self,
        index: SplitIndex,
        window: int,
        features: dict[str, Path] | None = None,
        layout: MotionLayout = FLAME,
    ):
        self.index = index
        self.window = window
        self.features = features
        self.layout = layout

    def __len__(self) -> int:  # the dataset is addressed by plan rows, not by position
        return len(self.index.clips)

    def __getitem__(self, row):
        i, start, length, target, dummy, skip = (int(v) for v in row)
        clip = self.index.clips[i]
        t, p = target - 1, 2 - target  # index of the target / partner person
        w = self.window
        mask = np.zeros(w, dtype=bool)
        if not dummy:
            mask[skip:length] = True
        item = {
            "target": torch.from_numpy(read_motion_window(clip.motion[t], start, length, w, self.layout)),  # (W, D)
            "partner_motion": torch.from_numpy(
                read_motion_window(clip.motion[p], start, length, w, self.layout)
            ),  # (W, D)
            "mask": torch.from_numpy(mask),  # (W,)
            "key": f"{clip.name}:{start}:{length}:s{target}",
            "clip": i,  # the conversation's index in the split (the output group gate's folds)
        }
        if self.features is None:
            item["self_audio"] = torch.from_numpy(
                read_audio_window(clip.audio[t], clip.sample_rates[t], start, length, w)
            )
            item["partner_audio"] = torch.from_numpy(
                read_audio_window(clip.audio[p], clip.sample_rates[p], start, length, w)
            )
        else:
            from .cache import read_feature_window

            for role, speaker in (("self", target), ("partner", 3 - target)):  # only the encoders in use
                if role in self.features:
                    item[f"{role}_features"] = read_feature_window(
                        self.features[role], clip.name, speaker, start, length, w
                    )
        return item


def make_loader(
    dataset: ConversationWindows,
    sampler: PlanBatchSampler,
    num_workers: int,
    pin_memory: bool = False,
    persistent: bool = True,
) -> DataLoader:
    # The loader's own generator: starting an iterator must not draw from the global torch RNG (that
    # would shift dropout after a resume, which starts its iterator at another moment). The sampler runs
    # in this process, so workers can persist across epochs, and their number does not change the batches:
    # at most one per CPU this process may use (more only wait; PyTorch warns of them).
    num_workers = min(num_workers, usable_cpus())
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=persistent and num_workers > 0,
        prefetch_factor=4 if num_workers else None,
        generator=torch.Generator().manual_seed(0),
    )


def validation_loader(
    index: SplitIndex,
    data,
    layout: MotionLayout = FLAME,
    features=None,
    rank: int = 0,
    world: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
    max_batches: int | None = None,
) -> DataLoader:
    """The validation loader of a training config's ``data`` section (``DataConfig``): its fixed tiles of
    ``val_window_frames`` (or ``window_frames``), ``batch_size``, ``max_val_batches`` (``max_batches``
    overrides it), this process's share. The trainer's, and the one tools use to validate a kept model
    the same way (``refit_output_gain``, ``benchmarks/gain_rule.py``)."""
    window = data.val_window_frames or data.window_frames
    sampler = PlanBatchSampler(
        index.frames,
        window,
        data.batch_size,
        rank=rank,
        world=world,
        shuffle=False,
        max_batches=data.max_val_batches if max_batches is None else max_batches,
    )
    return make_loader(ConversationWindows(index, window, features, layout), sampler, num_workers, pin_memory, False)
