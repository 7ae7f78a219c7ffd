"""The synthetic-speech recognizer (``dualtalk.synth.recognizer``): transcripts from the generator's plan, a
model directory SelfTalk loads as it loads any recognizer, and one error line for a corpus without a split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dualtalk.errors import InputError
from dualtalk.model.baselines.selftalk import SelfTalk
from dualtalk.model.presets import get_preset
from dualtalk.synth import make_conversation, make_corpus
from dualtalk.synth.recognizer import (
    VOCAB,
    RecognizerConfig,
    corpus_transcripts,
    decode,
    edit_distance,
    train_recognizer,
)
from dualtalk.synth.timeline import VOWEL_NAMES, Syllables

TINY = RecognizerConfig(hidden_size=16, layers=1, heads=2, conv_dim=16, steps=3, batch_size=2, window_seconds=1.0)


def test_transcript_takes_the_syllables_centred_in_the_span():
    syl = Syllables(
        start=np.array([0.0, 0.3, 0.9]),
        dur=np.array([0.2, 0.2, 0.2]),
        vowel=np.array([VOWEL_NAMES.index(v) for v in "aim"]),
        stress=np.ones(3),
        accent=np.zeros(3),
        phrase_start=np.zeros(3),
        phrase_end=np.ones(3),
    )
    assert syl.transcript() == "aim"
    # centres 0.1, 0.4, 1.0 s: a span holds a syllable whose centre is in [t0, t1)
    assert syl.transcript(0.05, 1.0) == "ai" and syl.transcript(0.15, 1.01) == "im"
    assert syl.transcript(0.0, 0.4) == "a" and syl.transcript(0.41, 0.95) == ""


def test_conversation_keeps_what_each_person_says():
    conv = make_conversation(6.0, seed=3)
    for k in (1, 2):
        text = conv.syllables[k].transcript()
        assert text and set(text) <= set(VOWEL_NAMES)
        # a person's syllables sound in their own recording: it is loud at each syllable's centre
        centres = ((conv.syllables[k].start + conv.syllables[k].dur / 2) * 16000).astype(int)
        quiet = np.abs(conv.audio[k]).max() * 0.01
        inside = centres[centres < len(conv.audio[k])]
        assert np.mean([np.abs(conv.audio[k][c - 80 : c + 80]).max() > quiet for c in inside]) > 0.9


def test_decode_and_edit_distance():
    ids = [0, 1, 1, 0, 1, 3, 3, 0, 0, 6]
    assert decode(ids) == "aaim" and VOCAB[0] == "<pad>"
    assert edit_distance("aaim", "aim") == 1 and edit_distance("", "eo") == 2 and edit_distance("ou", "ou") == 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "c"
    make_corpus(out, conversations=3, seconds=3, seed=2, splits="train=2,val=1", progress=False)
    return out


def test_recognizer_trains_saves_and_selftalk_loads_it(corpus, tmp_path):
    people = corpus_transcripts(corpus, "train")
    assert len(people) == 4 and all(len(a) == 48000 for a, _ in people)
    report = train_recognizer(corpus, tmp_path / "rec", TINY, log=lambda *_: None)
    assert report["held_out_split"] == "val" and report["held_out_windows"] == 6
    assert 0 <= report["vowel_error_rate"] and np.isfinite(report["vowel_error_rate_before"])
    saved = json.loads((tmp_path / "rec" / "recognizer.json").read_text())
    assert (
        saved["overrides"]
        == report["overrides"]
        == [
            f"model.baseline.recognizer={tmp_path / 'rec'}",
            "model.baseline.recognizer_dim=16",
            f"model.baseline.recognizer_vocab={len(VOCAB)}",
        ]
    )
    vocab = json.loads((tmp_path / "rec" / "vocab.json").read_text())
    assert vocab == {t: i for i, t in enumerate(VOCAB)}
    # SelfTalk loads it with the overrides the report gives, and its consistency loss is computed from it
    cfg = get_preset("tiny-selftalk", [o.removeprefix("model.") for o in report["overrides"]])
    torch.manual_seed(0)
    model = SelfTalk(cfg)
    model.prepare_training()
    audio = torch.from_numpy(np.stack([a[:16000] for a, _ in people[:2]])).float()  # (2, S) one second each
    motion = torch.randn(2, 25, cfg.motion_dim, requires_grad=True)
    loss = model.consistency(audio, motion)
    assert loss is not None and torch.isfinite(loss)
    loss.backward()
    assert motion.grad is not None and motion.grad.abs().sum() > 0


def test_corpus_without_the_split_is_one_error(corpus, tmp_path):
    with pytest.raises(InputError, match="no conversation in split 'test'"):
        corpus_transcripts(corpus, "test")
    make_corpus(tmp_path / "only", conversations=1, seconds=2, seed=1, progress=False)
    with pytest.raises(InputError, match="no conversation in split 'train'"):
        train_recognizer(tmp_path / "only", tmp_path / "rec", TINY)
    assert not (tmp_path / "rec").exists()
