"""The shipped training configs and the config layering (defaults < YAML < flags < key=value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualtalk.errors import DualTalkError
from dualtalk.train import compose_train_config, resolve_model_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("train_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_are_valid(path):
    cfg = compose_train_config(config_file=path)
    model = resolve_model_config(cfg)
    assert model.check() is model


def test_layering_and_model_overrides(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("preset: tiny\nmodel: {audio_encoder: {freeze: true}}\ndata: {batch_size: 3}\noptim: {lr: 1e-3}\n")
    cfg = compose_train_config(
        preset="small",
        config_file=yaml,
        max_steps=7,
        overrides=[
            "model.feature_dim=32",
            "model.audio_encoder.freeze_feature_extractor=false",
            "data.window_frames=40",
        ],
    )
    assert (cfg.preset, cfg.max_steps, cfg.data.batch_size, cfg.data.window_frames) == ("small", 7, 3, 40)
    assert cfg.optim.lr == pytest.approx(1e-3)  # "1e-3" is a string to YAML 1.1; the float field parses it
    model = resolve_model_config(cfg)
    assert model.feature_dim == 32 and model.audio_encoder.freeze and not model.audio_encoder.freeze_feature_extractor
    assert model.audio_encoder.type == "mel"  # from the preset
    with pytest.raises(DualTalkError, match="unknown key"):
        resolve_model_config(compose_train_config(overrides=["model.no_such_thing=1"]))
    with pytest.raises(DualTalkError, match="precision"):
        compose_train_config(overrides=["precision=fp8"])
    with pytest.raises(DualTalkError, match="optim.lr must be a number"):
        compose_train_config(overrides=["optim.lr=fast"])
