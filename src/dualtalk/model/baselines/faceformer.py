"""FaceFormer (Fan et al., CVPR 2022): speech-driven 3D facial animation with an autoregressive transformer.

After the paper and its public code (github EvelynFan/FaceFormer), written for our motion (56-d [exp 50,
jaw 3, global 3], in the training set's units with ``normalize_motion``) instead of mesh vertices:

- audio encoder: wav2vec2 (``audio_encoder.type: wav2vec2``; the CPU presets use the log-mel encoder) at the
  motion frame rate, then a linear map to ``feature_dim`` (``audio_feature_map``);
- a learned style vector (FaceFormer's one-hot speaker embedding with a single speaker: our data have no
  speaker identities) is the start token and is added to every motion input;
- motion inputs: the previous frame through a linear map (``motion_map``), plus the style, plus the periodic
  positional encoding (period ``bias_period``);
- decoder (``decoder_layers``, ``num_heads``, ``ffn_dim``): biased causal self-attention (periodic ALiBi) and
  cross-attention to the audio with the alignment mask (frame i sees audio frame i; ``alignment_window``
  widens it), :class:`~dualtalk.model.baselines.common.ARDecoder`;
- output map to motion, initialised at zero (``motion_map_r``).

Training (``baseline.teacher_forcing``): teacher-forced by default (the ground truth shifted by one frame,
one parallel pass; what the issue asked for), or autoregressive (``false``), as FaceFormer's public training
loop (``teacher_forcing=False``): each frame's own output is fed back through the key/value-cached loop and
the loss's gradient flows through it. On motion with idle noise, teacher forcing learns to continue the true
previous frame, which inference does not have (``benchmarks/teacher_forcing.py``).
Inference is autoregressive, each frame fed back through ``motion_map``, with a key/value cache: equal to
the teacher-forced pass on the same frames (``tests/model/test_baselines.py``). FaceFormer starts decoding
from the style token alone; teacher forcing here does the same (so both agree at the first frame).

It sees the person's own audio only (``use_partner_audio``/``use_partner_motion`` off in its presets).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...config import DualTalkConfig
from ...features.audio_encoder import build_audio_encoder
from .common import BaselineModel, Cache, faceformer_decoder, init_zero


class FaceFormer(BaselineModel):
    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.config = cfg.check()
        d = cfg.feature_dim
        self.audio_encoder = build_audio_encoder(cfg.audio_encoder, cfg.sample_rate)
        self.audio_feature_map = nn.Linear(cfg.audio_encoder.output_dim, d)
        self.style = nn.Parameter(torch.randn(1, 1, d) * 0.02)  # (1, 1, d)
        self.motion_map = nn.Linear(cfg.motion_dim, d)
        self.decoder = faceformer_decoder(cfg)
        self.motion_map_r = init_zero(nn.Linear(d, cfg.motion_dim))
        self.register_motion_buffers(cfg)

    def encode_audio(self, self_audio: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, S) -> (B, T, d)"""
        return self.audio_feature_map(self.audio_encoder(self_audio, frames))

    def teacher_forced(self, memory: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """memory (B, T, d), y (B, T, D) ground truth in the model's units -> (B, T, D) in the model's units"""
        b = y.shape[0]
        inputs = torch.cat([self.style.expand(b, 1, -1), self.motion_map(y[:, :-1]) + self.style], dim=1)  # (B, T, d)
        return self.motion_map_r(self.decoder(inputs, memory))

    def generate(self, memory: torch.Tensor, frames: int, cache: bool = True) -> torch.Tensor:
        """Autoregressive: memory (B, T, d) -> (B, T, D) in the model's units. ``cache=False`` recomputes the
        decoder over the whole prefix at every frame (FaceFormer's own loop; for tests)."""
        b = memory.shape[0]
        x = self.style.expand(b, 1, -1)  # (B, 1, d) the input of the current frame
        outputs = []
        kv: Cache = {}
        inputs = [x]
        for t in range(frames):
            if cache:
                h = self.decoder.step(x, memory, t, kv)  # (B, 1, d)
            else:
                h = self.decoder(torch.cat(inputs, dim=1), memory)[:, -1:]
            y = self.motion_map_r(h)  # (B, 1, D)
            outputs.append(y)
            x = self.motion_map(y) + self.style
            inputs.append(x)
        return torch.cat(outputs, dim=1)

    def forward(
        self,
        self_audio: torch.Tensor | None,
        partner_audio: torch.Tensor | None,
        partner_motion: torch.Tensor | None,
        *,
        target: torch.Tensor | None = None,
        step: int | None = None,
        audio_features=None,
    ):
        """self_audio (B, S) -> (B, T, D); with ``target`` (B, T, D): (the training prediction, None): teacher-forced
        or, with ``baseline.teacher_forcing`` false, autoregressive with gradients."""
        self_audio, frames = self.speaker_frames(self_audio, partner_audio, partner_motion, audio_features)
        memory = self.encode_audio(self_audio, frames)  # (B, T, d)
        if target is not None and self.config.baseline.teacher_forcing:
            return self.output_motion(self.teacher_forced(memory, self.normalize_motion(target))), None
        if target is not None:
            return self.output_motion(self.generate(memory, frames)), None
        return self.output_motion(self.generate(memory, frames))
