"""CodeTalker (Xing et al., CVPR 2023): speech-driven 3D facial animation as code query in a learned codebook.

After the paper and its public code (github Doubiiu/CodeTalker), for our motion instead of mesh vertices:

- stage 1, a VQ-VAE of motion (:class:`~dualtalk.model.baselines.common.MotionVQVAE`, the one Learning2Listen
  uses too): no temporal downsampling (``quant_factor`` 0), ``codes_per_frame`` codes of ``code_dim`` per
  frame (CodeTalker's ``face_quan_num``), ``codebook_size`` codes (256); reconstruction + codebook +
  0.25 x commitment loss;
- stage 2, with the VQ-VAE frozen: FaceFormer's autoregressive decoder (the same module as our FaceFormer:
  audio encoder, style start token, biased causal self-attention, aligned cross-attention), whose output is
  mapped (``feat_map``, no bias, zero at first) to the codebook's feature space, quantized (nearest code,
  straight-through) and decoded by the frozen decoder. Loss: the engine's motion loss on the decoded motion
  + ``reg_weight`` x MSE(predicted features, the ground truth's quantized features), teacher-forced;
- inference is autoregressive, as CodeTalker's ``predict``: at each frame the features so far are quantized
  and decoded, and the decoded last frame is fed back through ``motion_map``; the decoder's keys and values
  are cached, the VQ decoder runs over the whole prefix each frame (it is not causal).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...config import DualTalkConfig
from ...errors import DualTalkError
from ...features.audio_encoder import build_audio_encoder
from .common import BaselineModel, Cache, faceformer_decoder, frozen, init_zero
from .learning2listen import vq_of


class CodeTalker(BaselineModel):
    stages = 2

    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.config = cfg.check()
        b, d = cfg.baseline, cfg.feature_dim
        if b.quant_factor:
            raise DualTalkError("codetalker predicts codebook features per frame: baseline.quant_factor must be 0")
        self.vq = vq_of(cfg, b.codes_per_frame)
        self.audio_encoder = build_audio_encoder(cfg.audio_encoder, cfg.sample_rate)
        self.audio_feature_map = nn.Linear(cfg.audio_encoder.output_dim, d)
        self.style = nn.Parameter(torch.randn(1, 1, d) * 0.02)  # (1, 1, d)
        self.motion_map = nn.Linear(cfg.motion_dim, d)
        self.decoder = faceformer_decoder(cfg)
        self.feat_map = init_zero(nn.Linear(d, b.codes_per_frame * b.code_dim, bias=False))
        self.register_motion_buffers(cfg)

    def features(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, d) decoder output -> (B, T, N, C) codebook features"""
        b = self.config.baseline
        return self.feat_map(h).reshape(h.shape[0], h.shape[1], b.codes_per_frame, b.code_dim)

    def generate(self, memory: torch.Tensor, frames: int) -> torch.Tensor:
        """Autoregressive: memory (B, T, d) -> (B, T, D) model units."""
        b = memory.shape[0]
        x = self.style.expand(b, 1, -1)  # (B, 1, d)
        cache: Cache = {}
        feats = []
        for t in range(frames):
            feats.append(self.features(self.decoder.step(x, memory, t, cache)))  # (B, 1, N, C)
            if t < frames - 1:
                zq, _, _ = self.vq.quantize(torch.cat(feats, dim=1), frozen=True)  # (B, t + 1, N, C)
                last = self.vq.decode(zq)[:, t : t + 1]  # (B, 1, D)
                x = self.motion_map(last) + self.style
        zq, _, _ = self.vq.quantize(torch.cat(feats, dim=1), frozen=True)
        return self.vq.decode(zq, frames)

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
        """self_audio (B, S) -> (B, T, D); with ``target``: (prediction, loss) of the stage of ``step``."""
        self_audio, frames = self.speaker_frames(self_audio, partner_audio, partner_motion, audio_features)
        if target is not None and self.stage(step or 0) == 1:
            rec, loss = self.vq(self.normalize_motion(target))
            return self.output_motion(rec), loss
        memory = self.audio_feature_map(self.audio_encoder(self_audio, frames))  # (B, T, d)
        with frozen(self.vq):
            if target is None:
                return self.output_motion(self.generate(memory, frames))
            y = self.normalize_motion(target)  # (B, T, D)
            with torch.no_grad():
                gt, _, _ = self.vq.quantize(self.vq.encode(y))  # (B, T, N, C)
            b = y.shape[0]
            inputs = torch.cat([self.style.expand(b, 1, -1), self.motion_map(y[:, :-1]) + self.style], dim=1)
            feats = self.features(self.decoder(inputs, memory))  # (B, T, N, C)
            zq, _, _ = self.vq.quantize(feats, frozen=True)  # straight-through to the predictor
            pred = self.vq.decode(zq, frames)  # (B, T, D)
            loss = self.config.baseline.reg_weight * F.mse_loss(feats, gt)
        return self.output_motion(pred), loss
