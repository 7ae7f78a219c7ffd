"""End-to-end training: the loss drops, the run directory, exact resume, signals, feature cache, CLI errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dualtalk.cli import main
from dualtalk.errors import DualTalkError
from dualtalk.model.checkpoint import load_model
from dualtalk.train import TrainingInterrupted, compose_train_config, train

BIN = Path(sys.executable).parent


def rows(run: Path, split: str) -> list[dict]:
    with open(run / "metrics.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["split"] == split]


def test_tiny_training_lowers_validation_loss(toy_corpus, tmp_path, fast):
    cfg = compose_train_config(
        preset="tiny",
        max_steps=20,
        overrides=fast
        + ["data.window_frames=50", "data.batch_size=8", "optim.lr=3e-3", "val_every=10", "tensorboard=true"],
    )
    best = train(toy_corpus, tmp_path / "run", cfg, progress=False)
    val = rows(tmp_path / "run", "val")
    losses = [float(r["loss"]) for r in val]
    assert [int(r["step"]) for r in val] == [0, 10, 20]
    assert min(losses[1:]) < 0.3 * losses[0], losses
    norms = [float(r["grad_norm"]) for r in rows(tmp_path / "run", "train")]
    assert norms and all(np.isfinite(n) and n > 0 for n in norms)  # measured without optim.grad_clip too
    assert best == tmp_path / "run" / "best"
    model = load_model(best)  # what `dualtalk generate --model RUN/best` loads
    assert model.extra["val"]["loss"] == pytest.approx(min(losses), rel=1e-4)
    assert model.extra["train_config"]["preset"] == "tiny"
    assert len(model.extra["motion_stats"]["std"]) == 56  # also for presets that do not normalise inside
    run = tmp_path / "run"
    assert (run / "config.yaml").exists() and (run / "run.json").exists()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    train_rows = rows(run, "train")
    assert float(train_rows[-1]["examples_per_sec"]) > 0 and float(train_rows[0]["lr"]) == pytest.approx(3e-3)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000020"]
    # the CLI's consumers load the run's best model
    test = toy_corpus / "test"
    assert main(["predict", "--model", str(best), "--data", str(test), "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    assert len(list((tmp_path / "pred").glob("*_speaker*.npy"))) == 2
    assert (
        main(
            [
                "generate",
                "--model",
                str(best),
                "--self-audio",
                str(test / "test000_speaker1.wav"),
                "--partner-audio",
                str(test / "test000_speaker2.wav"),
                "--partner-motion",
                str(test / "test000_speaker2.npz"),
                "--out",
                str(tmp_path / "gen.npz"),
                "--quiet",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "gen.npz")["exp"].shape[1] == 50


def test_resume_is_exact_and_stats_are_stored(toy_corpus, tmp_path, fast):
    """3 steps + resume to 7 == 7 steps straight (accumulation, EMA, epochs of 3 micro-batches)."""
    over = fast + [
        "optim.grad_accum_steps=2",
        "ema_decay=0.9",
        "checkpoint_every=3",
        "val_every=6",
        "optim.step_unit=step",
        "optim.step_size=2",
        "optim.gamma=0.5",
        "optim.grad_clip=1.0",
    ]
    straight = train(
        toy_corpus, tmp_path / "a", compose_train_config(preset="tiny-mel", max_steps=7, overrides=over), progress=False
    )
    train(toy_corpus, tmp_path / "b", preset="tiny-mel", max_steps=3, overrides=over, progress=False)
    resumed = train(None, tmp_path / "b", max_steps=7, resume=True, progress=False)  # the run's own config
    a = load_model(tmp_path / "a" / "checkpoints" / "step_00000007" / "model").state_dict()
    b = load_model(tmp_path / "b" / "checkpoints" / "step_00000007" / "model").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    val_a = {r["step"]: r["loss"] for r in rows(tmp_path / "a", "val")}
    val_b = {r["step"]: r["loss"] for r in rows(tmp_path / "b", "val")}
    assert list(val_a) == ["0", "6", "7"] and all(val_b[k] == v for k, v in val_a.items())
    assert load_model(straight).extra["ema"] and resumed.name == "best"
    # the normalisation statistics of the training split travel with the model
    model = load_model(straight)
    motions = [np.load(p)["exp"][:, 0] for p in sorted((toy_corpus / "train").glob("*.npz"))]
    assert model.motion_mean[0].item() == pytest.approx(np.concatenate(motions).mean(), rel=1e-4)
    history = json.loads((tmp_path / "b" / "run.json").read_text())["history"]
    assert [h["event"] for h in history] == ["start", "resume"] and history[1]["from"] == "step_00000003"


def test_sigterm_stops_with_a_checkpoint(toy_corpus, tmp_path, fast):
    cfg = compose_train_config(preset="tiny-mel", max_steps=100000, overrides=fast + ["checkpoint_every=100000"])
    timer = threading.Timer(4.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        with pytest.raises(TrainingInterrupted, match=r"SIGTERM at step (\d+): checkpoint saved"):
            train(toy_corpus, tmp_path / "run", cfg, progress=False)
    finally:
        timer.cancel()
    (ckpt,) = (tmp_path / "run" / "checkpoints").iterdir()
    assert int(ckpt.name.split("_")[1]) >= 1


def test_kill_and_resume_a_real_process(toy_corpus, tmp_path):
    run = tmp_path / "run"
    cmd = [
        str(BIN / "dualtalk"),
        "train",
        "--data",
        str(toy_corpus),
        "--out",
        str(run),
        "--preset",
        "tiny-mel",
        "--max-steps",
        "400",
        "--no-progress",
        "data.window_frames=25",
        "data.batch_size=4",
        "data.num_workers=1",
        "checkpoint_every=3",
        "val_every=1000",
        "log_every=3",
        "tensorboard=false",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    ckpts = run / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        if ckpts.is_dir() and len([p for p in ckpts.iterdir() if p.name.startswith("step_")]) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(int(p.name[5:]) for p in ckpts.iterdir() if p.name.startswith("step_"))
    assert done and done[-1] < 400
    result = subprocess.run(
        [str(BIN / "dualtalk"), "train", "--resume", str(run), "--max-steps", str(done[-1] + 6), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resumed from {ckpts / f'step_{done[-1]:08d}'}" in result.stderr
    assert result.stdout.strip() == str(run / "best")
    final = sorted(p.name for p in ckpts.iterdir())
    assert final[-1] == f"step_{done[-1] + 6:08d}" and not [n for n in final if n.startswith(".")]
    steps = [int(r["step"]) for r in rows(run, "train")]
    assert steps == sorted(set(steps)) and steps[-1] == done[-1] + 6  # no duplicated rows after the resume


def test_feature_cache_is_used_and_invalidated(toy_corpus, tmp_path, fast):
    from dualtalk.model.dualtalk import DualTalk
    from dualtalk.train import resolve_model_config
    from dualtalk.train.cache import build_cache
    from dualtalk.train.data import index_split
    from dualtalk.train.engine import seed_everything

    cache = tmp_path / "cache"
    over = fast + [
        "model.audio_encoder.freeze=true",
        "data.feature_cache=true",
        f"data.cache_dir={cache}",
        "data.cache_chunk_seconds=2",
        "val_at_start=false",
    ]
    cfg = compose_train_config(preset="tiny", max_steps=2, overrides=over)
    train(toy_corpus, tmp_path / "r1", cfg, progress=False)
    keys = sorted(p.name for p in cache.iterdir())
    assert len(keys) == 2  # one per audio encoder
    files = sorted(cache.glob("*/train/*.npy"))
    assert len(files) == 2 * 3 * 2  # encoders x conversations x speakers
    feats = np.load(files[0])
    assert feats.dtype == np.float16 and feats.shape[1] == 32
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    index = index_split(toy_corpus, "train")[0]
    index.clips = index.clips[:1]  # enough to see what is (re-)encoded
    splits = {"train": index}

    def model_of(config):
        seed_everything(config.seed)  # the run's initial (frozen) encoder weights
        return DualTalk(resolve_model_config(config))

    build_cache(model_of(cfg), cache, splits, 2.0, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == keys  # same encoders: reused, nothing re-encoded
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    damaged = next(p for p in files if index.clips[0].name in p.name)
    shape = np.load(damaged).shape
    damaged.write_bytes(damaged.read_bytes()[:300])  # truncated since (a full disk, a copy cut short)
    build_cache(model_of(cfg), cache, splits, 2.0, progress=False)
    assert np.load(damaged).shape == shape  # computed again, not read as it is
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p != damaged)
    changed = compose_train_config(preset="tiny", overrides=over + ["model.audio_encoder.normalize_waveform=false"])
    build_cache(model_of(changed), cache, splits, 2.0, progress=False)
    assert len(list(cache.iterdir())) == 4  # encoder config changed: new keys, the old cache untouched
    build_cache(
        model_of(compose_train_config(preset="tiny", overrides=over + ["seed=1"])), cache, splits, 2.0, progress=False
    )
    assert len(list(cache.iterdir())) == 6  # other weights: new keys too
    # the saved model holds its real encoders (not the cache stand-ins) and runs on audio
    model = load_model(tmp_path / "r1" / "best")
    out = model(torch.zeros(1, 640 * 10), torch.zeros(1, 640 * 10), torch.zeros(1, 10, 56))
    assert out.shape == (1, 10, 56) and torch.isfinite(out).all()


def test_feature_cache_with_an_input_switched_off(toy_corpus, tmp_path, fast):
    """A speaker-only model caches (and reads) only its own encoder's features."""
    cache = tmp_path / "cache"
    over = fast + [
        "model.audio_encoder.freeze=true",
        "data.feature_cache=true",
        f"data.cache_dir={cache}",
        "model.use_partner_audio=false",
        "model.use_partner_motion=false",
    ]
    best = train(
        toy_corpus, tmp_path / "run", compose_train_config(preset="tiny", max_steps=2, overrides=over), progress=False
    )
    assert len(list(cache.iterdir())) == 1  # one encoder in use
    model = load_model(best)
    assert not model.config.use_partner_audio and not hasattr(model.joint_encoder, "audio_encoder2")


