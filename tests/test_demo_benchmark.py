"""``dualtalk demo`` and ``dualtalk benchmark`` end to end (shortened conversation, tiny corpus)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import put_nan

from dualtalk.cli import main
from dualtalk.demo import DEMO_MODEL


def test_shipped_demo_model_is_small_and_loads():
    from dualtalk.model.checkpoint import load_model

    weights = DEMO_MODEL / "model.safetensors"
    assert weights.exists(), "re-create it with: python scripts/train_demo_model.py"
    assert weights.stat().st_size <= 20e6
    model = load_model(DEMO_MODEL)
    assert model.extra["made_by"] == "python scripts/train_demo_model.py"
    # trained on the corpus this generator makes today (re-create it when the generator's version changes)
    from dualtalk.synth import GENERATOR_VERSION

    assert model.extra["corpus"]["version"] == GENERATOR_VERSION
    assert model.config.variant == "paper"


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    exe = Path(sys.executable).with_name("dualtalk")
    proc = subprocess.run(
        [str(exe), "demo", "--out", str(out), "--seconds", "6", "--seed", "3", "--size", "128", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "generated_B.npz",
        "metrics.json",
        "motion.png",
        "conversation.mp4",
        "conversation/demo_speaker1.wav",
        "conversation/demo_speaker2.npz",
        "conversation/truth.json",
    ):
        assert (out / name).exists(), name
        assert str(out / name.split("/")[0]) in proc.stdout  # says where it wrote everything
    with np.load(out / "generated_B.npz") as d:
        assert d["exp"].shape == (150, 50) and d["pose"].shape == (150, 6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["mean"]) >= {"fid_exp", "mse_jaw", "sid_pose", "rpcc_exp"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_demo_with_a_real_model_and_files(tmp_path):
    from tests.conftest import shared_path

    demo = shared_path("data", "dualtalk_demo")
    conv = "xkHwlcDSOjc_sub_video_109_000"
    out = tmp_path / "real"
    code = main(
        [
            "demo",
            "--model",
            "tiny",
            "--self-audio",
            str(demo / f"{conv}_speaker2.wav"),
            "--partner-audio",
            str(demo / f"{conv}_speaker1.wav"),
            "--partner-motion",
            str(demo / f"{conv}_speaker1.npz"),
            "--out",
            str(out),
            "--no-video",
            "--quiet",
        ]
    )
    assert code == 0
    assert (out / "generated_B.npz").exists() and (out / "motion.png").exists()
    assert not (out / "metrics.json").exists()  # no ground truth given


def test_demo_rejects_half_given_real_inputs(tmp_path, capsys):
    assert main(["demo", "--model", "tiny", "--self-audio", "x.wav", "--out", str(tmp_path)]) == 2
    assert "go together" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from dualtalk.synth import make_corpus

    root = tmp_path_factory.mktemp("corpus") / "synth"
    make_corpus(root, 6, seconds=8.0, seed=5, splits={"train": 4, "val": 1, "test": 1}, progress=False)
    return root


def test_benchmark_writes_a_complete_report(tiny_corpus, tmp_path):
    from dualtalk.benchmark import DEFAULT_METHODS as METHODS

    out = tmp_path / "report"
    code = main(
        [
            "benchmark",
            "--data",
            str(tiny_corpus),
            "--out",
            str(out),
            "--preset",
            "tiny-mel",
            "--steps",
            "2",
            "--quiet",
            "data.window_frames=50",
            "data.batch_size=4",
            "data.num_workers=0",
            "val_every=2",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["methods"] == list(METHODS)
    for m in METHODS:
        res = report["results"][m]
        assert np.isfinite(res["mean"]["mse_exp"])
        assert res["by_role"]["speaking"] is not None or res["by_role"]["listening"] is not None
    md = (out / "report.md").read_text()
    assert "| Method | FD-EXP | FD-JAW | FD-POSE | P-FD-EXP" in md
    for m in METHODS:
        assert f"| {m} |" in md
    assert "Noise floor" in md
    assert (out / "roles.png").stat().st_size > 1000
    # learning curves of every learned method, and the score of every cause of the synthetic corpus
    assert report["learning_curves"] and (out / "learning_curves.png").stat().st_size > 1000
    assert "![learning curves](learning_curves.png)" in md
    causes = report["causes"]
    assert list(causes["groups"]) == ["speech", "nod", "turn", "smile"]
    assert set(causes["methods"]) == set(METHODS) and set(causes["probe"]) == {"nod", "turn", "smile"}
    assert causes["methods"]["mean"]["smile"]["reduction"] == pytest.approx(0.0, abs=1e-6)
    assert "## By cause" in md and "| probe |" in md
    # the learned methods' trained models are regular model directories
    assert (out / "runs" / "speaker_only" / "best" / "model.safetensors").exists()
    # running again into the same report directory replaces those methods' results
    code = main(
        [
            "benchmark",
            "--data",
            str(tiny_corpus),
            "--out",
            str(out),
            "--preset",
            "tiny-mel",
            "--steps",
            "1",
            "--methods",
            "speaker_only,mirror",
            "--quiet",
            "data.window_frames=50",
            "data.batch_size=4",
            "data.num_workers=0",
        ]
    )
    assert code == 0
    assert json.loads((out / "report.json").read_text())["methods"] == ["speaker_only", "mirror"]


def test_benchmark_rejects_unknown_methods_and_missing_splits(tiny_corpus, tmp_path, capsys):
    assert (
        main(["benchmark", "--data", str(tiny_corpus), "--out", str(tmp_path / "r"), "--methods", "dualtalk,nope"]) == 2
    )
    assert "unknown method(s) nope" in capsys.readouterr().err
    assert main(["benchmark", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "split directory not found" in capsys.readouterr().err


FAST = [
    "--preset",
    "tiny-mel",
    "--steps",
    "2",
    "--quiet",
    "data.window_frames=50",
    "data.batch_size=4",
    "data.num_workers=0",
    "val_every=2",
]


def test_benchmark_jobs_trains_methods_in_worker_processes(tiny_corpus, tmp_path):
    out = tmp_path / "report"
    code = main(
        [
            "benchmark",
            "--data",
            str(tiny_corpus),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--methods",
            "speaker_only,dualtalk_paper,mean",
        ]
        + FAST
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["jobs"] == 2 and report["methods"] == ["speaker_only", "dualtalk_paper", "mean"]
    for m in ("speaker_only", "dualtalk_paper"):
        assert (out / "runs" / m / "best" / "model.safetensors").exists()
        assert "val loss" in (out / "logs" / f"{m}.log").read_text()  # the worker's output went to its log
        assert np.isfinite(report["results"][m]["mean"]["mse_exp"]) and report["seconds"][m] > 0
    assert len(list((out / "pred" / "dualtalk_paper").glob("*.npy"))) == 2  # both sides of the test conversation


def test_benchmark_jobs_names_the_log_of_a_failed_method(tiny_corpus, tmp_path, capsys):
    import shutil

    data = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, data)
    next((data / "train").glob("*_speaker1.wav")).write_bytes(b"not a wav file")  # fails inside the worker
    out = tmp_path / "report"
    code = main(
        ["benchmark", "--data", str(data), "--out", str(out), "--jobs", "2", "--methods", "speaker_only,listener_only"]
        + FAST
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "failed" in err and "logs" in err and len(err.strip().splitlines()) == 1
    assert not (out / "report.json").exists()  # no half-written report
    assert main(["benchmark", "--data", str(data), "--out", str(out), "--jobs", "0"]) == 2
    assert "argument --jobs: must be > 0, got 0" in capsys.readouterr().err


def test_benchmark_reuse_keeps_finished_methods_and_retrains_changed_ones(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["benchmark", "--data", str(tiny_corpus), "--out", str(out), "--methods", "speaker_only,mean"]
    assert main(args + FAST) == 0
    weights = out / "runs" / "speaker_only" / "best" / "model.safetensors"
    first = weights.stat().st_mtime_ns
    # same data and config: not trained again, its predictions and seconds are kept, a method is added
    more = ["benchmark", "--data", str(tiny_corpus), "--out", str(out), "--methods", "speaker_only,mirror,mean"]
    assert main(more + ["--reuse"] + FAST) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["reused"] == ["speaker_only"] and weights.stat().st_mtime_ns == first
    assert report["seconds"]["speaker_only"] > 0 and np.isfinite(report["results"]["speaker_only"]["mean"]["mse_exp"])
    # a field its model does not read (the mimicry path of a model without the partner's face): the same run
    assert main(more + ["--reuse"] + FAST + ["model.mirror_kernel=5", "model.mirror_gate_bias=2"]) == 0
    assert json.loads((out / "report.json").read_text())["reused"] == ["speaker_only"]
    assert weights.stat().st_mtime_ns == first
    # a changed training config is trained again, even with --reuse
    assert main(args + ["--reuse"] + FAST + ["seed=3"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["reused"] == [] and weights.stat().st_mtime_ns != first
    # without --reuse a re-run always trains
    assert main(args + FAST) == 0
    assert json.loads((out / "report.json").read_text())["reused"] == []


def test_benchmark_reuse_refits_the_output_gain_when_only_the_gate_changed(tiny_corpus, tmp_path):
    """``output_group_gate`` (and ``output_gain_shrink``) decide only the gain fitted at the kept step: with
    --reuse a run differing only in them keeps its weights, gets the gain (and gate) refitted exactly as
    training under the new config fits it, and its predictions are made again."""
    from dualtalk.model.checkpoint import load_model

    out = tmp_path / "report"
    gain_on = ["model.output_gain=true", "model.normalize_motion=true"]
    args = ["benchmark", "--data", str(tiny_corpus), "--out", str(out), "--methods", "speaker_only,mean"]
    assert main(args + FAST + gain_on + ["output_group_gate=0"]) == 0
    best = out / "runs" / "speaker_only" / "best"
    before = load_model(str(best))
    assert before.extra["output_groups_at_mean"] == []
    assert main(args + ["--reuse"] + FAST + gain_on + ["output_group_gate=1000"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["reused"] == ["speaker_only"]
    after = load_model(str(best))
    for k, v in before.state_dict().items():  # the same weights, only the gain differs
        if k != "output_gain":
            torch.testing.assert_close(after.state_dict()[k], v)
    assert set(after.extra["output_groups_at_mean"]) == {"exp", "jaw", "pose"} and (after.output_gain == 0).all()
    pred = np.load(sorted((out / "pred" / "speaker_only").glob("*.npy"))[0])
    np.testing.assert_array_equal(pred, np.broadcast_to(after.motion_mean.numpy(), pred.shape))
    # refitted again under another gate and the shrunk gain == trained under that config from the start
    # (training is deterministic)
    rule = ["output_group_gate=0.5", "output_gain_shrink=true"]
    assert main(args + ["--reuse"] + FAST + gain_on + rule) == 0
    assert json.loads((out / "report.json").read_text())["reused"] == ["speaker_only"]
    fresh = tmp_path / "fresh"
    assert main(["benchmark", "--data", str(tiny_corpus), "--out", str(fresh), "--methods", "speaker_only"]
                + FAST + gain_on + rule) == 0  # fmt: skip
    refit, trained = load_model(str(best)), load_model(str(fresh / "runs" / "speaker_only" / "best"))
    np.testing.assert_allclose(refit.output_gain.numpy(), trained.output_gain.numpy(), atol=1e-4)
    assert refit.extra["output_group_margins"] == pytest.approx(trained.extra["output_group_margins"], abs=0.02)


def test_benchmark_trains_with_the_config_files_seed_unless_seed_is_given(tiny_corpus, tmp_path):
    """``--seed`` wins; without it a config file's ``seed`` reaches the training (it used to be replaced by 0
    silently); a config without one trains with 0, as every benchmark figure was measured."""
    from dualtalk.benchmark import benchmark_seed

    assert benchmark_seed() == 0  # recipe-cpu sets no seed
    seeded = tmp_path / "seeded.yaml"
    seeded.write_text("preset: tiny-mel\nseed: 5\n")
    assert benchmark_seed(seeded) == 5
    out = tmp_path / "report"
    args = ["benchmark", "--data", str(tiny_corpus), "--out", str(out), "--methods", "speaker_only,mean"]
    run = out / "runs" / "speaker_only" / "config.yaml"
    assert main(args + ["--config", str(seeded)] + FAST) == 0
    assert json.loads((out / "report.json").read_text())["seed"] == 5 and "seed: 5" in run.read_text()
    assert main(args + ["--config", str(seeded), "--seed", "2"] + FAST) == 0
    assert json.loads((out / "report.json").read_text())["seed"] == 2 and "seed: 2" in run.read_text()


def test_benchmark_resumes_an_interrupted_run_with_reuse(tiny_corpus, tmp_path, monkeypatch, capsys):
    """SIGTERM while a method trains: the benchmark says how to go on, and --reuse continues that run from its
    checkpoint (not from step 0); a test split it cannot read is refused before any training."""
    from dualtalk.train import engine

    out = tmp_path / "report"
    args = ["benchmark", "--data", str(tiny_corpus), "--out", str(out), "--methods", "speaker_only"] + FAST
    real_step = engine.Trainer.train_step
    calls = {"n": 0}

    def interrupted_step(self, *a, **kw):  # the second step is "interrupted": SIGTERM arrives during it
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self, *a, **kw)

    monkeypatch.setattr(engine.Trainer, "train_step", interrupted_step)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "speaker_only: SIGTERM at step" in err and "the same dualtalk benchmark command with --reuse" in err
    monkeypatch.setattr(engine.Trainer, "train_step", real_step)
    assert main(args + ["--reuse"]) == 0
    history = json.loads((out / "runs" / "speaker_only" / "run.json").read_text())["history"]
    assert [e["event"] for e in history] == ["start", "resume"]


def test_benchmark_checks_the_test_split_before_training(tiny_corpus, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_corpus, data)
    bad = put_nan(sorted((data / "test").glob("*_speaker1.npz"))[0], at=(3, 0))
    out = tmp_path / "report"
    assert main(["benchmark", "--data", str(data), "--out", str(out), "--methods", "speaker_only"] + FAST) == 2
    assert f"{bad}: 'exp' contains NaN" in capsys.readouterr().err
    assert not out.exists()  # nothing trained, nothing written


def test_benchmark_reuse_trains_again_a_damaged_run_and_seeds_agree(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["benchmark", "--data", str(tiny_corpus), "--out", str(out), "--methods", "speaker_only"] + FAST
    assert main(args) == 0
    weights = out / "runs" / "speaker_only" / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated since
    assert main(args + ["--reuse"]) == 0
    assert json.loads((out / "report.json").read_text())["reused"] == []  # trained again, not reused
    assert main(args + ["--seed", "3", "seed=4"]) == 2
    assert "--seed 3 and the override seed=4 disagree" in capsys.readouterr().err
