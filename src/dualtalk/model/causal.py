"""The causal DualTalk (``variant="causal"``): every layer sees only the past, plus a fixed audio lookahead.

The four modules of the paper keep their roles; each is rebuilt from layers that are causal and have a
bounded state, so the same model runs offline (``forward``) and live (``dualtalk.inference.streaming``)
with the same result:

1. Joint encoder. Per person, a log-mel front end at the motion frame rate: frame t holds two windows of
   ``n_fft`` samples ending ``lookahead_frames`` frames after frame t (the only look into the future), then
   causal convolutions and the shared projection (no whole-clip waveform normalisation: it cannot stream, so
   ``audio_encoder.normalize_waveform`` is ignored here). The partner's motion is read ``partner_motion_delay``
   frames late (a live tracker lags); without it (``partner_motion=None``) a learned "absent" vector takes
   its place, and ``partner_motion_dropout`` trains for that.
2. Temporal enhancer: causal cross-attention (the partner's audio asks the partner's motion of the last
   ``attention_window`` frames) with a residual, a causal depthwise convolution, a one-directional LSTM.
3. Interaction module: pre-norm transformer blocks over [own audio, enhanced partner] with causal attention
   over the last ``attention_window`` frames (FaceFormer's periodic ALiBi bias, past side), then one more
   such self-attention with a residual.
4. Synthesis: pre-norm causal blocks, the paper's adaptive modulation ``D + alpha * sigmoid(D W + b)``, a
   linear map to 56 coefficients.

Every stateful layer takes ``(x, state) -> (y, state)``: a convolution keeps its last ``k - 1`` inputs, the
LSTM its (h, c), an attention the keys and values of its last ``attention_window - 1`` frames. ``forward``
is one call with empty states; a stream is the same calls chunk by chunk, so chunked == offline up to float
rounding, with constant memory whatever the length.

    model = CausalDualTalk(get_preset("stream-small"))
    out = model(self_audio, partner_audio, partner_motion)        # (B, S), (B, S), (B, T, 56) -> (B, T, 56)
    out = model(self_audio, partner_audio, None)                   # the partner's face unseen
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import DualTalkConfig
from ..errors import DualTalkError
from ..features.audio_encoder import mel_filterbank
from .base import MotionModel
from .layers import alibi_slopes

State = dict[str, Any]


def _take(wave: torch.Tensor, start: int, s0: int, s1: int) -> torch.Tensor:
    """Samples [s0, s1) of a stream of which ``wave`` (B, S') holds [start, start + S'); zeros elsewhere."""
    b, n = wave.shape[0], wave.shape[1]
    out = wave.new_zeros(b, s1 - s0)
    lo, hi = max(s0, start), min(s1, start + n)
    if hi > lo:
        out[:, lo - s0 : hi - s0] = wave[:, lo - start : hi - start]
    return out


class CausalLogMel(nn.Module):
    """Log-mel features at the motion frame rate: frame t = two ``n_fft`` windows (hop = half a frame)
    ending at samples ``spf (t + 1/2 + L)`` and ``spf (t + 1 + L)``. (B, S) -> (B, T, 2 n_mels)."""

    def __init__(self, n_fft: int, n_mels: int, sample_rate: int, samples_per_frame: int, lookahead_frames: int):
        super().__init__()
        if samples_per_frame % 2:
            raise DualTalkError(
                f"the causal front end needs an even number of samples per frame, not {samples_per_frame}"
            )
        self.n_fft, self.spf, self.lookahead = n_fft, samples_per_frame, lookahead_frames
        self.sample_rate, self.n_mels = sample_rate, n_mels
        self.hop = samples_per_frame // 2
        self.window: torch.Tensor
        self.mel: torch.Tensor
        self.rebuild_buffers()

    def rebuild_buffers(self, device=None) -> None:
        """The (non-persistent) window and mel filters, e.g. after loading on the meta device."""
        self.register_buffer("window", torch.hann_window(self.n_fft, device=device), persistent=False)
        mel = torch.from_numpy(mel_filterbank(self.sample_rate, self.n_fft, self.n_mels))
        self.register_buffer("mel", mel.to(device), persistent=False)

    def last_sample(self, t: int) -> int:
        """One past the last sample frame ``t`` reads."""
        return self.spf * (t + 1 + self.lookahead)

    def first_sample(self, t: int) -> int:
        """The first sample frame ``t`` reads (negative: before the stream, zeros)."""
        return self.hop * (2 * t + 1) + self.spf * self.lookahead - self.n_fft

    def frames(self, wave: torch.Tensor, start: int, t0: int, t1: int) -> torch.Tensor:
        """Frames [t0, t1) from ``wave`` (B, S') holding samples [start, start + S') -> (B, t1 - t0, 2 n_mels)."""
        seg = _take(wave.float(), start, self.first_sample(t0), self.last_sample(t1 - 1))  # (B, hop (2n - 1) + n_fft)
        win = seg.unfold(-1, self.n_fft, self.hop) * self.window  # (B, 2n, n_fft)
        spec = torch.fft.rfft(win, dim=-1)  # (B, 2n, F)
        power = spec.real.square() + spec.imag.square()
        mel = torch.log(torch.matmul(power, self.mel.t()) + 1e-6)  # (B, 2n, n_mels)
        b, n2, m = mel.shape
        return mel.reshape(b, n2 // 2, 2 * m)  # (B, n, 2 n_mels)


class CausalConv(nn.Module):
    """Conv1d over time that sees frames [t - k + 1, t]; state: the last k - 1 inputs. (B, T, C) -> (B, T, C')"""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int = 1):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(c_in, c_out, kernel, groups=groups)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Computed time-major as a product over unfolded windows (the same sum as ``conv1d``, without its
        per-call overhead, which dominates when a stream advances one frame at a time)."""
        k, w, b = self.kernel, self.conv.weight, self.conv.bias  # w: (C', C / groups, k)
        if k == 1:
            return F.linear(x, w[:, :, 0], b), None
        past = state if state is not None else x.new_zeros(x.shape[0], k - 1, x.shape[2])
        xx = torch.cat([past, x], dim=1)  # (B, k - 1 + T, C)
        windows = xx.unfold(1, k, 1)  # (B, T, C, k)
        if self.conv.groups == 1:
            y = F.linear(windows.reshape(*windows.shape[:2], -1), w.reshape(w.shape[0], -1), b)  # (B, T, C')
        else:  # depthwise
            y = (windows * w[:, 0]).sum(-1) + (b if b is not None else 0.0)  # (B, T, C)
        return y, xx[:, xx.shape[1] - (k - 1) :]


class AudioEncoder(nn.Module):
    """Causal log-mel front end -> causal convolutions (kernel 3, GELU) -> LayerNorm. (B, S) -> (B, T, C)"""

    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        a = cfg.audio_encoder
        self.frontend = CausalLogMel(a.n_fft, a.n_mels, cfg.sample_rate, cfg.samples_per_frame, cfg.lookahead_frames)
        self.convs = nn.ModuleList()
        channels = 2 * a.n_mels
        for _ in range(a.mel_layers):
            self.convs.append(CausalConv(channels, a.mel_channels, 3))
            channels = a.mel_channels
        self.norm = nn.LayerNorm(a.mel_channels)

    def forward(self, wave: torch.Tensor, start: int, t0: int, t1: int, state: list) -> torch.Tensor:
        x = self.frontend.frames(wave, start, t0, t1).to(self.norm.weight.dtype)  # (B, n, 2 n_mels)
        for i, conv in enumerate(self.convs):
            x, state[i] = conv(x, state[i])
            x = F.gelu(x)
        return self.norm(x)  # (B, n, C)


class WindowedAttention(nn.Module):
    """Multi-head attention of each frame to the last ``window`` frames (itself included) of the key
    sequence, with FaceFormer's periodic ALiBi bias ``-m_h floor((i - j) / period)``; state: the keys and
    values of the last ``window - 1`` frames and the position of the next frame."""

    def __init__(self, dim: int, heads: int, window: int, period: int, kv_dim: int | None = None):
        super().__init__()
        self.heads, self.window, self.period = heads, window, period
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim or dim, dim)
        self.v = nn.Linear(kv_dim or dim, dim)
        self.out = nn.Linear(dim, dim)
        self.slopes: torch.Tensor
        self.rebuild_buffers()

    def rebuild_buffers(self, device=None) -> None:
        self.register_buffer("slopes", alibi_slopes(self.heads).to(device), persistent=False)
        self._bias_cache: dict = {}

    def bias(self, n: int, c: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """(H, n, c + n) additive bias of n new frames over c cached + n new keys; it depends on (n, c) only
        (the distance between query i and key j is c + i - j), so a stream's steady state reuses one."""
        key = (n, c, dtype, device)
        cached = self._bias_cache.get(key)
        if cached is not None:
            return cached
        dist = torch.arange(c, c + n, device=device)[:, None] - torch.arange(c + n, device=device)[None, :]
        bias = -self.slopes[:, None, None] * torch.div(dist, self.period, rounding_mode="floor")[None].to(dtype)
        bias = bias.masked_fill(((dist < 0) | (dist >= self.window))[None], float("-inf")).to(dtype)
        if len(self._bias_cache) >= 8:
            self._bias_cache.clear()
        self._bias_cache[key] = bias
        return bias

    def forward(self, x: torch.Tensor, kv: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """(B, n, D) queries, (B, n, Dkv) key/value inputs of the same frames -> (B, n, D)"""
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)  # (B, H, n, dh)
        k = self.k(kv).view(b, n, h, d // h).transpose(1, 2)
        v = self.v(kv).view(b, n, h, d // h).transpose(1, 2)
        pos = 0
        if state is not None:
            pos = state["pos"]
            k = torch.cat([state["k"], k], dim=2)  # (B, H, c + n, dh)
            v = torch.cat([state["v"], v], dim=2)
        c = k.shape[2] - n
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias(n, c, q.dtype, q.device))  # (B, H, n, dh)
        y = self.out(y.transpose(1, 2).reshape(b, n, d))
        keep = max(0, min(self.window - 1, k.shape[2]))
        return y, {"k": k[:, :, k.shape[2] - keep :], "v": v[:, :, v.shape[2] - keep :], "pos": pos + n}


class CausalBlock(nn.Module):
    """Pre-norm transformer block with windowed causal self-attention. (B, n, D) -> (B, n, D)"""

    def __init__(self, dim: int, cfg: DualTalkConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = WindowedAttention(dim, cfg.num_heads, cfg.attention_window, cfg.bias_period)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, cfg.ffn_dim), nn.GELU(), nn.Linear(cfg.ffn_dim, dim))
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        h = self.norm1(x)
        a, state = self.attention(h, h, state)
        x = x + self.dropout(a)
        return x + self.dropout(self.ffn(self.norm2(x))), state


