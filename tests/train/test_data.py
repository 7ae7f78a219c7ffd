"""Training data: windows cover every frame with fresh offsets, both directions, masks, sharding, lazy cuts."""

from __future__ import annotations

import numpy as np
import pytest

from dualtalk.errors import DualTalkError, InputError
from dualtalk.io.audio import save_audio
from dualtalk.io.motion import Motion, save_motion
from dualtalk.train.data import (
    CLIP,
    DUMMY,
    LENGTH,
    SKIP,
    START,
    TARGET,
    ConversationWindows,
    PlanBatchSampler,
    index_split,
    shard,
    train_plan,
    val_plan,
)


def coverage(plan, frames):
    seen = [np.zeros(t, int) for t in frames]
    for clip, start, length, target, _dummy, _skip in plan:
        if target == 1:
            seen[clip][start : start + length] += 1
    return seen


def test_train_plan_covers_every_frame_with_fresh_offsets():
    frames = np.array([95, 200, 30, 401, 40])
    w = 40
    starts = []
    for epoch in range(6):
        plan = train_plan(frames, w, seed=1, epoch=epoch)
        # both directions of every window, in shuffled order
        assert (plan[:, TARGET] == 1).sum() == (plan[:, TARGET] == 2).sum()
        assert not np.array_equal(plan[:, TARGET], np.tile([1, 2], len(plan) // 2))
        for seen, t in zip(coverage(plan, frames), frames):
            assert seen.min() >= 1, "a frame was not seen this epoch"
            assert seen.sum() < t + w  # about one pass, at most one window of overlap
        long = plan[plan[:, LENGTH] == w]
        short = plan[plan[:, LENGTH] < w]
        assert set(short[:, 0].tolist()) == {2}  # only the clip shorter than W is short (padded)
        assert (long[:, START] + w <= frames[long[:, 0]]).all()  # full windows stay inside the clip
        assert (plan[:, SKIP] == 0).all()  # training scores every frame of every window
        starts.append(sorted(plan[(plan[:, 0] == 3) & (plan[:, TARGET] == 1), START].tolist()))
    assert len({tuple(s) for s in starts}) > 1  # offsets change between epochs
    assert np.array_equal(train_plan(frames, w, 1, 3), train_plan(frames, w, 1, 3))  # deterministic


def test_val_plan_tiles_from_zero_without_padding():
    plan = val_plan(np.array([100, 30, 80]), 40)
    ones = plan[plan[:, TARGET] == 1]
    # the last window of the 100-frame clip ends at its end and skips the 20 frames already scored
    assert ones[:, [CLIP, START, LENGTH, SKIP]].tolist() == [
        [0, 0, 40, 0],
        [0, 40, 40, 0],
        [0, 60, 40, 20],
        [1, 0, 30, 0],
        [2, 0, 40, 0],
        [2, 40, 40, 0],
    ]
    for t, clip in ((100, 0), (80, 2)):  # every frame of a clip is scored exactly once
        scored = np.zeros(t, dtype=int)
        for r in ones[ones[:, CLIP] == clip]:
            scored[r[START] + r[SKIP] : r[START] + r[LENGTH]] += 1
        assert np.all(scored == 1)


def test_shards_are_disjoint_and_complete():
    plan = train_plan(np.array([100, 77, 20]), 25, seed=0, epoch=0)
    parts = [shard(plan, r, 3) for r in range(3)]
    assert len({len(p) for p in parts}) == 1
    real = [tuple(r) for p in parts for r in p if not r[DUMMY]]
    assert sorted(real) == sorted(tuple(r) for r in plan)
    tiny = shard(plan[:1], 2, 4)  # fewer rows than processes: every process still gets one
    assert len(tiny) == 1 and tiny[0, DUMMY] == 1


def test_sampler_skip_resumes_the_same_epoch():
    s = PlanBatchSampler(np.array([100, 77, 20]), 25, batch_size=3, seed=5)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, skip=3)
    assert list(s) == full[3:]
    assert len(s) == len(full)


@pytest.fixture
def marked(tmp_path):
    """One conversation whose samples and motion frames encode their own frame index."""
    split = tmp_path / "data" / "train"
    split.mkdir(parents=True)
    frames = 60
    idx = np.arange(frames * 640) // 640  # frame of each sample
    for k in (1, 2):
        save_audio(split / f"c_speaker{k}.wav", (idx / 1000 + k / 10).astype(np.float32))
        x = np.zeros((frames, 56), np.float32)
        x[:, 0] = np.arange(frames)
        x[:, 1] = k
        save_motion(split / f"c_speaker{k}.npz", Motion.from_model(x))
    return tmp_path / "data"


def test_audio_and_motion_cut_at_the_same_instants(marked):
    index, stats = index_split(marked, "train", with_stats=True)
    assert index.clips[0].frames == 60
    ds = ConversationWindows(index, window=25)
    item = ds[(0, 17, 25, 2, 0, 0)]
    assert item["target"][:, 0].tolist() == list(range(17, 42))
    assert item["target"][0, 1] == 2 and item["partner_motion"][0, 1] == 1
    frame_of_sample = np.round((item["self_audio"].numpy() - 0.2) * 1000)  # speaker 2's audio
    assert np.array_equal(frame_of_sample, np.repeat(np.arange(17, 42), 640))
    assert np.allclose(item["partner_audio"].numpy()[::640], np.arange(17, 42) / 1000 + 0.1, atol=1e-6)
    assert item["mask"].all()
    # a short window: padded, masked
    item = ds[(0, 50, 10, 1, 0, 0)]
    assert item["mask"].sum() == 10 and not item["mask"][10:].any()
    assert (item["self_audio"][10 * 640 :] == 0).all()
    assert item["target"][10:, 0].tolist() == [59.0] * 15  # last frame repeated
    assert not ds[(0, 0, 25, 1, 1, 0)]["mask"].any()  # dummy rows carry no loss
    item = ds[(0, 35, 25, 1, 0, 15)]  # a last validation window: full, its first 15 frames already scored
    assert item["mask"].sum() == 10 and item["mask"][15:].all() and item["target"][:, 0].tolist()[-1] == 59
    # statistics over every frame of both people
    assert stats.frames == 120
    assert np.isclose(stats.mean[0], 29.5) and np.isclose(stats.mean[1], 1.5)
    assert np.isclose(stats.std[0], np.arange(60).std(), rtol=1e-5)


def test_missing_and_empty_splits(tmp_path, toy_corpus):
    with pytest.raises(InputError, match="val split not found"):
        index_split(tmp_path, "val", "val")
    (tmp_path / "val").mkdir()
    with pytest.raises(InputError, match="val split is empty"):
        index_split(tmp_path, "val", "val")


def test_validation_split_must_not_be_test():
    from dualtalk.train import compose_train_config

    with pytest.raises(DualTalkError, match="must not be the test split"):
        compose_train_config(overrides=["data.val_split=test"])
    with pytest.raises(DualTalkError, match="differ from the training split"):
        compose_train_config(overrides=["data.val_split=train"])


def test_loader_workers_are_at_most_the_usable_cpus(toy_corpus, monkeypatch):
    """More loader processes than CPUs only wait (and PyTorch warns of them): the loader takes at most one per
    CPU; the batches come from the sampler in this process, so their number does not change them."""
    from dualtalk.config import DataConfig
    from dualtalk.train import data as data_mod

    index, _ = index_split(toy_corpus, "val", "val")
    monkeypatch.setattr(data_mod, "usable_cpus", lambda: 1)
    loader = data_mod.validation_loader(index, DataConfig(window_frames=25, batch_size=4), num_workers=4)
    assert loader.num_workers == 1
    first = [b["key"] for b in loader]
    again = data_mod.validation_loader(index, DataConfig(window_frames=25, batch_size=4), num_workers=0)
    assert [b["key"] for b in again] == first