def test_feature_cache_needs_a_frozen_encoder():
    from dualtalk.errors import DualTalkError

    with pytest.raises(DualTalkError, match="freeze=true"):
        compose_train_config(preset="tiny", overrides=["data.feature_cache=true"])


def test_cli_errors(toy_corpus, tmp_path, capsys, fast):
    assert (
        main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"), "--preset", "tiny-mel"]) == 2
    )
    assert "data directory not found" in capsys.readouterr().err
    (tmp_path / "d" / "train").mkdir(parents=True)
    for f in (toy_corpus / "train").iterdir():
        (tmp_path / "d" / "train" / f.name).symlink_to(f)
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--preset", "tiny-mel"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "val split not found" in err and err.count("\n") == 1
    assert main(["train", "--data", str(toy_corpus), "--out", str(tmp_path / "r"), "data.bogus=1"]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert main(["train", "--data", str(toy_corpus), "--out", str(tmp_path / "r"), "model.feature_dim=7"]) == 2
    assert "feature_dim" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a training run directory" in capsys.readouterr().err
    # a finished run is not overwritten
    run = tmp_path / "ok"
    assert (
        main(
            [
                "train",
                "--data",
                str(toy_corpus),
                "--out",
                str(run),
                "--preset",
                "tiny-mel",
                "--max-steps",
                "1",
                "--no-progress",
                *fast,
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(run / "best")
    assert main(["train", "--data", str(toy_corpus), "--out", str(run), "--preset", "tiny-mel"]) == 2
    assert "already holds a training run" in capsys.readouterr().err


def test_a_run_without_checkpoint_starts_afresh(toy_corpus, tmp_path, fast):
    run = tmp_path / "run"
    with pytest.raises(DualTalkError):  # stops before the first checkpoint (bad data split after indexing)
        train(toy_corpus, run, preset="tiny-mel", max_steps=1, overrides=fast + ["data.val_split=nope"], progress=False)
    assert not run.exists()  # the run it created is removed
    run.mkdir()  # a run stopped before its first checkpoint another way (killed): its files are stale
    (run / "config.yaml").write_text("preset: tiny-mel\n")
    (run / "metrics.csv").write_text("stale\n")
    train(toy_corpus, run, preset="tiny-mel", max_steps=1, overrides=fast, progress=False)
    assert [r["step"] for r in rows(run, "val")] == ["0", "1"]


def test_output_gain_is_fitted_on_validation_and_selection_uses_it(toy_corpus, tmp_path, fast):
    """A model with an output gain: validation reports the loss after the best gains (never above the raw
    loss), best/ gets the gains fitted on the whole validation split, and the learning curve is drawn."""

    run = tmp_path / "run"
    cfg = compose_train_config(
        preset="tiny-mel",
        max_steps=6,
        overrides=fast
        + [
            "model.output_gain=true",
            "data.window_frames=50",
            "data.batch_size=4",
            "val_every=3",
            "optim.optimizer=adamw",
            "optim.weight_decay=0.01",
        ],
    )
    best = train(toy_corpus, run, cfg, progress=False)
    model = load_model(best)
    gain = model.output_gain.numpy().copy()
    assert gain.shape == (56,) and (gain >= 0).all() and (gain <= 1).all()
    np.testing.assert_allclose(gain, model.extra["output_gain"], atol=1e-4)
    assert (run / "learning_curves.png").stat().st_size > 1000
    # the calibrated validation loss of the kept model is what the gains give on the validation split
    from dualtalk.train.data import ConversationWindows, PlanBatchSampler, index_split, make_loader
    from dualtalk.train.engine import Dist, evaluate
    from dualtalk.train.loss import weights

    index, _ = index_split(toy_corpus, "val")
    loader = make_loader(ConversationWindows(index, 50), PlanBatchSampler(index.frames, 50, 4, shuffle=False), 0)
    w = weights(cfg.loss)
    ctx = Dist()
    with_gain = evaluate(model, loader, ctx, model.motion_std, w, None, False)  # gains applied by the model
    model.output_gain.fill_(1.0)
    raw = evaluate(model, loader, ctx, model.motion_std, w, None, False)
    calibrated = evaluate(model, loader, ctx, model.motion_std, w, None, False, (model.motion_mean, model.motion_std))
    assert calibrated["loss"] <= raw["loss"] + 1e-6
    assert with_gain["exp"] == pytest.approx(calibrated["exp"], rel=1e-3)
    np.testing.assert_allclose(calibrated["gain"], gain, atol=1e-4)


def test_output_gain_z_keeps_chance_alignment_at_the_mean():
    """The confidence-bound gain: a coefficient the prediction follows keeps nearly its least-squares gain;
    one whose prediction is independent of the truth goes to 0 (the least-squares gain is positive by chance
    about half the time, and adds its error on new data)."""
    from dualtalk.train.engine import fit_output_gain

    rng = np.random.default_rng(0)
    windows, frames, draws = 90, 100, 200
    ls_noise, z_noise, signal = [], [], []
    for _ in range(draws):
        y = torch.from_numpy(rng.standard_normal((windows, frames, 2)))
        p = torch.from_numpy(rng.standard_normal((windows, frames, 2)))
        p[..., 0] = y[..., 0] + p[..., 0]  # coefficient 0: prediction = truth + noise; 1: unrelated
        wpy = (p * y).sum(1)  # (windows, 2)
        moments = torch.stack(
            [wpy.sum(0), (p * p).sum((0, 1)), (y * y).sum((0, 1)), wpy.square().sum(0), torch.full((2,), windows)]
        )
        ls, z2 = fit_output_gain(moments, 0.0), fit_output_gain(moments, 2.0)
        ls_noise.append(float(ls[1]))
        z_noise.append(float(z2[1]))
        signal.append((float(ls[0]), float(z2[0])))
    assert np.mean(np.array(ls_noise) > 0) > 0.3  # chance alignment, fitted
    assert np.mean(np.array(z_noise) > 0) < 0.1  # at z = 2: nearly always the mean
    ls0, z0 = np.array(signal).T
    assert abs(ls0.mean() - 0.5) < 0.02 and (z0 > 0.8 * ls0).all()  # a real relation keeps its gain
    assert (z0 <= ls0).all()
    with pytest.raises(DualTalkError, match="output_gain_z must be >= 0.0, got -1"):
        compose_train_config(overrides=["output_gain_z=-1"])


def test_output_gain_shrink_lowers_new_data_error_where_alignment_is_weak():
    """The shrunk gain (the covariance less its own noise): where the prediction is unrelated to the truth its
    error on new data beside the mean's is a fraction of the least-squares gain's (the chance part of the
    fitted covariance no longer becomes error); a weak real relation (about 2 standard errors on this much
    data) keeps most of its improvement, a clear one all of it."""
    from dualtalk.train.engine import fit_output_gain

    rng = np.random.default_rng(2)
    windows, frames, draws = 60, 100, 300
    strength = torch.tensor([0.0, 0.03, 1.0], dtype=torch.float64)  # unrelated, weak, clear: p = a y + noise
    excess = {"ls": [], "shrink": []}  # new data: error after the gain minus the mean's, g² var(p) - 2 g cov
    for _ in range(draws):
        y = torch.from_numpy(rng.standard_normal((windows, frames, 3)))
        p = strength * y + torch.from_numpy(rng.standard_normal((windows, frames, 3)))
        wpy = (p * y).sum(1)  # (windows, 3)
        moments = torch.stack(
            [wpy.sum(0), (p * p).sum((0, 1)), (y * y).sum((0, 1)), wpy.square().sum(0), torch.full((3,), windows)]
        )
        for name, gain in (("ls", fit_output_gain(moments)), ("shrink", fit_output_gain(moments, shrink=True))):
            excess[name].append((gain.square() * (strength.square() + 1) - 2 * gain * strength).numpy())
        assert (fit_output_gain(moments, shrink=True) <= fit_output_gain(moments) + 1e-12).all()
    ls, shrunk = np.mean(excess["ls"], 0), np.mean(excess["shrink"], 0)  # (3,)
    assert shrunk[0] < 0.5 * ls[0]  # unrelated: much less error on new data
    assert ls[1] < 0 and shrunk[1] < 0.8 * ls[1]  # weak: most of the improvement kept (a little lost)
    assert shrunk[2] == pytest.approx(ls[2], rel=0.01)  # clear: the same gain, to 1 %


def test_output_group_gate_sends_unpredicted_groups_to_the_mean():
    """The one-standard-error gate over cross-fitted folds: a group whose predictions follow the truth, even
    weakly, beats the mean by more than one standard error; a group whose predictions are unrelated to it (a
    least-squares gain still fits their chance alignment on validation) nearly never does."""
    from dualtalk.train.engine import GATE_FOLDS, gate_output_groups

    rng = np.random.default_rng(1)
    groups = {"weak": slice(0, 3), "unrelated": slice(3, 6)}
    windows, frames, draws = 80, 100, 200
    kept_weak, kept_unrelated = [], []
    for _ in range(draws):
        y = torch.from_numpy(rng.standard_normal((windows, frames, 6)))
        p = torch.from_numpy(rng.standard_normal((windows, frames, 6)))
        p[..., :3] = 0.15 * y[..., :3] + p[..., :3]  # a weak real relation: 2 % of the variance explained
        wpy = (p * y).sum(1)  # (windows, 6)
        per_window = torch.stack(
            [wpy, (p * p).sum(1), (y * y).sum(1), wpy.square(), torch.ones(windows, 6, dtype=torch.float64)], 1
        )  # (windows, 5, 6)
        folds = torch.zeros(GATE_FOLDS, 5, 6, dtype=torch.float64).index_add_(
            0, torch.arange(windows) % GATE_FOLDS, per_window
        )
        margins = gate_output_groups(folds, torch.full((6,), 0.5), groups)
        kept_weak.append(margins["weak"] > 1.0)
        kept_unrelated.append(margins["unrelated"] > 1.0)
    assert np.mean(kept_weak) > 0.95
    assert np.mean(kept_unrelated) < 0.1
    one_fold = torch.zeros(GATE_FOLDS, 5, 6, dtype=torch.float64)
    one_fold[0] = 1.0
    assert gate_output_groups(one_fold, torch.ones(6), groups) == {"weak": np.inf, "unrelated": np.inf}
    with pytest.raises(DualTalkError, match="output_group_gate must be >= 0.0, got -1"):
        compose_train_config(overrides=["output_group_gate=-1"])


def test_gate_folds_by_conversation_keep_a_conversations_windows_together():
    """``evaluate(gate_folds="conversation")`` deals whole conversations into the gate's folds: windows of one
    conversation give one fold (nothing to judge by: every margin +inf), while the window folds split them."""
    from dualtalk.train.engine import Dist, evaluate
    from dualtalk.train.loss import weights

    rng = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):  # 4 batches of 3 windows of 20 frames, all of conversation 0
        target = torch.randn(3, 20, 56, generator=rng)
        batches.append(
            {
                "target": target,
                "partner_motion": target + torch.randn(3, 20, 56, generator=rng),  # the "prediction" below
                "self_audio": torch.zeros(3, 1),
                "partner_audio": torch.zeros(3, 1),
                "mask": torch.ones(3, 20, dtype=torch.bool),
                "clip": torch.zeros(3, dtype=torch.long),
            }
        )

    class Echo(torch.nn.Module):  # predicts the partner's motion it is given
        def forward(self, self_audio, partner_audio, partner_motion):
            return partner_motion

    stats = (torch.zeros(56), torch.ones(56))
    args = (Echo(), batches, Dist(), None, weights(compose_train_config().loss), None, False, stats)
    by_window = evaluate(*args, group_gate=1.0)
    by_conversation = evaluate(*args, group_gate=1.0, gate_folds="conversation")
    assert all(np.isfinite(v) and v > 1.0 for v in by_window["margins"].values())  # the relation is real
    assert by_conversation["margins"] == {g: np.inf for g in ("exp", "jaw", "pose")}  # one fold
    assert by_conversation["kept"] == by_window["kept"] == {"exp": True, "jaw": True, "pose": True}
    np.testing.assert_allclose(by_conversation["gain"], by_window["gain"])  # the folds decide only the gate


def test_output_group_gate_in_training_writes_the_mean_for_gated_groups(toy_corpus, tmp_path, fast):
    """A run with the gate: best/ records the groups sent to the mean, their gains are 0 and the model then
    outputs the stored mean there, exactly."""
    run = tmp_path / "run"
    cfg = compose_train_config(
        preset="tiny-mel",
        max_steps=2,
        overrides=fast
        + [
            "model.output_gain=true",
            "data.window_frames=50",
            "data.batch_size=4",
            "val_every=2",
            "output_group_gate=1000",
        ],  # fmt: skip
    )
    model = load_model(train(toy_corpus, run, cfg, progress=False))
    assert set(model.extra["output_groups_at_mean"]) == {"exp", "jaw", "pose"}  # nothing beats 1000 SE
    assert (model.output_gain == 0).all()
    from dualtalk.inference.pipeline import InferenceOptions, predict

    predict(model, toy_corpus / "val", tmp_path / "pred", options=InferenceOptions(progress=False))
    for f in sorted((tmp_path / "pred").glob("*.npy")):
        pred = np.load(f)
        np.testing.assert_array_equal(pred, np.broadcast_to(model.motion_mean.numpy(), pred.shape))


def test_damaged_or_foreign_checkpoints_are_one_error_line(toy_corpus, tmp_path, fast, capsys):
    """Resume reads a checkpoint another run (or a disk) may have spoiled: each file's problem is one error
    naming it; a missing random state or a max_steps already reached is said, not silent."""
    import shutil

    from dualtalk.errors import InputError

    train(toy_corpus, tmp_path / "run", preset="tiny-mel", max_steps=2, overrides=fast, progress=False)
    (ckpt,) = (tmp_path / "run" / "checkpoints").iterdir()

    def copy(name):
        shutil.copytree(tmp_path / "run", tmp_path / name)
        return tmp_path / name, tmp_path / name / "checkpoints" / ckpt.name

    run, c = copy("empty_state")
    (c / "state.pt").write_bytes(b"")
    with pytest.raises(InputError, match=r"state.pt: unreadable checkpoint file \(empty file\)"):
        train(None, run, max_steps=3, resume=True, progress=False)
    run, c = copy("garbage_rng")
    (c / "rng_rank0.pt").write_bytes(os.urandom(100))
    with pytest.raises(InputError, match=r"rng_rank0.pt: unreadable checkpoint file \(not what torch.save writes"):
        train(None, run, max_steps=3, resume=True, progress=False)
    run, c = copy("other_model")
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("preset: tiny-mel", "preset: tiny"))
    with pytest.raises(InputError, match=r"does not fit the model and optimiser of the run's config.yaml"):
        train(None, run, max_steps=3, resume=True, progress=False)
    run, c = copy("no_rng")
    (c / "rng_rank0.pt").unlink()
    capsys.readouterr()
    train(None, run, max_steps=3, resume=True, progress=False)
    assert "has no random state for rank 0" in capsys.readouterr().err
    run, c = copy("done")
    train(None, run, max_steps=1, resume=True, progress=False)
    assert "the run is at step 2, max_steps is 1: nothing to train" in capsys.readouterr().err


def test_out_is_a_new_or_run_directory_locked_while_training(toy_corpus, tmp_path, fast):
    """--out that holds other files (the data itself) is refused; a run being written by another training is
    refused; a run that fails while reading its data leaves no directory behind."""
    import shutil

    from dualtalk.errors import InputError
    from dualtalk.train import runs

    cfg = compose_train_config(preset="tiny-mel", max_steps=1, overrides=fast)
    with pytest.raises(InputError, match="is not a training run directory"):
        train(toy_corpus, toy_corpus / "train", cfg, progress=False)
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(  # another process training into it (holds its lock)
        [
            sys.executable,
            "-c",
            f"from dualtalk.train import runs; h = runs.lock_run({str(run)!r}); print(1, flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "1"
        with pytest.raises(InputError, match="another training is writing to this run directory now"):
            train(toy_corpus, run, cfg, progress=False)
    finally:
        holder.communicate("\n")
    assert runs.lock_run(run) is not None  # free again once that process ended
    bad = tmp_path / "bad"
    shutil.copytree(toy_corpus, bad)
    next((bad / "val").glob("*.wav")).write_bytes(b"not audio")
    with pytest.raises(InputError):
        train(bad, tmp_path / "new", cfg, progress=False)
    assert not (tmp_path / "new").exists()


def test_a_diverged_run_stops_with_an_error(toy_corpus, tmp_path, fast, monkeypatch):
    """NaN validation loss (a learning rate far too high) ends the run with an error, not a success whose
    best/ is the untrained model; an infinite learning rate is refused with the config."""
    from dualtalk.errors import DualTalkError
    from dualtalk.train import engine

    with pytest.raises(DualTalkError, match="optim.lr must be finite, got inf"):
        compose_train_config(preset="tiny-mel", overrides=["optim.lr=.inf"])
    real = engine.evaluate

    def diverging(*args, **kwargs):
        val = real(*args, **kwargs)
        return {**val, "loss": float("nan")} if args[9] > 0 else val  # steps after 0 (`step`, the 10th argument)

    monkeypatch.setattr(engine, "evaluate", diverging)
    cfg = compose_train_config(preset="tiny-mel", max_steps=4, overrides=fast + ["val_every=2"])
    with pytest.raises(engine.TrainingDiverged, match=r"step 2: the validation loss is nan: training diverged"):
        train(toy_corpus, tmp_path / "run", cfg, progress=False)
    assert (tmp_path / "run" / "best").is_dir()  # step 0's model is kept


def test_only_the_newest_checkpoints_are_kept(toy_corpus, tmp_path, fast):
    cfg = compose_train_config(
        preset="tiny-mel", max_steps=6, overrides=fast + ["checkpoint_every=2", "keep_checkpoints=1", "val_every=100"]
    )
    train(toy_corpus, tmp_path / "run", cfg, progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_00000006"]


def test_a_failed_resume_changes_nothing_of_the_run(toy_corpus, tmp_path, fast):
    """A resume that fails (a data directory without the training split, a damaged checkpoint) leaves the run's
    config.yaml and run.json as they were, so the next plain --resume still works."""
    run = tmp_path / "run"
    train(toy_corpus, run, preset="tiny-mel", max_steps=2, overrides=fast + ["checkpoint_every=2"], progress=False)
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "run.json")}
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    with pytest.raises(DualTalkError, match="train split not found"):
        train(empty, run, max_steps=4, resume=True, progress=False)
    (run / "checkpoints" / "step_00000002" / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DualTalkError, match="state.pt"):
        train(None, run, max_steps=4, resume=True, progress=False)
    assert {name: (run / name).read_bytes() for name in before} == before
