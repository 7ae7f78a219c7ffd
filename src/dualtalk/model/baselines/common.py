"""What the four comparison baselines share: one autoregressive transformer decoder with a key/value cache
(FaceFormer's biased attention), one motion VQ-VAE (CodeTalker's and Learning2Listen's codebook stage), and
the base class that plugs a baseline into the training engine.

The decoder is a post-norm transformer decoder (the layer of ``nn.TransformerDecoderLayer``: self-attention,
cross-attention, ReLU feed-forward, each followed by dropout, a residual and LayerNorm) written out so that
its attention can read keys and values cached from earlier steps: :meth:`ARDecoder.forward` is the
teacher-forced pass over a whole sequence, :meth:`ARDecoder.step` one new position against a cache, and the
two agree (``tests/model/test_baselines.py``).

FaceFormer's masks, in the decoder's two attentions:
- self-attention: the *periodic ALiBi* bias ``-m_h * floor((i - j) / p)`` for ``j <= i``, ``-inf`` for the
  future (FaceFormer's ``init_biased_mask``); optionally a window (Learning2Listen sees a fixed past);
- cross-attention: the *alignment* mask, query frame i attends to memory frames ``i - before .. i + after``
  (FaceFormer's ``enc_dec_mask``: the diagonal when audio features are at the motion frame rate).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import DualTalkError
from ..base import MotionModel
from ..layers import PeriodicPositionalEncoding, alibi_slopes

Cache = dict[str, torch.Tensor]


def causal_periodic_bias(
    heads: int,
    length_q: int,
    length_k: int,
    period: int,
    offset: int = 0,
    window: int = 0,
    device=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """FaceFormer's biased causal mask for queries at positions ``offset .. offset + Tq - 1`` over keys
    ``0 .. Tk - 1``: ``-m_h floor((i - j) / p)`` where ``j <= i`` (and ``i - j < window`` when ``window``),
    ``-inf`` elsewhere. (H, Tq, Tk)"""
    i = torch.arange(length_q, device=device)[:, None] + offset  # (Tq, 1)
    j = torch.arange(length_k, device=device)[None, :]  # (1, Tk)
    dist = (i - j).clamp_min(0).div(period, rounding_mode="floor")  # (Tq, Tk)
    slopes = alibi_slopes(heads).to(device)  # (H,)
    bias = -slopes[:, None, None] * dist[None].float()  # (H, Tq, Tk)
    banned = j > i
    if window:
        banned = banned | (i - j >= window)
    return bias.masked_fill(banned[None], float("-inf")).to(dtype)


def band_mask(length_q: int, length_k: int, before: int, after: int, offset: int = 0, device=None, dtype=torch.float32):
    """Alignment mask: query i (at position ``offset + i``) sees keys ``[i - before, i + after]``; 0 inside,
    -inf outside. (Tq, Tk)"""
    i = torch.arange(length_q, device=device)[:, None] + offset
    j = torch.arange(length_k, device=device)[None, :]
    mask = torch.zeros(length_q, length_k, device=device, dtype=dtype)
    return mask.masked_fill((j < i - before) | (j > i + after), float("-inf"))


class CachedAttention(nn.Module):
    """Multi-head attention with an additive mask whose keys/values can come from a cache. (B, T, d)"""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # (B, H, T, d/H)

    def forward(
        self,
        x: torch.Tensor,
        source: torch.Tensor | None,
        mask: torch.Tensor | None,
        cache: Cache | None = None,
        name: str = "",
        static: bool = False,
    ) -> torch.Tensor:
        """x (B, Tq, d) attends to ``source`` (B, Tk, d). With a cache: ``static`` keys (cross-attention) are
        computed once; otherwise the new keys/values are appended to the cached ones. mask (H|1, Tq, Tk')."""
        q = self._split(self.q_proj(x))  # (B, H, Tq, d/H)
        if cache is not None and static and f"{name}.k" in cache:
            k, v = cache[f"{name}.k"], cache[f"{name}.v"]
        else:
            assert source is not None
            k, v = self._split(self.k_proj(source)), self._split(self.v_proj(source))  # (B, H, Tk, d/H)
            if cache is not None and not static and f"{name}.k" in cache:
                k = torch.cat([cache[f"{name}.k"], k], dim=2)
                v = torch.cat([cache[f"{name}.v"], v], dim=2)
            if cache is not None:
                cache[f"{name}.k"], cache[f"{name}.v"] = k, v
        attn_mask = None if mask is None else mask.to(q.dtype)[None]  # (1, H|1, Tq, Tk)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, Tq, d/H)
        b, h, t, e = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(b, t, h * e))  # (B, Tq, d)


