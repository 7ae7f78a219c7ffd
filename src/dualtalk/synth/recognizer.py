"""A speech recognizer for synthetic speech: a small ``Wav2Vec2ForCTC`` trained on a corpus's own vowels.

SelfTalk (:mod:`dualtalk.model.baselines.selftalk`) trains its lip reader to agree with a frozen speech
recognizer. Its own (wav2vec2 xlsr-53 English) is a hub download and was never trained on the synthetic
voices of ``dualtalk synth``; this module makes one that was, so that SelfTalk's objective can be measured on
a synthetic corpus: a ``Wav2Vec2ForCTC`` (the class and directory format SelfTalk loads, written with
``save_pretrained`` beside a ``Wav2Vec2CTCTokenizer`` vocabulary) trained from scratch with CTC on the
corpus's **training split only**, each person's own recording against the vowels they say in it. The
transcripts come from the generator's plan, regenerated from ``manifest.json`` (each conversation's seed and
scenario: the same audio, sample for sample, as the files).

    from dualtalk.synth.recognizer import train_recognizer
    report = train_recognizer("data/synth", "runs/synth-recognizer")   # about 5 minutes on 2 cores
    # dualtalk train --preset selftalk-small model.baseline.recognizer=runs/synth-recognizer \\
    #     model.baseline.recognizer_dim=64 model.baseline.recognizer_vocab=7

Vocabulary: ``<pad>`` (0, the CTC blank) then the vowels ``a e i o u m`` ("m": the closed "mm" of a
backchannel). Laughs are in the audio and not in the transcripts (a recognizer does not write them). Inputs
are normalised as SelfTalk normalises them before its recognizer (zero mean, unit variance per clip).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DualTalkError, InputError
from ..features.audio_encoder import normalize_waveform
from ..layout import SAMPLE_RATE
from .corpus import load_manifest, make_conversation, manifest_scenario
from .timeline import VOWEL_NAMES, Syllables

#: the recognizer's tokens: the CTC blank, then the vowels
VOCAB = ["<pad>", *VOWEL_NAMES]


@dataclass
class RecognizerConfig:
    """The recognizer's size and its training. The defaults are a 2-layer, 64-wide wav2vec2 (about 0.2 M
    parameters) that learns the synthetic vowels in 1,500 steps (minutes on a CPU)."""

    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    conv_dim: int = 64
    steps: int = 1500
    batch_size: int = 8
    window_seconds: float = 4.0
    lr: float = 1e-3
    seed: int = 0


def build_recognizer(cfg: RecognizerConfig):
    """A randomly initialised ``Wav2Vec2ForCTC`` of ``cfg``'s size over :data:`VOCAB` (50 frames per second)."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    config = Wav2Vec2Config(
        vocab_size=len(VOCAB),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=2 * cfg.hidden_size,
        conv_dim=(cfg.conv_dim,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        mask_time_prob=0.0,
        pad_token_id=0,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    return Wav2Vec2ForCTC(config)


def corpus_transcripts(corpus_dir: str | os.PathLike, split: str) -> list[tuple[np.ndarray, Syllables]]:
    """Every person of every conversation of ``split``: (their recording (S,), their syllables), regenerated
    from the manifest (one error line if the corpus has no such split)."""
    manifest = load_manifest(corpus_dir)
    scenario = manifest_scenario(manifest)
    items = [it for it in manifest["items"] if it.get("split", "") == split]
    if not items:
        raise InputError(Path(corpus_dir) / "manifest.json", f"no conversation in split {split!r}")
    out: list[tuple[np.ndarray, Syllables]] = []
    for it in items:
        conv = make_conversation(it["seconds"], it["seed"], scenario)
        out += [(conv.audio[k], conv.syllables[k]) for k in (1, 2)]
    return out


def encode(text: str) -> list[int]:
    return [VOCAB.index(c) for c in text]


def decode(ids) -> str:
    """Greedy CTC decoding of per-frame ids: repeats merged, blanks dropped."""
    out, prev = [], None
    for i in (int(x) for x in ids):
        if i != prev and i != 0:
            out.append(VOCAB[i])
        prev = i
    return "".join(out)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _crop(audio: np.ndarray, syl: Syllables, s0: int, n: int) -> tuple[np.ndarray, str]:
    """Samples [s0, s0 + n) of a recording and the vowels whose syllable centre lies inside them."""
    return audio[s0 : s0 + n], syl.transcript(s0 / SAMPLE_RATE, (s0 + n) / SAMPLE_RATE)


def _windows(people: list[tuple[np.ndarray, Syllables]], seconds: float) -> list[tuple[np.ndarray, str]]:
    """Consecutive windows of ``seconds`` of each recording with the vowels said inside them."""
    n = int(round(seconds * SAMPLE_RATE))
    return [_crop(audio, syl, s0, n) for audio, syl in people for s0 in range(0, len(audio) - n + 1, n)]


def vowel_error_rate(model, windows: list[tuple[np.ndarray, str]], batch_size: int = 8) -> float:
    """Edit distance of the greedy transcripts to the true vowels, over the number of true vowels."""
    errors = total = 0
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size]
            x = normalize_waveform(torch.from_numpy(np.stack([a for a, _ in chunk])).float())
            ids = model(x).logits.argmax(-1)  # (B, S')
            for row, (_, text) in zip(ids, chunk):
                errors += edit_distance(decode(row), text)
                total += len(text)
    return errors / max(total, 1)


