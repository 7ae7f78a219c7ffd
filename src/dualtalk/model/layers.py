"""Attention biases and positional information for the ``paper`` variant (after FaceFormer).

FaceFormer (Fan et al., CVPR 2022) biases attention in two ways, and DualTalk's paper names its
"modal alignment attention" after it:
- a *temporal bias*: each head h penalises attention to frames further away, in steps of a period p,
  ``bias[h, i, j] = -m_h * floor(|i - j| / p)`` with ALiBi's geometric slopes ``m_h``. FaceFormer's is
  causal (it decodes autoregressively); DualTalk generates the whole dialogue at once from both people's
  full audio, so ours is symmetric (no future mask);
- an *alignment bias*: in the decoder's cross-attention, query frame i may attend only to memory frames
  aligned with it (FaceFormer's BIWI setting: the diagonal). We allow a band ``|i - j| <= window``.
- *periodic positional encoding* (PPE): sinusoidal encoding repeated with period p.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi head slopes (Press et al. 2022), as FaceFormer uses them. (H,)"""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(num_heads).is_integer():
        slopes = power_of_two(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def temporal_bias(num_heads: int, length: int, period: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Symmetric periodic linear bias. (H, T, T), added to attention logits."""
    pos = torch.arange(length, device=device)
    dist = (pos[None, :] - pos[:, None]).abs().div(period, rounding_mode="floor")  # (T, T)
    slopes = alibi_slopes(num_heads).to(device=device)  # (H,)
    return (-slopes[:, None, None] * dist[None]).to(dtype)  # (H, T, T)


def alignment_mask(length_q: int, length_k: int, window: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Additive mask allowing |i - j| <= window only (0 inside the band, -inf outside). (Tq, Tk)"""
    i = torch.arange(length_q, device=device)[:, None]
    j = torch.arange(length_k, device=device)[None, :]
    mask = torch.zeros(length_q, length_k, device=device, dtype=dtype)
    return mask.masked_fill((i - j).abs() > window, float("-inf"))


class PeriodicPositionalEncoding(nn.Module):
    """Sinusoidal positional encoding repeated every ``period`` frames (FaceFormer's PPE)."""

    def __init__(self, dim: int, period: int):
        super().__init__()
        pos = torch.arange(period, dtype=torch.float32)[:, None]  # (P, 1)
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (D/2,)
        pe = torch.zeros(period, dim)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.pe: torch.Tensor
        self.register_buffer("pe", pe, persistent=False)  # (P, D)
        self.period = period

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)"""
        t = x.shape[1]
        reps = -(-t // self.period)
        pe = self.pe.repeat(reps, 1)[:t]  # (T, D)
        return x + pe.to(x.dtype)[None]