class DecoderLayer(nn.Module):
    """``nn.TransformerDecoderLayer`` (post-norm, ReLU) with cacheable attention."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = CachedAttention(dim, heads, dropout)
        self.cross_attn = CachedAttention(dim, heads, dropout)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, memory, self_mask, cross_mask, cache: Cache | None = None, name: str = ""):
        """x (B, T, d), memory (B, S, d) -> (B, T, d)"""
        x = self.norm1(x + self.drop(self.self_attn(x, x, self_mask, cache, f"{name}.self")))
        x = self.norm2(x + self.drop(self.cross_attn(x, memory, cross_mask, cache, f"{name}.cross", static=True)))
        return self.norm3(x + self.drop(self.ffn(x)))


class ARDecoder(nn.Module):
    """FaceFormer's decoder: periodic positional encoding at the input, biased causal self-attention,
    alignment-masked cross-attention to the memory (audio, or a partner's features).

    ``window`` (0 = unbounded) limits how far back self-attention reaches; the cross-attention band of
    query i is memory ``[i - before, i + after]``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn: int,
        layers: int,
        dropout: float,
        period: int,
        before: int = 0,
        after: int = 0,
        window: int = 0,
    ):
        super().__init__()
        self.heads, self.period, self.before, self.after, self.window = heads, period, before, after, window
        self.ppe = PeriodicPositionalEncoding(dim, period)
        self.layers = nn.ModuleList([DecoderLayer(dim, heads, ffn, dropout) for _ in range(layers)])

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: x (B, T, d) inputs (already shifted), memory (B, S, d) -> (B, T, d)"""
        t, s = x.shape[1], memory.shape[1]
        self_mask = causal_periodic_bias(self.heads, t, t, self.period, 0, self.window, x.device, x.dtype)
        cross_mask = band_mask(t, s, self.before, self.after, 0, x.device, x.dtype)[None]  # (1, T, S)
        x = self.ppe(x)
        for layer in self.layers:
            x = layer(x, memory, self_mask, cross_mask)
        return x

    def step(self, x: torch.Tensor, memory: torch.Tensor, position: int, cache: Cache) -> torch.Tensor:
        """One position: x (B, 1, d) is the input at ``position``; the cache holds the earlier positions' keys
        and values (the last ``window - 1`` with a window: constant memory) and the memory's. -> (B, 1, d)"""
        s = memory.shape[1]
        seen = position if not self.window else min(position, self.window - 1)  # cached positions
        self_mask = causal_periodic_bias(
            self.heads, 1, position + 1, self.period, position, self.window, x.device, x.dtype
        )[..., position - seen :]  # (H, 1, seen + 1)
        cross_mask = band_mask(1, s, self.before, self.after, position, x.device, x.dtype)[None]  # (1, 1, S)
        x = x + self.ppe.pe[position % self.period].to(x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, self_mask, cross_mask, cache, f"l{i}")
        if self.window:
            keep = self.window - 1
            for key in [k for k in cache if k.endswith(".self.k") or k.endswith(".self.v")]:
                cache[key] = cache[key][:, :, max(0, cache[key].shape[2] - keep) :]
        return x


# ----------------------------------------------------------------------------------------------------
# the motion VQ-VAE


