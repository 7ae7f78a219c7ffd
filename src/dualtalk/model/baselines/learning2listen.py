"""Learning2Listen (Ng et al., CVPR 2022): a listener's motion from the speaker's audio and motion.

After the paper and its public code (github evonneng/learning2listen), which already works on a 56-d FLAME
motion like ours ([exp 50, pose 6]):

- stage 1, a VQ-VAE of the listener's motion (:class:`~dualtalk.model.baselines.common.MotionVQVAE`): windows
  of ``vq_window`` frames (32) coded at one code per 2^``quant_factor`` frames (8), ``codebook_size`` codes
  (200) of ``code_dim``;
- stage 2, the predictor, with the VQ-VAE frozen: the speaker's (here the partner's) audio and motion are
  projected, fused by a cross-modal transformer (``encoder_layers``) and compressed to the code rate (one
  feature per 8 frames); an autoregressive transformer over the listener's codes (``past_codes`` codes of
  its past, 4 = 32 frames) attends to the speaker's features of the same past and the current patch, and
  predicts the next code (cross-entropy, teacher-forced on the ground truth's codes);
- inference runs over the whole conversation code by code (greedy), in the original's sliding windows: code
  k sees the listener's codes k - 4 .. k - 1 and the speaker's frames 8 (k - 4) .. 8 (k + 1) - 1; the codes
  are decoded window by window (32 frames).

Our differences, for our data pipeline: the speaker's features come from our audio encoder at the motion
frame rate (L2L: mel frames max-pooled 4x) and the per-code compression is a max over each 8-frame patch
after the fusion (L2L: a strided convolution and max pooling); the fusion's attention is restricted to the
frames the original's windows contain, so no code sees the speaker's future beyond its own patch. The
original also trains with a randomly masked listener past (its start condition); here a start token plays
that part. The motion loss of the engine is reported on the decoded teacher-forced prediction; the
predictor learns from the cross-entropy alone, as in L2L.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...config import DualTalkConfig
from ...features.audio_encoder import build_audio_encoder
from .common import ARDecoder, BaselineModel, Cache, MotionVQVAE, frozen


def _pad_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T, C) -> (B, frames, C) by repeating the last frame."""
    extra = frames - x.shape[1]
    return x if extra <= 0 else torch.cat([x, x[:, -1:].expand(-1, extra, -1)], dim=1)


def vq_of(cfg: DualTalkConfig, codes_per_frame: int = 1) -> MotionVQVAE:
    b = cfg.baseline
    return MotionVQVAE(
        cfg.motion_dim,
        cfg.feature_dim,
        cfg.num_heads,
        cfg.ffn_dim,
        cfg.encoder_layers,
        cfg.dropout,
        cfg.bias_period,
        b.codebook_size,
        b.code_dim,
        codes_per_frame,
        b.quant_factor,
        b.vq_window,
    )


