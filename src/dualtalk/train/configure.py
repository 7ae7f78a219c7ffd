"""Composing a :class:`~dualtalk.config.TrainConfig`: defaults < file < --preset/--max-steps < key=value.

:func:`compose_train_config` is the one function that builds a training configuration; the ``train``
command, :func:`dualtalk.train.train` and ``dualtalk benchmark`` all call it.

    cfg = compose_train_config(config_file="recipe-cpu", preset="small", overrides=["optim.lr=3e-4"])

Every source is checked when it is applied, so an error names it: ``configs/x.yaml: data.batch_size must
be >= 1, got 0``, ``override 'model.feature_dim=1.28e2': model.feature_dim must be an integer, got
1.28e2``. ``model.*`` settings form the run's partial model config (a nested mapping applied to the
preset), so ``model.audio_encoder.freeze=true`` and ``model.feature_dim=128`` combine instead of replacing
each other; they are checked against the preset with each source too, and stored with checked values.
Rules between fields (validation split, feature cache, the model's own) are checked once at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..config import (
    DualTalkConfig,
    TrainConfig,
    deep_merge,
    find_config_file,
    from_dict,
    load_mapping,
    merge_dict,
    override_mapping,
    to_dict,
)
from ..errors import DualTalkError, InputError
from ..io.files import atomic_write_text


def _preset(cfg: TrainConfig, where: str) -> DualTalkConfig:
    from ..model.presets import get_preset

    try:
        return get_preset(cfg.preset)
    except DualTalkError as exc:
        raise DualTalkError(f"{where}: {exc}") from None


def _checked_model_part(cfg: TrainConfig, where: str) -> TrainConfig:
    """Check the partial model config against the preset; store its values as checked (``1e-1`` -> 0.1)."""
    if not cfg.model:
        _preset(cfg, where)
        return cfg
    full = to_dict(
        from_dict(DualTalkConfig, deep_merge(to_dict(_preset(cfg, where)), cfg.model), where, prefix="model.")
    )

    def pick(given: dict, checked: dict) -> dict:
        return {
            k: pick(v, checked[k]) if isinstance(v, dict) and isinstance(checked.get(k), dict) else checked[k]
            for k, v in given.items()
        }

    cfg.model = pick(cfg.model, full)
    return cfg


def _apply(cfg: TrainConfig, data: dict, where: str) -> TrainConfig:
    return _checked_model_part(merge_dict(cfg, data, where), where)


def compose_train_config(
    config_file: str | os.PathLike | None = None,
    preset: str | None = None,
    max_steps: int | None = None,
    overrides: Iterable[str] = (),
    base: TrainConfig | None = None,
) -> TrainConfig:
    """``base`` (default: the defaults) < ``config_file`` (YAML/JSON path or packaged name) < ``preset`` <
    ``max_steps`` < ``overrides`` (``key=value``); every source checked as it is applied, then the rules
    between fields (:func:`check_train_config`)."""
    cfg = base.model_copy(deep=True) if base is not None else TrainConfig()
    if config_file is not None:
        path = find_config_file(config_file)
        cfg = _apply(cfg, load_mapping(path), os.fspath(path))
    if preset is not None:
        cfg = _apply(cfg, {"preset": preset}, "--preset")
    if max_steps is not None:
        cfg = _apply(cfg, {"max_steps": max_steps}, "--max-steps")
    for item in [overrides] if isinstance(overrides, str) else overrides:  # a single string: one override
        cfg = _apply(cfg, override_mapping(item), f"override {item!r}")
    check_train_config(cfg)
    return cfg


def resolve_model_config(cfg: TrainConfig) -> DualTalkConfig:
    """The preset with the run's ``model`` mapping applied, every rule checked."""
    base = _preset(cfg, "preset")
    model = merge_dict(base, cfg.model, where="model") if cfg.model else base
    try:
        return model.check()
    except DualTalkError as exc:
        raise DualTalkError(f"model config: {exc}") from None


def check_train_config(cfg: TrainConfig) -> DualTalkConfig:
    """The rules between fields (each value is checked on its own already); -> the resolved model config."""
    d = cfg.data

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise DualTalkError(f"training config: {what}")

    need(d.val_split != d.train_split, f"the validation split must differ from the training split ({d.val_split!r})")
    need(
        d.val_split != d.test_split,
        f"the validation split must not be the test split ({d.test_split!r}): "
        "set data.val_split to a held-out split of its own",
    )
    model_cfg = resolve_model_config(cfg)
    from ..config import BASELINE_VARIANTS

    if model_cfg.variant in BASELINE_VARIANTS:
        from ..model.baselines import check_stage1_source

        need(not d.feature_cache, f"data.feature_cache is not available for the {model_cfg.variant} baseline")
        check_stage1_source(model_cfg)
    if d.feature_cache:
        need(
            model_cfg.audio_encoder.freeze,
            "data.feature_cache needs frozen audio encoders (model.audio_encoder.freeze=true)",
        )
    return model_cfg


def save_train_config(cfg: TrainConfig, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_train_config(path: Path) -> TrainConfig:
    """A run's saved ``config.yaml`` (checked like any other source)."""
    if not Path(path).exists():
        raise InputError(Path(path).parent, "not a training run directory (config.yaml missing)")
    data: Any = load_mapping(path)
    return _checked_model_part(from_dict(TrainConfig, data, where=str(path)), str(path))
