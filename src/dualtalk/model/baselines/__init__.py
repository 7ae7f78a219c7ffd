"""The paper's comparison baselines as their own architectures, trained by our engine on our data.

    faceformer       FaceFormer (CVPR 2022): wav2vec2/mel audio -> autoregressive transformer decoder with
                     biased causal attention and alignment cross-attention; KV-cached inference
    codetalker       CodeTalker (CVPR 2023): stage 1 a VQ-VAE codebook of motion, stage 2 FaceFormer's decoder
                     predicting codebook features from audio
    selftalk         SelfTalk (ACM MM 2023): audio -> motion transformer, with a lip reader trained to agree
                     with a frozen speech recognizer (text consistency)
    learning2listen  Learning2Listen (CVPR 2022): stage 1 a VQ-VAE of listener motion windows, stage 2 an
                     autoregressive predictor over codes conditioned on the partner's audio and motion

Each is a :class:`~dualtalk.model.base.MotionModel` with DualTalk's calling convention
(``model(self_audio, partner_audio, partner_motion) -> (B, T, D)``), built by
:func:`dualtalk.model.dualtalk.build_model` from ``variant``; settings in ``DualTalkConfig.baseline``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch.nn as nn

from ...config import BASELINE_VARIANTS, DualTalkConfig
from ...errors import InputError
from .common import BaselineModel


def build_baseline(cfg: DualTalkConfig) -> BaselineModel:
    """The baseline of ``cfg.variant``."""
    if cfg.variant == "faceformer":
        from .faceformer import FaceFormer

        return FaceFormer(cfg)
    if cfg.variant == "codetalker":
        from .codetalker import CodeTalker

        return CodeTalker(cfg)
    if cfg.variant == "learning2listen":
        from .learning2listen import Learning2Listen

        return Learning2Listen(cfg)
    if cfg.variant == "selftalk":
        from .selftalk import SelfTalk

        return SelfTalk(cfg)
    raise ValueError(f"not a baseline variant: {cfg.variant!r} (baselines: {', '.join(BASELINE_VARIANTS)})")


def check_stage1_source(cfg: DualTalkConfig) -> None:
    """``baseline.stage1_from`` names a model directory of the same method (one error line if not)."""
    source = cfg.baseline.stage1_from
    if not source or cfg.variant not in ("codetalker", "learning2listen"):
        return
    from ..checkpoint import CONFIG_NAME, WEIGHTS_NAME, read_model_config

    path = Path(os.path.expanduser(source))
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        raise InputError(
            path,
            f"stage-1 checkpoint not found (baseline.stage1_from must be a {cfg.variant} model directory with "
            f"{CONFIG_NAME} + {WEIGHTS_NAME}, e.g. RUN/best of an earlier run)",
        )
    other, _ = read_model_config(path)
    if other.variant != cfg.variant:
        raise InputError(path, f"stage-1 checkpoint is a {other.variant} model, not {cfg.variant}")


def prepare_training(model: nn.Module, say: Callable[[str], None] = print) -> None:
    """Before training a baseline: load a trained stage 1 (``baseline.stage1_from``) and the model's
    training-only parts (SelfTalk's recognizer); every problem is one error line."""
    assert isinstance(model, BaselineModel)
    cfg = model.config
    check_stage1_source(cfg)
    if cfg.baseline.stage1_from and model.stages > 1:
        from safetensors.torch import load_file

        path = Path(os.path.expanduser(cfg.baseline.stage1_from))
        state = load_file(str(path / "model.safetensors"))
        own = model.stage1_state()
        missing = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
        if missing:
            raise InputError(path, f"stage-1 checkpoint does not fit this model's codebook stage (e.g. {missing[0]})")
        model.load_state_dict({k: state[k] for k in own}, strict=False)
        say(f"stage 1 (codebook) loaded from {path}: training the predictor only")
    model.prepare_training()


__all__ = ["BASELINE_VARIANTS", "BaselineModel", "build_baseline", "check_stage1_source", "prepare_training"]
