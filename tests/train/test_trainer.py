"""The Trainer's stages, each called on its own (no loop), and the one config composer."""

from __future__ import annotations

import pytest
import torch

from dualtalk.train import Trainer, compose_train_config
from dualtalk.train.configure import load_train_config


def trainer(corpus, run, fast, **kw) -> Trainer:
    cfg = compose_train_config(preset="tiny-mel", max_steps=3, overrides=fast + ["val_at_start=false"])
    return Trainer(corpus, run, cfg, progress=False, **kw)


def test_stages_one_by_one(toy_corpus, tmp_path, fast):
    t = trainer(toy_corpus, tmp_path / "run", fast)
    assert t.prepare_run() is None  # a new run: nothing to restore
    assert (tmp_path / "run" / "config.yaml").exists() and (tmp_path / "run" / "run.json").exists()
    assert load_train_config(tmp_path / "run" / "config.yaml") == t.cfg

    t.build_data()
    assert len(t.train_index.clips) == 3 and len(t.val_index.clips) == 2 and t.stats.std.shape == (56,)
    model = t.build_model()
    assert t.module is model and t.std is not None  # tiny-mel normalises motion
    t.build_loaders()
    assert t.steps_per_epoch >= 1
    t.build_optimizer()
    t.wrap()

    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = next(iter(t.train_loader))
    loss, sums, counts = t.train_step(batch)
    assert loss.ndim == 0 and sums.shape == counts.shape == (4,)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.params)
    t.optimizer_step()
    assert t.state.step == 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_checkpoint_and_restore_round_trip(toy_corpus, tmp_path, fast):
    a = trainer(toy_corpus, tmp_path / "run", fast)
    a.setup()
    a.train_step(next(iter(a.train_loader)))
    a.optimizer_step()
    a.state.batch_in_epoch = 1
    a.save_checkpoint(1)
    a.save_checkpoint(1)  # once per step
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step_00000001"]

    b = trainer(toy_corpus, tmp_path / "run", fast, resume=True)
    b.prepare_run()
    assert b.latest is not None and b.latest.name == "step_00000001"
    b.build_data()
    b.build_model()
    b.build_loaders()
    b.build_optimizer()
    b.restore(b.latest)
    assert b.state == a.state and b.last_saved == 1
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert b.optimizer.state_dict()["state"].keys() == a.optimizer.state_dict()["state"].keys()


def test_validate_saves_best(toy_corpus, tmp_path, fast):
    t = trainer(toy_corpus, tmp_path / "run", fast)
    t.setup()
    val = t.validate(0)
    assert set(val) >= {"loss", "exp", "jaw", "pose", "velocity"}
    assert (tmp_path / "run" / "best" / "config.json").exists()
    assert t.state.best_step == 0 and t.state.best_val == pytest.approx(val["loss"])
    t.metrics.close()


def test_a_bad_setting_fails_before_anything_is_written(toy_corpus, tmp_path, fast):
    from dualtalk.errors import DualTalkError

    with pytest.raises(DualTalkError, match=r"override 'data.batch_size=0': data.batch_size must be >= 1, got 0"):
        compose_train_config(preset="tiny-mel", overrides=fast + ["data.batch_size=0"])
    with pytest.raises(DualTalkError, match="model config: output_gain needs normalize_motion"):
        compose_train_config(
            preset="tiny-mel", overrides=fast + ["model.output_gain=true", "model.normalize_motion=false"]
        )
    cfg = compose_train_config(preset="tiny-mel", overrides=fast)
    cfg.data.val_split = "train"  # checked on assignment (type), and by the Trainer (rules) before it writes
    with pytest.raises(DualTalkError, match="the validation split must differ"):
        Trainer(toy_corpus, tmp_path / "run", cfg)
    with pytest.raises(ValueError, match="greater than or equal to 1"):  # pydantic checks assignments
        cfg.data.batch_size = 0
    assert not (tmp_path / "run").exists()


def test_sources_are_named_and_values_stored_checked(tmp_path):
    from dualtalk.errors import DualTalkError

    f = tmp_path / "c.yaml"
    f.write_text("model: {modulation_alpha: 1e-1}\noptim: {lr: 1e-3}\n")
    cfg = compose_train_config(config_file=f)
    assert cfg.model == {"modulation_alpha": 0.1} and cfg.optim.lr == 0.001  # numbers, not strings
    f.write_text("data: {window_frames: -5}\n")
    with pytest.raises(DualTalkError, match=rf"^{f}: data.window_frames must be >= 2, got -5$"):
        compose_train_config(config_file=f)
    with pytest.raises(DualTalkError, match=r"^--preset: unknown model preset 'nope'"):
        compose_train_config(preset="nope")
    j = tmp_path / "c.json"
    j.write_text('{"model": {"feature_dim": 32}, "data": {"batch_size": 2}}')
    cfg = compose_train_config(config_file=j, overrides=["model.feature_dim=48"])
    assert cfg.model == {"feature_dim": 48} and cfg.data.batch_size == 2
