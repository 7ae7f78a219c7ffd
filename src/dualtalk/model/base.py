"""What the offline and the causal model share: motion units (normalisation statistics and the output gain
stored with the weights) and small helpers. Both models subclass :class:`MotionModel`."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..config import DualTalkConfig
from ..errors import DualTalkError
from ..layout import get_layout


class MotionModel(nn.Module):
    """A model whose output is (B, T, 56) motion; with ``normalize_motion`` it works in units of the training
    set's statistics (buffers ``motion_mean``, ``motion_std``), with ``output_gain`` it shrinks each output
    coefficient toward the mean by a gain fitted on validation (buffer ``output_gain``)."""

    config: DualTalkConfig
    motion_mean: torch.Tensor  # (56,) training-set mean (normalize_motion)
    motion_std: torch.Tensor  # (56,) training-set std (normalize_motion)
    output_gain: torch.Tensor  # (56,) (output_gain)
    #: what a model directory carries beside the weights (training step, validation loss, ...), when loaded
    extra: dict

    def register_motion_buffers(self, cfg: DualTalkConfig) -> None:
        if cfg.normalize_motion:
            self.register_buffer("motion_mean", torch.zeros(cfg.motion_dim))
            self.register_buffer("motion_std", torch.ones(cfg.motion_dim))
        if cfg.output_gain:
            self.register_buffer("output_gain", torch.ones(cfg.motion_dim))

    def set_motion_statistics(self, mean, std) -> None:
        if not self.config.normalize_motion:
            raise DualTalkError("this model was built with normalize_motion=False")
        self.motion_mean.copy_(torch.as_tensor(mean, dtype=self.motion_mean.dtype))
        self.motion_std.copy_(torch.as_tensor(std, dtype=self.motion_std.dtype).clamp_min(1e-4))

    def normalize_motion(self, motion: torch.Tensor) -> torch.Tensor:
        """(..., 56) in the data's units -> the model's (identity without ``normalize_motion``)."""
        return (motion - self.motion_mean) / self.motion_std if self.config.normalize_motion else motion

    def output_motion(self, out: torch.Tensor) -> torch.Tensor:
        """(..., 56) the model's output -> the data's units: the output gain, then de-normalisation; in eval
        mode, a layout's weights (ARKit's 52 blendshapes) clipped to [0, 1] (training sees the raw output)."""
        if self.config.output_gain:  # normalised units: the mean is 0
            out = out * self.output_gain
        if self.config.normalize_motion:
            out = out * self.motion_std + self.motion_mean
        bounded = get_layout(self.config.motion_layout).bounded
        if bounded is not None and not self.training:
            a, b = bounded.start, bounded.stop
            out = torch.cat([out[..., :a], out[..., a:b].clamp(0.0, 1.0), out[..., b:]], dim=-1)
        return out

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
