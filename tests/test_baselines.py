"""Non-learned baselines end to end on a tiny synthetic corpus: shapes and values."""

from __future__ import annotations

import numpy as np
import pytest

from dualtalk.baselines import predict_baseline, training_motions
from dualtalk.errors import DualTalkError
from dualtalk.io.motion import load_model_motion, load_motion
from dualtalk.synth import make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    make_corpus(root / "c", conversations=4, seconds=3, seed=2, splits="train=2,test=2", progress=False)
    # training conversations longer than the test ones, so windows have random offsets
    make_corpus(root / "long", conversations=2, seconds=5, seed=9, progress=False)
    test = root / "c" / "test"
    (test / "synth_0003_speaker2.npz").unlink()  # one-sided: only speaker 2 (whose partner has motion) is generatable
    return root


def _truth(path):
    return load_motion(path).to_model()


def test_mean(corpus, tmp_path):
    train = corpus / "c" / "train"
    paths = predict_baseline("mean", train, corpus / "c" / "test", tmp_path)
    assert sorted(p.name for p in paths) == [
        "synth_0002_speaker1.npy",
        "synth_0002_speaker2.npy",
        "synth_0003_speaker2.npy",
    ]
    frames = np.concatenate([_truth(p) for p in sorted(train.glob("*.npz"))])
    for p in paths:
        pred = load_model_motion(p)
        assert pred.shape == (75, 56)  # 3 s = 48000 samples -> ceil(48000 / 640) = 75 frames
        np.testing.assert_allclose(pred, np.repeat(frames.mean(0, keepdims=True), 75, 0), atol=1e-6)


def test_mirror(corpus, tmp_path):
    test = corpus / "c" / "test"
    paths = predict_baseline("mirror", None, test, tmp_path)
    assert len(paths) == 3
    for p in paths:
        name, k = p.stem.rsplit("_speaker", 1)
        partner = _truth(test / f"{name}_speaker{3 - int(k)}.npz")
        np.testing.assert_array_equal(load_model_motion(p), partner)


def test_random_segment_is_a_window_of_another_training_conversation(corpus, tmp_path):
    train = corpus / "long"  # synth_0000, synth_0001 of 125 frames
    data = corpus / "c" / "train"  # synth_0000, synth_0001 of 75 frames: names shared with the pool
    pool = training_motions(train)
    paths = predict_baseline("random_segment", train, data, tmp_path / "a", seed=0)
    assert len(paths) == 4
    starts = set()
    for p in paths:
        pred = load_model_motion(p)
        assert pred.shape == (75, 56)
        name = p.stem.rsplit("_speaker", 1)[0]
        hits = [(n, k, s) for n, k, m in pool for s in range(len(m) - 75 + 1) if np.array_equal(m[s : s + 75], pred)]
        assert len(hits) == 1
        assert hits[0][0] != name  # never the conversation itself
        starts.add(hits[0][2])
    assert len(starts) > 1  # random offsets
    # seeded: same seed, same windows; another seed, other windows
    again = predict_baseline("random_segment", train, data, tmp_path / "b", seed=0)
    other = predict_baseline("random_segment", train, data, tmp_path / "c", seed=1)
    assert all(np.array_equal(load_model_motion(a), load_model_motion(b)) for a, b in zip(paths, again))
    assert not all(np.array_equal(load_model_motion(a), load_model_motion(b)) for a, b in zip(paths, other))


def test_random_segment_wraps_short_training_motion(corpus, tmp_path):
    # predicting 125-frame conversations from a pool of 75-frame ones: read cyclically
    paths = predict_baseline("random_segment", corpus / "c" / "train", corpus / "long", tmp_path, seed=3)
    pool = {(n, k): m for n, k, m in training_motions(corpus / "c" / "train")}
    for p in paths:
        pred = load_model_motion(p)
        assert pred.shape == (125, 56)
        assert any(np.array_equal(np.tile(m, (3, 1))[s : s + 125], pred) for m in pool.values() for s in range(75))


def test_errors(corpus, tmp_path):
    with pytest.raises(DualTalkError, match="unknown baseline"):
        predict_baseline("median", corpus / "c" / "train", corpus / "c" / "test", tmp_path)
    with pytest.raises(DualTalkError, match="needs a training directory"):
        predict_baseline("mean", None, corpus / "c" / "test", tmp_path)
    single = tmp_path / "single"
    single.mkdir()
    for p in (corpus / "c" / "train").glob("synth_0000_*"):
        (single / p.name).write_bytes(p.read_bytes())
    with pytest.raises(DualTalkError, match="no conversation other than"):
        predict_baseline("random_segment", single, single, tmp_path / "x")
    with pytest.raises(DualTalkError, match="not found"):
        predict_baseline("mirror", None, tmp_path / "missing", tmp_path)
