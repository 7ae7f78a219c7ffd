"""Building a :class:`~dualtalk.config.TrainConfig`: defaults < YAML file < --preset/--max-steps < key=value.

``model.*`` overrides go into the run's partial model config (a nested mapping applied to the preset),
so ``model.audio_encoder.freeze=true`` and ``model.feature_dim=128`` combine instead of replacing each other.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

from ..config import (DualTalkConfig, TrainConfig, apply_overrides, from_dict, load_yaml, load_yaml_overrides,
                      merge_dict, parse_override, to_dict)
from ..errors import DualTalkError, InputError
from ..io.files import atomic_write_text


def resolve_model_config(cfg: TrainConfig) -> DualTalkConfig:
    """The preset with the run's ``model`` mapping applied (unknown keys are errors)."""
    from ..model.presets import get_preset

    base = get_preset(cfg.preset)
    if not cfg.model:
        return base
    return merge_dict(base, cfg.model, where="model").validate()


def apply_train_overrides(cfg: TrainConfig, items) -> TrainConfig:
    for item in items:
        path, value = parse_override(item)
        if path[0] == "model" and len(path) > 1:
            cfg = copy.deepcopy(cfg)
            node = cfg.model
            for part in path[1:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[path[-1]] = value
        else:
            cfg = apply_overrides(cfg, [item])
    return cfg


def make_train_config(preset: str | None = None, config_file: str | os.PathLike | None = None,
                      overrides=(), max_steps: int | None = None, base: TrainConfig | None = None) -> TrainConfig:
    cfg = base if base is not None else TrainConfig()
    if config_file is not None:
        cfg = load_yaml_overrides(cfg, config_file)
    if preset is not None:
        cfg = apply_overrides(cfg, [f"preset={preset}"])
    if max_steps is not None:
        cfg = apply_overrides(cfg, [f"max_steps={int(max_steps)}"])
    cfg = apply_train_overrides(cfg, list(overrides))
    check_train_config(cfg)
    return cfg


def coerce_numbers(cfg, prefix: str = ""):
    """YAML reads ``1e-4`` (no dot) as a string: turn such values of float/int fields into numbers."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, tp = getattr(cfg, f.name), hints[f.name]
        if dataclasses.is_dataclass(value):
            coerce_numbers(value, f"{prefix}{f.name}.")
        elif tp is float and isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                setattr(cfg, f.name, float(value))
            except ValueError:
                raise DualTalkError(f"training config: {prefix}{f.name} must be a number, not {value!r}") from None
        elif tp is int and isinstance(value, str):
            try:
                setattr(cfg, f.name, int(value))
            except ValueError:
                raise DualTalkError(f"training config: {prefix}{f.name} must be an integer, not {value!r}") from None
        elif tp is int and isinstance(value, float) and value.is_integer():
            setattr(cfg, f.name, int(value))
    return cfg


def check_train_config(cfg: TrainConfig) -> DualTalkConfig:
    """Every setting in range (one clear error otherwise); -> the resolved model config."""
    def need(ok: bool, what: str):
        if not ok:
            raise DualTalkError(f"training config: {what}")

    coerce_numbers(cfg)
    d, o = cfg.data, cfg.optim
    need(isinstance(o.betas, list) and len(o.betas) == 2, "optim.betas must be a list of two numbers")
    o.betas = [float(b) for b in o.betas]
    need(cfg.max_steps >= 1, f"max_steps must be >= 1, not {cfg.max_steps}")
    need(d.window_frames >= 2, f"data.window_frames must be >= 2, not {d.window_frames}")
    need(d.val_window_frames >= 0, "data.val_window_frames must be >= 0")
    need(d.batch_size >= 1, f"data.batch_size must be >= 1, not {d.batch_size}")
    need(d.num_workers >= 0, "data.num_workers must be >= 0")
    need(d.cache_chunk_seconds > 0, "data.cache_chunk_seconds must be > 0")
    need(d.val_split != d.train_split, f"the validation split must differ from the training split ({d.val_split!r})")
    need(d.val_split != d.test_split, f"the validation split must not be the test split ({d.test_split!r}): "
                                      "set data.val_split to a held-out split of its own")
    need(o.optimizer in ("adam", "adamw"), f"optim.optimizer must be 'adam' or 'adamw', not {o.optimizer!r}")
    need(o.lr > 0, f"optim.lr must be > 0, not {o.lr}")
    need(o.scheduler in ("step", "constant"), f"optim.scheduler must be 'step' or 'constant', not {o.scheduler!r}")
    need(o.step_unit in ("epoch", "step"), f"optim.step_unit must be 'epoch' or 'step', not {o.step_unit!r}")
    need(o.step_size >= 1, "optim.step_size must be >= 1")
    need(o.grad_accum_steps >= 1, "optim.grad_accum_steps must be >= 1")
    need(o.grad_clip >= 0, "optim.grad_clip must be >= 0 (0 = off)")
    need(cfg.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, not {cfg.precision!r}")
    need(0.0 <= cfg.ema_decay < 1.0, f"ema_decay must be in [0, 1), not {cfg.ema_decay}")
    for key in ("log_every", "val_every", "checkpoint_every"):
        need(getattr(cfg, key) >= 1, f"{key} must be >= 1")
    model_cfg = resolve_model_config(cfg)
    if d.feature_cache:
        need(model_cfg.audio_encoder.freeze, "data.feature_cache needs frozen audio encoders "
                                             "(model.audio_encoder.freeze=true)")
    return model_cfg


def save_train_config(cfg: TrainConfig, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_train_config(path: Path) -> TrainConfig:
    if not Path(path).exists():
        raise InputError(Path(path).parent, "not a training run directory (config.yaml missing)")
    return from_dict(TrainConfig, load_yaml(path), where=str(path))