class CausalDualTalk(MotionModel):
    """The causal model. ``forward(self_audio, partner_audio, partner_motion | None) -> (B, T, 56)``;
    :meth:`forward_frames` computes frames [t0, t1) from the newest audio and a carried state (streaming)."""

    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.config = cfg.check()
        if cfg.variant != "causal":
            raise DualTalkError(f"CausalDualTalk needs variant 'causal', not {cfg.variant!r}")
        d, d2 = cfg.feature_dim, 2 * cfg.feature_dim
        # 1. joint encoder
        if cfg.use_self_audio:
            self.audio_encoder1 = AudioEncoder(cfg)
        if cfg.use_partner_audio:
            self.audio_encoder2 = AudioEncoder(cfg)
        self.audio_projection = nn.Linear(cfg.audio_encoder.mel_channels, d)
        self.blendshape_encoder = nn.Sequential(
            nn.Linear(cfg.motion_dim, d // 2), nn.ReLU(), nn.Linear(d // 2, d), nn.ReLU()
        )
        self.motion_skip = nn.Linear(cfg.motion_dim, d)
        self.absent_motion = nn.Parameter(torch.zeros(d))  # the partner's face unseen
        # 2. temporal enhancer
        self.cross_attention = WindowedAttention(d, cfg.num_heads, cfg.attention_window, cfg.bias_period)
        k = max(cfg.temporal_kernel, 1)
        self.temporal_depthwise = CausalConv(d, d, k, groups=d)
        self.temporal_pointwise = nn.Linear(d, d)
        nn.init.zeros_(self.temporal_pointwise.weight)
        nn.init.zeros_(self.temporal_pointwise.bias)
        self.temporal_lstm = nn.LSTM(d, d, num_layers=cfg.lstm_layers, batch_first=True)
        # 3. interaction module
        self.interaction_blocks = nn.ModuleList(CausalBlock(d2, cfg) for _ in range(cfg.encoder_layers))
        self.interaction_norm = nn.LayerNorm(d2)
        self.self_attention = WindowedAttention(d2, cfg.num_heads, cfg.attention_window, cfg.bias_period)
        self.interaction_dropout = nn.Dropout(cfg.interaction_dropout)
        # 4. synthesis
        self.synthesis_blocks = nn.ModuleList(CausalBlock(d2, cfg) for _ in range(cfg.decoder_layers))
        self.synthesis_norm = nn.LayerNorm(d2)
        self.modulation_layer = nn.Linear(d2, d2)
        self.blendshape_predictor = nn.Linear(d2, cfg.motion_dim)
        self.register_motion_buffers(cfg)

    @property
    def latency_frames(self) -> int:
        """Frames of audio after frame t's own that frame t needs (the lookahead)."""
        return self.config.lookahead_frames

    def forward(
        self,
        self_audio: torch.Tensor | None,
        partner_audio: torch.Tensor | None,
        partner_motion: torch.Tensor | None = None,
        return_intermediates: bool = False,
        *,
        audio_features=None,
    ) -> torch.Tensor:
        """self_audio (B, S), partner_audio (B, S), partner_motion (B, T, 56) or None -> (B, T, 56), T = ceil(S / 640).

        Audio after the end is silence (zeros) for the last frames' lookahead, as at the end of a stream.
        """
        if audio_features is not None:
            raise DualTalkError("the causal model computes its own audio features (no feature cache)")
        cfg = self.config
        wave = self_audio if self_audio is not None else partner_audio
        if wave is None:
            raise DualTalkError("the causal model needs audio")
        t = -(-wave.shape[1] // cfg.samples_per_frame)
        if partner_motion is not None and partner_motion.shape[1] != t:
            raise DualTalkError(f"partner motion has {partner_motion.shape[1]} frames, the audio implies {t}")
        used = None
        if partner_motion is not None:  # frame t reads the partner's motion of frame t - delay
            lag = cfg.partner_motion_delay
            used = F.pad(partner_motion, (0, 0, lag, 0))[:, :t] if lag else partner_motion
        out, _ = self.forward_frames(self_audio, partner_audio, 0, 0, t, used, None)
        return out

    def forward_frames(
        self,
        self_audio: torch.Tensor | None,
        partner_audio: torch.Tensor | None,
        start: int,
        t0: int,
        t1: int,
        partner_motion: torch.Tensor | None,
        state: State | None,
    ) -> tuple[torch.Tensor, State]:
        """Frames [t0, t1) given audio holding samples [start, ...) of each stream (enough for the frames'
        windows: ``audio_encoder1.frontend.first_sample(t0)`` to ``last_sample(t1 - 1)``; zeros beyond),
        ``partner_motion`` (B, n, 56) the motion each frame reads (already delayed) or None, and the state
        after frame t0 - 1 (None at t0 = 0). -> ((B, n, 56), state after frame t1 - 1)."""
        cfg = self.config
        n = t1 - t0
        ref = self_audio if self_audio is not None else partner_audio
        assert ref is not None
        b = ref.shape[0]
        s: State = state if state is not None else self.initial_state()
        new: State = {}
        d = cfg.feature_dim

        def audio(name: str, wave):  # an input the config switches off has no encoder: zeros
            enc = getattr(self, name, None)
            if enc is None:
                return ref.new_zeros(b, n, d, dtype=self.audio_projection.weight.dtype)
            conv_state = list(s[name])
            feats = enc(wave, start, t0, t1, conv_state)  # (B, n, C)
            new[name] = conv_state
            return self.audio_projection(feats)  # (B, n, d)

        feat_self = audio("audio_encoder1", self_audio)  # (B, n, d)
        feat_partner = audio("audio_encoder2", partner_audio)  # (B, n, d)
        absent = self.absent_motion.expand(b, n, d)
        if partner_motion is None or not cfg.use_partner_motion:
            feat_motion = absent
        else:
            m = self.normalize_motion(partner_motion.to(feat_self.dtype))
            feat_motion = self.blendshape_encoder(m) + self.motion_skip(m)  # (B, n, d)
            if self.training and cfg.partner_motion_dropout > 0:  # train for the partner's face unseen
                drop = torch.rand(b, 1, 1, device=m.device) < cfg.partner_motion_dropout
                feat_motion = torch.where(drop, absent, feat_motion)
        # 2. temporal enhancer
        x, new["cross"] = self.cross_attention(feat_partner, feat_motion, s["cross"])
        x = x + feat_partner + feat_motion  # (B, n, d)
        c, new["depthwise"] = self.temporal_depthwise(x, s["depthwise"])
        x = x + self.temporal_pointwise(c)
        y, hc = self.temporal_lstm(x, s["lstm"])  # (B, n, d)
        new["lstm"] = hc
        temporal = y + x
        # 3. interaction
        z = torch.cat([feat_self, temporal], dim=-1)  # (B, n, 2d)
        z, new["interaction"] = _run_blocks(self.interaction_blocks, z, s["interaction"])
        h = self.interaction_norm(z)
        a, new["self_attention"] = self.self_attention(h, h, s["self_attention"])
        z = self.interaction_dropout(z + a)
        # 4. synthesis
        z, new["synthesis"] = _run_blocks(self.synthesis_blocks, z, s["synthesis"])
        z = self.synthesis_norm(z)
        z = z + cfg.modulation_alpha * torch.sigmoid(self.modulation_layer(z))
        out = self.output_motion(self.blendshape_predictor(z))  # (B, n, 56)
        for key in ("audio_encoder1", "audio_encoder2"):
            new.setdefault(key, s[key])
        return out, new

    def initial_state(self) -> State:
        n_conv = self.config.audio_encoder.mel_layers
        return {
            "audio_encoder1": [None] * n_conv,
            "audio_encoder2": [None] * n_conv,
            "cross": None,
            "depthwise": None,
            "lstm": None,
            "interaction": [None] * len(self.interaction_blocks),
            "self_attention": None,
            "synthesis": [None] * len(self.synthesis_blocks),
        }


def _run_blocks(blocks: nn.ModuleList, x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
    """x through each block with its state; -> (output, the blocks' new states)."""
    new = []
    for block, state in zip(blocks, states):
        x, state = block(x, state)
        new.append(state)
    return x, new


def state_nbytes(state: Any) -> int:
    """Bytes held by the tensors of a streaming state (for the constant-memory check)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_nbytes(v) for v in state)
    return 0


__all__ = ["CausalDualTalk", "CausalLogMel", "WindowedAttention", "state_nbytes"]
