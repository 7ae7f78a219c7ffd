"""The comparison baselines through the training engine: each tiny preset trains and fits the toy corpus, is
predicted from its model directory, resumes across its stages; a missing stage-1 checkpoint is one error line."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dualtalk.cli import main
from dualtalk.errors import InputError
from dualtalk.model.checkpoint import load_model
from dualtalk.train import compose_train_config, train


@pytest.fixture(scope="module")
def tiny_recognizer(tmp_path_factory):
    """A random ``Wav2Vec2ForCTC`` of the tiny preset's sizes in a local directory: SelfTalk loads its
    recognizer from there as from a hub id."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from dualtalk.model.presets import TINY_WAV2VEC2

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("recognizer")
    Wav2Vec2ForCTC(Wav2Vec2Config(**TINY_WAV2VEC2, vocab_size=12, pad_token_id=0)).save_pretrained(path)
    return path


SETTINGS = ["data.window_frames=32", "optim.lr=3e-3", "val_every=10", "checkpoint_every=10"]


def val_losses(run) -> list[tuple[int, float]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(fh) if r["split"] == "val"]


@pytest.mark.parametrize("name", ["faceformer", "codetalker", "selftalk", "learning2listen"])
def test_tiny_baseline_trains_and_predicts(name, toy_corpus, tmp_path, fast, tiny_recognizer):
    extra = ["model.baseline.stage1_steps=20"] if name in ("codetalker", "learning2listen") else []
    if name == "selftalk":
        extra = [f"model.baseline.recognizer={tiny_recognizer}"]
    cfg = compose_train_config(preset=f"tiny-{name}", max_steps=40, overrides=fast + SETTINGS + extra)
    best = train(toy_corpus, tmp_path / "run", cfg, progress=False)
    losses = val_losses(tmp_path / "run")
    first = losses[0][1]
    final = [loss for step, loss in losses if step > 20 or name in ("faceformer", "selftalk")]
    assert min(final) < 0.8 * first, losses  # from the untrained model (zero output = the mean) to a fit
    model = load_model(best)
    assert model.config.variant == name and model.extra["step"] > (20 if extra else 0)  # kept from the last stage
    out = tmp_path / "pred"
    assert (
        main(["predict", "--model", str(best), "--data", str(toy_corpus / "test"), "--out", str(out), "--quiet"]) == 0
    )
    preds = sorted(out.glob("*.npy"))
    assert len(preds) == 2 and all(np.isfinite(np.load(p)).all() for p in preds)


def test_codebook_stages_resume_exactly(toy_corpus, tmp_path, fast):
    """A run stopped in stage 1 and resumed across the stage boundary ends with the uninterrupted run's weights."""
    over = fast + SETTINGS + ["model.baseline.stage1_steps=15", "val_every=100"]
    whole = train(
        toy_corpus,
        tmp_path / "a",
        compose_train_config(preset="tiny-codetalker", max_steps=30, overrides=over),
        progress=False,
    )
    train(
        toy_corpus,
        tmp_path / "b",
        compose_train_config(preset="tiny-codetalker", max_steps=10, overrides=over),
        progress=False,
    )
    train(toy_corpus, tmp_path / "b", max_steps=30, resume=True, progress=False)
    a = load_file(str(tmp_path / "a" / "checkpoints" / "step_00000030" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "step_00000030" / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert whole.exists()


def test_stage1_from_loads_a_trained_codebook(toy_corpus, tmp_path, fast):
    over = fast + SETTINGS
    first = train(
        toy_corpus,
        tmp_path / "vq",
        compose_train_config(
            preset="tiny-learning2listen", max_steps=12, overrides=over + ["model.baseline.stage1_steps=10"]
        ),
        progress=False,
    )
    cfg = compose_train_config(
        preset="tiny-learning2listen", max_steps=4, overrides=over + [f"model.baseline.stage1_from={first}"]
    )
    best = train(toy_corpus, tmp_path / "pred", cfg, progress=False)
    a, b = load_file(str(first / "model.safetensors")), load_file(str(best / "model.safetensors"))
    vq = [k for k in a if k.startswith("vq.")]
    assert vq and all(torch.equal(a[k], b[k]) for k in vq)  # frozen in stage 2


def test_selftalk_recognizer_that_does_not_load_is_one_error_line(toy_corpus, tmp_path, fast, capsys):
    code = main(
        ["train", "--data", str(toy_corpus), "--out", str(tmp_path / "run"), "--preset", "tiny-selftalk"]
        + fast
        + [f"model.baseline.recognizer={tmp_path / 'nowhere'}"]
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert code != 0 and len(errors) == 1 and "cannot load the speech recognizer" in errors[0]
    assert "(directory not found)" in errors[0]  # a path, not read as a hub id


def test_missing_stage1_checkpoint_is_one_error_line(toy_corpus, tmp_path, fast, capsys):
    with pytest.raises(InputError) as err:
        compose_train_config(preset="tiny-codetalker", overrides=[f"model.baseline.stage1_from={tmp_path / 'none'}"])
    assert "stage-1 checkpoint not found" in str(err.value) and "\n" not in str(err.value)
    code = main(
        ["train", "--data", str(toy_corpus), "--out", str(tmp_path / "run"), "--preset", "tiny-codetalker"]
        + [f"model.baseline.stage1_from={tmp_path / 'none'}"]
    )
    err_text = capsys.readouterr().err.strip()
    assert code != 0 and len(err_text.splitlines()) == 1 and "stage-1 checkpoint not found" in err_text
    assert not (tmp_path / "run").exists()


def test_benchmark_runs_the_baselines_beside_the_papers_numbers(tmp_path):
    import json

    from dualtalk.synth import make_corpus

    data = tmp_path / "synth"
    make_corpus(data, 3, seconds=4.0, seed=5, splits={"train": 1, "val": 1, "test": 1}, progress=False)
    methods = "faceformer,codetalker,selftalk,learning2listen"
    argv = ["benchmark", "--data", str(data), "--out", str(tmp_path / "report"), "--preset", "tiny-mel"]
    argv += ["--steps", "3", "--quiet", "--methods", methods, "data.window_frames=32", "data.batch_size=4"]
    assert main(argv + ["data.num_workers=0", "val_every=3"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["methods"] == methods.split(",")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Against the paper's numbers" in md and "| learning2listen |" in md and "24.61" in md
    cfg = json.loads((tmp_path / "report" / "runs" / "codetalker" / "best" / "config.json").read_text())
    assert cfg["model"]["variant"] == "codetalker" and cfg["model"]["baseline"]["stage1_steps"] == 1


def test_a_run_that_ends_in_the_first_stage_says_so(toy_corpus, tmp_path, fast, capsys):
    """max_steps within baseline.stage1_steps: no best/ (nothing predicts yet); the returned path is the last
    checkpoint's stage-1 model, which exists, and one line says what happened and how to go on."""
    over = fast + SETTINGS + ["model.baseline.stage1_steps=10"]
    out = train(
        toy_corpus, tmp_path / "run", compose_train_config(preset="tiny-codetalker", max_steps=4, overrides=over)
    )
    assert out == tmp_path / "run" / "checkpoints" / "step_00000004" / "model" and out.is_dir()
    assert not (tmp_path / "run" / "best").exists()
    err = capsys.readouterr().err
    assert "within codetalker's first stage (baseline.stage1_steps 10)" in err and "--resume" in err
