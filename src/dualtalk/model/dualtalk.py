"""The DualTalk model: tensors in, tensors out (no file IO, no losses).

Inputs, for the person B whose motion is generated ("self") and the partner A:
  self_audio (B, S) and partner_audio (B, S) waveforms at 16 kHz, partner_motion (B, T, 56) in model order
  [exp 50, jaw 3, global 3], with T = ceil(S / 640). Output: (B, T, 56) motion of the person.

The four parts of the paper, in both published forms (``config.variant``):

1. Dual-speaker joint encoder: two audio encoders (one per person) whose outputs share one linear
   projection to ``feature_dim``; a two-layer MLP with ReLU encodes the partner's 56-d motion.
2. Cross-modal temporal enhancer: cross-attention with the partner's audio as query and the partner's
   motion features as key/value, then a 2-layer BiLSTM. In ``released`` the keys carry no position, so the
   attention output is a content-weighted average over the whole sequence: the partner's motion reaches
   the model without its timing. ``paper`` aligns the two modalities with FaceFormer's alignment bias
   (query frame t attends to the motion frames within ``alignment_window`` of t), as the paper says the
   cross-modal attention "achieves alignment"; the BiLSTM then supplies the temporal context.
3. Dual-speaker interaction module: a transformer encoder over concat(self audio, enhanced partner
   features), then a self-attention layer. ``paper`` adds the modal-alignment bias to that attention
   ("Modal Alignment Attention (a biased attention inspired by FaceFormer) aligns temporal information")
   and periodic positional information at the encoder input.
4. Expressive synthesis: a transformer decoder ``d = decoder(x, x)``, expression modulation, a linear
   layer to 56-d. ``released``: ``d + 0.1 * Linear(d)``; ``paper``: the adaptive expression modulation
   ``D' = D + alpha * sigmoid(D W_m + b_m)``; ``paper`` also restricts the decoder's cross-attention to
   the aligned frames (FaceFormer's alignment bias).

Module and parameter names follow the released checkpoint (``joint_encoder.audio_projection``,
``temporal_enhancer.cross_attention``, ...) so that conversion is a rename of the wav2vec2 keys only.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from ..config import DualTalkConfig
from ..errors import DualTalkError
from ..features.audio_encoder import build_audio_encoder
from ..layout import frames_for
from .base import MotionModel
from .layers import PeriodicPositionalEncoding, alignment_mask, temporal_bias

if TYPE_CHECKING:
    from .baselines import BaselineModel
    from .causal import CausalDualTalk


class JointEncoder(nn.Module):
    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.feature_dim
        if cfg.use_self_audio:
            self.audio_encoder1 = build_audio_encoder(cfg.audio_encoder, cfg.sample_rate)
        if cfg.use_partner_audio:
            self.audio_encoder2 = build_audio_encoder(cfg.audio_encoder, cfg.sample_rate)
        if cfg.use_self_audio or cfg.use_partner_audio:
            self.audio_projection = nn.Linear(cfg.audio_encoder.output_dim, d)
        if cfg.use_partner_motion:
            self.blendshape_encoder = nn.Sequential(
                nn.Linear(cfg.motion_dim, d // 2), nn.ReLU(), nn.Linear(d // 2, d), nn.ReLU()
            )
            if cfg.variant == "paper" and cfg.motion_skip:  # zero at first: the path-free model
                self.motion_skip = nn.Linear(cfg.motion_dim, d)
                nn.init.zeros_(self.motion_skip.weight)
                nn.init.zeros_(self.motion_skip.bias)

    def forward(self, self_audio, partner_audio, partner_motion, num_frames: int, audio_features=None):
        """-> self audio (B, T, d), partner audio (B, T, d), partner motion (B, T, d) features.

        ``audio_features``: the two audio encoders' outputs, ``(self (B, T, H) | None, partner (B, T, H) |
        None)``, computed beforehand (a training feature cache): the encoders are skipped.
        """
        b = partner_motion.shape[0]
        zeros = None

        def zero():
            nonlocal zeros
            if zeros is None:
                zeros = torch.zeros(
                    b, num_frames, self.cfg.feature_dim, device=partner_motion.device, dtype=partner_motion.dtype
                )
            return zeros

        def encode(encoder: str, wave, index: int):
            raw = audio_features[index] if audio_features is not None else getattr(self, encoder)(wave, num_frames)
            return self.audio_projection(raw)  # (B, T, d)

        feat_self = encode("audio_encoder1", self_audio, 0) if self.cfg.use_self_audio else zero()  # (B, T, d)
        feat_partner = encode("audio_encoder2", partner_audio, 1) if self.cfg.use_partner_audio else zero()  # (B, T, d)
        feat_motion = self.blendshape_encoder(partner_motion) if self.cfg.use_partner_motion else zero()  # (B, T, d)
        if self.cfg.use_partner_motion and hasattr(self, "motion_skip"):
            feat_motion = feat_motion + self.motion_skip(partner_motion)
        return feat_self, feat_partner, feat_motion


class TemporalEnhancer(nn.Module):
    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.feature_dim
        self.cross_attention = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
        self.temporal_lstm = nn.LSTM(d, d // 2, num_layers=cfg.lstm_layers, bidirectional=True, batch_first=True)
        if cfg.variant == "paper" and cfg.temporal_kernel:
            k = cfg.temporal_kernel
            ahead = k // 2 if cfg.temporal_lookahead < 0 else cfg.temporal_lookahead
            self.temporal_pad = (k - 1 - ahead, ahead)  # (past, future) frames
            self.temporal_conv = nn.Sequential(nn.Conv1d(d, d, k, groups=d), nn.Conv1d(d, d, 1))
            pointwise = self.temporal_conv[1]
            assert isinstance(pointwise, nn.Conv1d)
            nn.init.zeros_(pointwise.weight)  # a residual branch that starts at zero
            if pointwise.bias is not None:
                nn.init.zeros_(pointwise.bias)

    def forward(self, partner_audio_feat, partner_motion_feat):
        """(B, T, d), (B, T, d) -> (B, T, d)"""
        mask = None
        if self.cfg.variant == "paper":  # audio frame t attends to the motion frames aligned with it
            t = partner_audio_feat.shape[1]
            mask = alignment_mask(t, t, self.cfg.alignment_window, partner_audio_feat.device, partner_audio_feat.dtype)
        x, _ = self.cross_attention(
            partner_audio_feat, partner_motion_feat, partner_motion_feat, attn_mask=mask, need_weights=False
        )
        paper = self.cfg.variant == "paper"
        if paper and self.cfg.enhancer_residual:
            x = x + partner_audio_feat
        if paper and self.cfg.temporal_kernel:
            padded = nn.functional.pad(x.transpose(1, 2), self.temporal_pad)  # (B, d, past + T + future)
            x = x + self.temporal_conv(padded).transpose(1, 2)  # frame t sees [t - past, t + future]
        y, _ = self.temporal_lstm(x)  # (B, T, d) = 2 directions x d/2
        if paper and self.cfg.lstm_residual:
            y = y + x
        return y


class InteractionModule(nn.Module):
    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.cfg = cfg
        d2 = 2 * cfg.feature_dim
        layer = nn.TransformerEncoderLayer(d2, cfg.num_heads, cfg.ffn_dim, cfg.dropout, batch_first=True)
        self.interaction_encoder = nn.TransformerEncoder(layer, cfg.encoder_layers, enable_nested_tensor=False)
        self.self_attention = nn.MultiheadAttention(d2, cfg.num_heads, batch_first=True)
        self.dropout = nn.Dropout(cfg.interaction_dropout)
        if cfg.variant == "paper":
            self.positional = PeriodicPositionalEncoding(d2, cfg.bias_period)

    def forward(self, self_audio_feat, temporal_feat):
        """(B, T, d), (B, T, d) -> (B, T, 2d)"""
        x = torch.cat([self_audio_feat, temporal_feat], dim=-1)  # (B, T, 2d)
        bias = None
        if self.cfg.variant == "paper":
            x = self.positional(x)
            b, t, _ = x.shape
            bias = temporal_bias(self.cfg.num_heads, t, self.cfg.bias_period, x.device, x.dtype)  # (H, T, T)
            bias = bias.repeat(b, 1, 1)  # (B*H, T, T), MultiheadAttention's per-head layout
        x = self.interaction_encoder(x)  # (B, T, 2d)
        y, _ = self.self_attention(x, x, x, attn_mask=bias, need_weights=False)  # (B, T, 2d)
        if self.cfg.variant == "paper" and self.cfg.interaction_residual:
            y = y + x
        return self.dropout(y)


class SynthesisModule(nn.Module):
    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.cfg = cfg
        d2 = 2 * cfg.feature_dim
        layer = nn.TransformerDecoderLayer(d2, cfg.num_heads, cfg.ffn_dim, cfg.dropout, batch_first=True)
        self.synthesis_decoder = nn.TransformerDecoder(layer, cfg.decoder_layers)
        self.blendshape_predictor = nn.Linear(d2, cfg.motion_dim)
        self.modulation_layer = nn.Linear(d2, d2)

    def forward(self, x):
        """(B, T, 2d) -> (B, T, 56)"""
        memory_mask = None
        if self.cfg.variant == "paper":
            t = x.shape[1]
            memory_mask = alignment_mask(t, t, self.cfg.alignment_window, x.device, x.dtype)  # (T, T)
        d = self.synthesis_decoder(x, x, memory_mask=memory_mask)  # (B, T, 2d)
        if self.cfg.variant == "paper":
            d = d + self.cfg.modulation_alpha * torch.sigmoid(self.modulation_layer(d))
        else:
            d = d + self.cfg.modulation_alpha * self.modulation_layer(d)
        return self.blendshape_predictor(d)  # (B, T, 56)


class MirrorPath(nn.Module):
    """Mimicry (``mirror_kernel``): ``gate(x) * filter(partner motion)`` per coefficient, in normalised units.

    The filter is depthwise and causal: output coefficient i at frame t reads the partner's coefficient i at
    frames [t - k + 1, t]. The gate, ``sigmoid(Linear(x))`` of the interaction features, lets the model open
    the path only where it applies (while listening); it starts at ``sigmoid(mirror_gate_bias)``. Filter zero at
    first: the model starts without it."""

    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        k, n = cfg.mirror_kernel, cfg.motion_dim
        self.pad = k - 1
        self.mirror_filter = nn.Conv1d(n, n, k, groups=n, bias=False)
        nn.init.zeros_(self.mirror_filter.weight)
        self.mirror_gate = nn.Linear(2 * cfg.feature_dim, n)
        nn.init.zeros_(self.mirror_gate.weight)
        nn.init.constant_(self.mirror_gate.bias, cfg.mirror_gate_bias)

    def forward(self, partner_motion, interaction):
        """(B, T, 56) normalised partner motion, (B, T, 2d) interaction features -> (B, T, 56)"""
        padded = nn.functional.pad(partner_motion.transpose(1, 2), (self.pad, 0))  # (B, 56, k - 1 + T)
        mirrored = self.mirror_filter(padded).transpose(1, 2)  # (B, T, 56)
        return torch.sigmoid(self.mirror_gate(interaction)) * mirrored


class AudioResponsePath(nn.Module):
    """Responses to the partner's sounds (``audio_response_kernel``): ``gate(x) * filter(channels(partner audio))``.

    ``audio_response_channels`` linear projections of the partner's audio features (a learned "voice
    activity", "laugh", ...) are filtered causally into every output coefficient: coefficient i at frame t reads
    the channels at frames [t - k + 1, t]. The gate, ``sigmoid(Linear(x))`` of the interaction features, starts
    half open everywhere; the filter starts at zero (the model starts without the path). Low capacity on
    purpose: a weak response (a small nod after each of the partner's phrases) is learned as one linear filter
    instead of through every layer, where the idle motion's noise drowns it."""

    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        k, n, c = cfg.audio_response_kernel, cfg.motion_dim, cfg.audio_response_channels
        self.pad = k - 1
        self.response_channels = nn.Linear(cfg.feature_dim, c)
        self.response_filter = nn.Conv1d(c, n, k, bias=False)
        nn.init.zeros_(self.response_filter.weight)
        self.response_gate = nn.Linear(2 * cfg.feature_dim, n)
        nn.init.zeros_(self.response_gate.weight)
        nn.init.zeros_(self.response_gate.bias)

    def forward(self, partner_audio_feat, interaction):
        """(B, T, d) partner audio features, (B, T, 2d) interaction features -> (B, T, 56)"""
        x = self.response_channels(partner_audio_feat).transpose(1, 2)  # (B, c, T)
        y = self.response_filter(nn.functional.pad(x, (self.pad, 0))).transpose(1, 2)  # (B, T, 56)
        return torch.sigmoid(self.response_gate(interaction)) * y


class DualTalk(MotionModel):
    """The full model. ``forward(self_audio, partner_audio, partner_motion) -> (B, T, 56)``; motion buffers
    and helpers from :class:`~dualtalk.model.base.MotionModel`."""

    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.config = cfg.check()
        if cfg.variant == "causal":
            raise DualTalkError("DualTalk is the offline model: build a causal config with build_model()")
        self.joint_encoder = JointEncoder(cfg)
        self.temporal_enhancer = TemporalEnhancer(cfg)
        self.interaction_module = InteractionModule(cfg)
        self.synthesis_module = SynthesisModule(cfg)
        if cfg.mirror_kernel and "mirror_kernel" not in cfg.inert_fields():  # paper variant, partner's face seen
            self.mirror_path = MirrorPath(cfg)
        if cfg.audio_response_kernel and "audio_response_kernel" not in cfg.inert_fields():
            self.audio_response_path = AudioResponsePath(cfg)
        self.register_motion_buffers(cfg)

    def forward(
        self,
        self_audio: torch.Tensor | None,
        partner_audio: torch.Tensor | None,
        partner_motion: torch.Tensor,
        return_intermediates: bool = False,
        *,
        audio_features: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
    ):
        """self_audio (B, S), partner_audio (B, S), partner_motion (B, T, 56) -> (B, T, 56)

        With ``return_intermediates`` also a dict of the features after each stage (for parity checks).
        ``audio_features=(self, partner)``: the audio encoders' outputs (B, T, H) computed beforehand (the
        training feature cache of frozen encoders); the waveforms are then not needed (pass None).
        """
        cfg = self.config
        if audio_features is not None:
            num_frames = partner_motion.shape[1]
            for name, feats, used in (
                ("self", audio_features[0], cfg.use_self_audio),
                ("partner", audio_features[1], cfg.use_partner_audio),
            ):
                if used and (feats is None or feats.shape[:2] != partner_motion.shape[:2]):
                    raise DualTalkError(
                        f"{name} audio features must be (B, T, H) with (B, T) = {tuple(partner_motion.shape[:2])}"
                    )
        else:
            wave = self_audio if self_audio is not None else partner_audio
            if wave is None:
                raise DualTalkError("the model needs audio (or precomputed audio_features)")
            num_frames = frames_for(wave.shape[1], cfg.sample_rate, cfg.fps)  # T = ceil(S / 640)
            if partner_motion.shape[1] != num_frames:
                raise DualTalkError(
                    f"partner motion has {partner_motion.shape[1]} frames, the audio implies {num_frames}"
                )
        partner_motion = self.normalize_motion(partner_motion)
        feat_self, feat_partner, feat_motion = self.joint_encoder(
            self_audio, partner_audio, partner_motion, num_frames, audio_features
        )
        temporal = self.temporal_enhancer(feat_partner, feat_motion)  # (B, T, d)
        interaction = self.interaction_module(feat_self, temporal)  # (B, T, 2d)
        out = self.synthesis_module(interaction)  # (B, T, 56), normalised units
        if hasattr(self, "mirror_path"):
            out = out + self.mirror_path(partner_motion, interaction)
        if hasattr(self, "audio_response_path"):
            out = out + self.audio_response_path(feat_partner, interaction)
        out = self.output_motion(out)  # (B, T, 56)
        if not return_intermediates:
            return out
        return out, {
            "audio_feat_self": feat_self,
            "audio_feat_partner": feat_partner,
            "partner_motion_feat": feat_motion,
            "temporal_feat": temporal,
            "interaction_feat": interaction,
        }


def build_model(cfg: DualTalkConfig) -> DualTalk | CausalDualTalk | BaselineModel:
    """The model of a config: :class:`DualTalk` (``released``, ``paper``),
    :class:`~dualtalk.model.causal.CausalDualTalk` (``causal``) or a comparison baseline
    (:mod:`dualtalk.model.baselines`: ``faceformer``, ``codetalker``, ``selftalk``, ``learning2listen``)."""
    from ..config import BASELINE_VARIANTS

    if cfg.variant in BASELINE_VARIANTS:
        from .baselines import build_baseline

        return build_baseline(cfg)
    if cfg.variant == "causal":
        from .causal import CausalDualTalk

        return CausalDualTalk(cfg)
    return DualTalk(cfg)


@contextlib.contextmanager
def inference_context(model: nn.Module):
    """eval mode + no autograd for the duration; restores the previous mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)