class Learning2Listen(BaselineModel):
    stages = 2

    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.config = cfg.check()
        b, d = cfg.baseline, cfg.feature_dim
        self.vq = vq_of(cfg)
        self.patch = 2**b.quant_factor  # frames per code
        if cfg.use_partner_audio:
            self.audio_encoder = build_audio_encoder(cfg.audio_encoder, cfg.sample_rate)
            self.audio_projector = nn.Linear(cfg.audio_encoder.output_dim, d)
        if cfg.use_partner_motion:
            self.motion_projector = nn.Linear(cfg.motion_dim, d)
        self.modality = nn.Parameter(torch.randn(2, d) * 0.02)  # (2, d) audio / motion tokens
        layer = nn.TransformerEncoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, batch_first=True)
        self.cross_modal = nn.TransformerEncoder(layer, cfg.encoder_layers, enable_nested_tensor=False)
        self.post_projector = nn.Linear(d, d)
        self.code_embedding = nn.Embedding(b.codebook_size + 1, d)  # the last one: start
        self.predictor = ARDecoder(
            d,
            cfg.num_heads,
            cfg.ffn_dim,
            cfg.decoder_layers,
            cfg.dropout,
            period=max(1, cfg.bias_period // self.patch),
            before=b.past_codes,
            after=0,
            window=b.past_codes + 1,
        )
        self.code_logits = nn.Linear(d, b.codebook_size)
        self.register_motion_buffers(cfg)

    # --- the speaker (partner) ---

    def speaker_features(self, partner_audio, partner_motion, frames: int, padded: int) -> torch.Tensor:
        """(B, S), (B, T, D) model units -> (B, padded / patch, d) one feature per code."""
        cfg, p = self.config, self.patch
        tokens = []
        if cfg.use_partner_audio:
            a = self.audio_projector(self.audio_encoder(partner_audio, frames))  # (B, T, d)
            tokens.append(_pad_frames(a, padded) + self.modality[0])
        if cfg.use_partner_motion:
            m = self.motion_projector(partner_motion)  # (B, T, d)
            tokens.append(_pad_frames(m, padded) + self.modality[1])
        x = torch.cat(tokens, dim=1)  # (B, k T', d)
        frame = torch.arange(padded, device=x.device).repeat(len(tokens)) // p  # (k T',) code of each token
        past = self.config.baseline.past_codes
        allowed = (frame[None, :] <= frame[:, None]) & (frame[None, :] >= frame[:, None] - past)
        mask = torch.zeros(allowed.shape, device=x.device, dtype=x.dtype).masked_fill(~allowed, float("-inf"))
        x = self.cross_modal(x, mask=mask)  # (B, k T', d)
        x = sum(x.chunk(len(tokens), dim=1))  # (B, T', d) audio + motion per frame
        x = x.reshape(x.shape[0], padded // p, p, -1).amax(dim=2)  # (B, T' / P, d) max over each patch
        return self.post_projector(x)

    # --- stages ---

    def predict_codes(self, memory: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: memory (B, Tc, d), ground-truth codes (B, Tc) -> logits (B, Tc, K)"""
        b = codes.shape[0]
        start = torch.full((b, 1), self.config.baseline.codebook_size, device=codes.device, dtype=torch.long)
        inputs = self.code_embedding(torch.cat([start, codes[:, :-1]], dim=1))  # (B, Tc, d)
        return self.code_logits(self.predictor(inputs, memory))

    def generate_codes(self, memory: torch.Tensor) -> torch.Tensor:
        """Autoregressive, greedy, with a key/value cache: memory (B, Tc, d) -> codes (B, Tc)"""
        b, tc = memory.shape[:2]
        code = torch.full((b, 1), self.config.baseline.codebook_size, device=memory.device, dtype=torch.long)
        cache: Cache = {}
        out = []
        for k in range(tc):
            h = self.predictor.step(self.code_embedding(code), memory, k, cache)  # (B, 1, d)
            code = self.code_logits(h).argmax(-1)  # (B, 1)
            out.append(code)
        return torch.cat(out, dim=1)

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
        """partner_audio (B, S), partner_motion (B, T, D) -> (B, T, D) the listener; with ``target``:
        (prediction, loss) of the stage of ``step`` (stage 1: the VQ-VAE's reconstruction)."""
        frames = self.frames_of(self_audio, partner_audio, partner_motion)
        if target is not None and self.stage(step or 0) == 1:
            rec, loss = self.vq(self.normalize_motion(target))  # (B, T, D)
            return self.output_motion(rec), loss
        padded = self.vq.padded_length(frames)
        pm = self.normalize_motion(partner_motion) if partner_motion is not None else None
        memory = self.speaker_features(partner_audio, pm, frames, padded)  # (B, Tc, d)
        with frozen(self.vq):
            if target is None:
                return self.output_motion(self.vq.decode_indices(self.generate_codes(memory)[..., None], frames))
            with torch.no_grad():
                codes = self.vq.codes(self.normalize_motion(target))[..., 0]  # (B, Tc)
            logits = self.predict_codes(memory, codes)  # (B, Tc, K)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1))
            with torch.no_grad():
                pred = self.vq.decode_indices(logits.argmax(-1)[..., None], frames)  # (B, T, D)
        return self.output_motion(pred), loss