def train_recognizer(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: RecognizerConfig | None = None,
    log=print,
) -> dict:
    """Train the recognizer on ``corpus_dir``'s ``train`` split, save it to ``out_dir`` -> its report.

    Random crops of ``window_seconds`` from the training recordings, each against the vowels whose syllable
    centre lies inside the crop (CTC, AdamW, cosine decay). The report (also ``out_dir/recognizer.json``):
    the vowel error rate of greedy decoding on ``val`` (consecutive windows; ``train`` where there is no
    ``val``) before and after training, the settings, and the ``model.baseline`` overrides SelfTalk needs to
    load it (``recognizer``, ``recognizer_dim``, ``recognizer_vocab``)."""
    from transformers import Wav2Vec2CTCTokenizer

    cfg = cfg or RecognizerConfig()
    if cfg.steps < 1 or cfg.batch_size < 1 or not cfg.window_seconds > 0:
        raise DualTalkError("recognizer: steps, batch_size and window_seconds must be positive")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train = corpus_transcripts(corpus_dir, "train")
    try:
        held_out = _windows(corpus_transcripts(corpus_dir, "val"), cfg.window_seconds)
        held_out_split = "val"
    except InputError:
        held_out, held_out_split = _windows(train, cfg.window_seconds), "train"
    n = int(round(cfg.window_seconds * SAMPLE_RATE))
    usable = [(a, s) for a, s in train if len(a) >= n]
    if not usable:
        raise DualTalkError(f"recognizer: no training recording is {cfg.window_seconds:g} s long")
    model = build_recognizer(cfg)
    before = vowel_error_rate(model, held_out)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    warmup = max(1, cfg.steps // 10)

    def lr_at(s: int) -> float:  # linear warm-up over a tenth of the steps, then cosine decay
        return (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (cfg.steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    for step in range(cfg.steps):
        waves, labels = [], []
        for j in rng.integers(0, len(usable), cfg.batch_size):
            audio, syl = usable[int(j)]
            wave, text = _crop(audio, syl, int(rng.integers(0, len(audio) - n + 1)), n)
            waves.append(wave)
            labels.append(encode(text))
        width = max(1, max(len(t) for t in labels))
        y = torch.full((len(labels), width), -100, dtype=torch.long)
        for i, t in enumerate(labels):
            y[i, : len(t)] = torch.tensor(t, dtype=torch.long)
        x = normalize_waveform(torch.from_numpy(np.stack(waves)).float())  # (B, S)
        loss = model(x, labels=y).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0 or step + 1 == cfg.steps:
            log(f"recognizer step {step + 1}/{cfg.steps}: CTC loss {loss.item():.3f}")
    after = vowel_error_rate(model, held_out)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    vocab = out / "vocab.json"
    vocab.write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}) + "\n")
    Wav2Vec2CTCTokenizer(str(vocab), pad_token="<pad>", unk_token="<pad>", word_delimiter_token=None).save_pretrained(
        out
    )
    report = {
        "corpus": str(corpus_dir),
        "config": vars(cfg),
        "parameters": sum(p.numel() for p in model.parameters()),
        "held_out_split": held_out_split,
        "held_out_windows": len(held_out),
        "vowel_error_rate_before": before,
        "vowel_error_rate": after,
        "overrides": [
            f"model.baseline.recognizer={out}",
            f"model.baseline.recognizer_dim={cfg.hidden_size}",
            f"model.baseline.recognizer_vocab={len(VOCAB)}",
        ],
    }
    (out / "recognizer.json").write_text(json.dumps(report, indent=1) + "\n")
    log(f"recognizer: vowel error rate on {held_out_split} {before:.2f} -> {after:.2f}; saved to {out}")
    return report
