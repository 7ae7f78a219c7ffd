"""The training objective (the released one by default), with masks.

    loss = w_exp MSE(exp) + w_jaw MSE(jaw) + w_pose MSE(pose = global/head rotation) + w_vel MSE(velocity)

each MSE a mean over the valid (unmasked) frames and the dimensions of that part; velocity is the
difference of consecutive frames, over pairs of valid frames. When the model normalises motion, errors are
divided by the training-set std first (``loss.normalized``), so every dimension counts alike.

:func:`motion_errors` returns sums and counts rather than means so that validation can add them up over
batches and processes before dividing.
"""

from __future__ import annotations

import torch

from ..config import LossConfig
from ..layout import GROUPS

#: the loss's parts, model-order column slices (:data:`dualtalk.layout.GROUPS`: "pose" is the head rotation)
PARTS = GROUPS
NAMES = ("exp", "jaw", "pose", "velocity")


def motion_errors(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, std: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """pred, target (B, T, 56), mask (B, T) -> (sums of squared errors (4,), counts (4,)) for NAMES."""
    diff = pred.float() - target.float()  # (B, T, 56)
    if std is not None:
        diff = diff / std  # (B, T, 56)
    m = mask.to(diff.dtype)  # (B, T)
    sq = diff.square()  # (B, T, 56)
    sums, counts = [], []
    for part in PARTS.values():
        width = part.stop - part.start
        sums.append((sq[..., part].sum(-1) * m).sum())
        counts.append(m.sum() * width)
    vel = diff[:, 1:] - diff[:, :-1]  # (B, T-1, 56) = pred velocity - target velocity
    mv = m[:, 1:] * m[:, :-1]  # (B, T-1)
    sums.append((vel.square().sum(-1) * mv).sum())
    counts.append(mv.sum() * diff.shape[-1])
    return torch.stack(sums), torch.stack(counts)


def weights(cfg: LossConfig, device=None) -> torch.Tensor:
    return torch.tensor([cfg.exp, cfg.jaw, cfg.pose, cfg.velocity], dtype=torch.float32, device=device)  # (4,)


def combine(sums: torch.Tensor, counts: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (weighted total, the four MSEs (4,)). Parts without a valid element count as 0."""
    mse = sums / counts.clamp_min(1)  # (4,)
    return (w * mse).sum(), mse