class VectorQuantizer(nn.Module):
    """A codebook of ``size`` vectors of ``dim`` (van den Oord et al.): nearest code, straight-through
    gradient, codebook + ``beta`` x commitment loss (as CodeTalker's and Learning2Listen's quantizers)."""

    def __init__(self, size: int, dim: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.codebook = nn.Embedding(size, dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / size, 1.0 / size)

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (...) index of the nearest code."""
        e = self.codebook.weight.detach()  # (K, C)
        flat = z.detach().reshape(-1, z.shape[-1])  # (N, C)
        dist = flat.square().sum(1, keepdim=True) - 2 * flat @ e.t() + e.square().sum(1)[None]  # (N, K)
        return dist.argmin(1).view(z.shape[:-1])

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """(...) -> (..., C)"""
        return self.codebook(idx)

    def forward(self, z: torch.Tensor, frozen: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., C) -> (quantized with a straight-through gradient (..., C), codebook loss, indices (...)).
        ``frozen``: the codebook gets no gradient (a trained stage 1)."""
        idx = self.indices(z)
        zq = self.lookup(idx)
        if frozen:
            zq = zq.detach()
        loss = F.mse_loss(zq, z.detach()) + self.beta * F.mse_loss(zq.detach(), z)
        return z + (zq - z).detach(), loss, idx


class ConvBlock(nn.Module):
    """Conv1d over time (kernel 5, replicate padding, stride 1 or 2) + LeakyReLU(0.2) + LayerNorm over
    channels (CodeTalker and Learning2Listen normalise per instance / batch; LayerNorm also works on one
    frame, which autoregressive decoding needs). (B, T, C) -> (B, T / stride, C)"""

    def __init__(self, dim: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 5, stride=stride, padding=2, padding_mode="replicate")
        self.act = nn.LeakyReLU(0.2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.act(self.conv(x.transpose(1, 2)).transpose(1, 2)))


class UpBlock(nn.Module):
    """Twice the frames: nearest upsampling, then a :class:`ConvBlock`. (B, T, C) -> (B, 2T, C)"""

    def __init__(self, dim: int):
        super().__init__()
        self.block = ConvBlock(dim)

    def forward(self, x):
        return self.block(x.repeat_interleave(2, dim=1))


def _encoder(dim: int, heads: int, ffn: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, ffn, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class MotionVQVAE(nn.Module):
    """Motion -> discrete codes -> motion. (B, T, D) <-> (B, T / 2^quant_factor, codes_per_frame) indices.

    Encoder: linear map + LeakyReLU, a convolution block, ``quant_factor`` strided blocks (each halves the
    frame rate: Learning2Listen's 8 frames per code is 3), periodic positions + a transformer encoder, a
    linear map to ``codes_per_frame`` x ``code_dim`` (CodeTalker's ``face_quan_num`` codes per frame). The
    decoder mirrors it. ``window`` (frames, 0 = the whole sequence): motion is coded in independent windows
    of this length (Learning2Listen's 32 frames), padded at the end by repeating the last frame.
    """

    def __init__(
        self,
        motion_dim: int,
        hidden: int,
        heads: int,
        ffn: int,
        layers: int,
        dropout: float,
        period: int,
        codebook_size: int,
        code_dim: int,
        codes_per_frame: int = 1,
        quant_factor: int = 0,
        window: int = 0,
    ):
        super().__init__()
        self.codes_per_frame, self.code_dim, self.window = codes_per_frame, code_dim, window
        self.frames_per_code = 2**quant_factor
        self.enc_in = nn.Sequential(nn.Linear(motion_dim, hidden), nn.LeakyReLU(0.2))
        self.enc_conv = nn.Sequential(ConvBlock(hidden), *[ConvBlock(hidden, 2) for _ in range(quant_factor)])
        self.enc_ppe = PeriodicPositionalEncoding(hidden, period)
        self.encoder = _encoder(hidden, heads, ffn, layers, dropout)
        self.enc_out = nn.Linear(hidden, codes_per_frame * code_dim)
        self.quantizer = VectorQuantizer(codebook_size, code_dim)
        self.dec_in = nn.Linear(codes_per_frame * code_dim, hidden)
        self.dec_conv = nn.Sequential(*[UpBlock(hidden) for _ in range(quant_factor)], ConvBlock(hidden))
        self.dec_ppe = PeriodicPositionalEncoding(hidden, period)
        self.decoder = _encoder(hidden, heads, ffn, layers, dropout)
        self.dec_out = nn.Linear(hidden, motion_dim)

    # --- windows ---

    def padded_length(self, t: int) -> int:
        unit = self.window or self.frames_per_code
        return -(-t // unit) * unit

    def _windows(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B * n, W, D), T padded to a multiple of the window by repeating the last frame."""
        b, t, d = y.shape
        total = self.padded_length(t)
        if total > t:
            y = torch.cat([y, y[:, -1:].expand(b, total - t, d)], dim=1)
        w = self.window or total
        return y.reshape(b * (total // w), w, d)

    # --- encoder / decoder ---

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, D) motion -> continuous codes (B, T', N, C), T' = padded T / frames_per_code."""
        b = y.shape[0]
        x = self._windows(y)  # (B n, W, D)
        x = self.enc_conv(self.enc_in(x))  # (B n, W / P, h)
        x = self.enc_out(self.encoder(self.enc_ppe(x)))  # (B n, W / P, N C)
        return x.reshape(b, -1, self.codes_per_frame, self.code_dim)  # (B, T', N, C)

    def decode(self, zq: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """(B, T', N, C) quantized codes -> (B, T' P, D) motion (cut to ``frames``)."""
        b, tq = zq.shape[:2]
        x = zq.reshape(b, tq, -1)  # (B, T', N C)
        if self.window:
            per = self.window // self.frames_per_code
            x = x.reshape(b * (tq // per), per, x.shape[-1])  # (B n, W / P, N C)
        x = self.dec_conv(self.dec_in(x))  # (B n, W, h)
        x = self.dec_out(self.decoder(self.dec_ppe(x)))  # (B n, W, D)
        x = x.reshape(b, -1, x.shape[-1])  # (B, T' P, D)
        return x if frames is None else x[:, :frames]

    def quantize(self, z: torch.Tensor, frozen: bool = False):
        """(B, T', N, C) -> (quantized (B, T', N, C), loss, indices (B, T', N))"""
        return self.quantizer(z, frozen)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: (B, T, D) -> (reconstruction (B, T, D), codebook + commitment loss)."""
        zq, loss, _ = self.quantize(self.encode(y))
        return self.decode(zq, y.shape[1]), loss

    def codes(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> code indices (B, T', N)"""
        return self.quantizer.indices(self.encode(y))

    def decode_indices(self, idx: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """(B, T', N) indices -> (B, T' P, D) motion"""
        return self.decode(self.quantizer.lookup(idx), frames)


@contextlib.contextmanager
def frozen(module: nn.Module):
    """For the duration, ``module``'s weights get no gradient (gradients still reach its inputs): a trained
    stage used inside the next one, as CodeTalker and Learning2Listen freeze their VQ-VAE in stage 2."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class BaselineModel(MotionModel):
    """A comparison baseline: ``forward(self_audio, partner_audio, partner_motion)`` -> (B, T, D) motion at
    inference, as :class:`~dualtalk.model.dualtalk.DualTalk`; in training ``forward(..., target=, step=)`` ->
    (prediction (B, T, D), extra loss or None): the engine adds its motion loss on the prediction.

    Stages (``stages`` > 1: a codebook stage, then the predictor) are steps of one run: stage 1 for the first
    ``baseline.stage1_steps`` optimizer steps (none when ``baseline.stage1_from`` gives a trained stage 1).
    """

    #: the engine passes the target (teacher forcing, codebook stages) and the step
    learns_from_target = True
    stages = 1

    def stage(self, step: int) -> int:
        """1-based stage of the optimizer step ``step``."""
        if self.stages == 1 or self.config.baseline.stage1_from or step >= self.config.baseline.stage1_steps:
            return self.stages
        return 1

    def final_stage(self, step: int) -> bool:
        """Whether validation at ``step`` measures the finished model (else a stage whose model is not the
        one kept: it is not compared for ``best/``)."""
        return self.stage(step) == self.stages

    def validation_needs_target(self, step: int) -> bool:
        """Validation of an earlier stage runs that stage's computation (it needs the target)."""
        return not self.final_stage(step)

    def stage1_state(self) -> dict[str, torch.Tensor]:
        """The weights of stage 1 (what ``baseline.stage1_from`` loads into a new run): the VQ-VAE's."""
        return {k: v for k, v in self.state_dict().items() if k.startswith("vq.")}

    def prepare_training(self) -> None:
        """Load what only training needs (SelfTalk's recognizer); nothing by default."""

    def speaker_frames(
        self, self_audio: torch.Tensor | None, partner_audio, partner_motion, audio_features
    ) -> tuple[torch.Tensor, int]:
        """-> (the person's audio, the frame count) for a baseline that animates from the person's own audio
        (FaceFormer, CodeTalker, SelfTalk): one error line without that audio, or with precomputed features
        (these baselines have no feature cache)."""
        if audio_features is not None or self_audio is None:
            raise DualTalkError(f"{self.config.variant} needs the person's audio (it has no feature cache)")
        return self_audio, self.frames_of(self_audio, partner_audio, partner_motion)

    def frames_of(self, self_audio, partner_audio, partner_motion) -> int:
        from ...layout import frames_for

        if partner_motion is not None:
            return partner_motion.shape[1]
        wave = self_audio if self_audio is not None else partner_audio
        return frames_for(wave.shape[1], self.config.sample_rate, self.config.fps)


def faceformer_decoder(cfg) -> ARDecoder:
    """FaceFormer's decoder at ``cfg``'s size (FaceFormer and CodeTalker's stage 2): periodic ALiBi over the
    past, alignment cross-attention of half-width ``alignment_window`` over the audio."""
    return ARDecoder(
        cfg.feature_dim,
        cfg.num_heads,
        cfg.ffn_dim,
        cfg.decoder_layers,
        cfg.dropout,
        cfg.bias_period,
        before=cfg.alignment_window,
        after=cfg.alignment_window,
    )


def init_zero(layer: nn.Linear) -> nn.Linear:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def ctc_targets(logits: torch.Tensor, blank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A recognizer's greedy transcript as CTC targets: argmax per frame, repeats merged, blanks dropped (what
    decoding to text and tokenising again gives). logits (B, S, V) -> (targets (B, L) padded with blank,
    lengths (B,))"""
    ids = logits.argmax(-1)  # (B, S)
    seqs = []
    for row in ids:
        merged = torch.unique_consecutive(row)
        seqs.append(merged[merged != blank])
    length = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), max(1, int(length.max()) if len(seqs) else 1)), blank, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out.to(logits.device), length
