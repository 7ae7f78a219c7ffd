"""The training objective (the released one by default), with masks.

    loss = w_exp MSE(exp) + w_jaw MSE(jaw) + w_pose MSE(pose = global/head rotation) + w_vel MSE(velocity)

each MSE a mean over the valid (unmasked) frames and the dimensions of that part; velocity is the
difference of consecutive frames, over pairs of valid frames. When the model normalises motion, errors are
divided by the training-set std first (``loss.normalized``), so every dimension counts alike.

The parts are the groups of the model's motion layout (:mod:`dualtalk.layout`): ``exp``, ``jaw``, ``pose``
for FLAME (above), ``mouth``, ``upper``, ``pose`` for ARKit, each weighted by the ``loss`` setting of its name.

:func:`motion_errors` returns sums and counts rather than means so that validation can add them up over
batches and processes before dividing.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..config import LossConfig
from ..layout import GROUPS, group_width

#: the loss's parts of the FLAME layout, model-order column slices (:data:`dualtalk.layout.GROUPS`: "pose" is
#: the head rotation); a layout's own: ``get_layout(name).groups``
PARTS = GROUPS
NAMES = ("exp", "jaw", "pose", "velocity")


def loss_names(groups: Mapping[str, slice | list[int]] = GROUPS) -> tuple[str, ...]:
    """The names of the loss's parts for a layout's groups: the groups, then ``velocity``."""
    return (*groups, "velocity")


def motion_errors(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    std: torch.Tensor | None = None,
    groups: Mapping[str, slice | list[int]] = GROUPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """pred, target (B, T, D), mask (B, T) -> (sums of squared errors (G+1,), counts (G+1,)) for
    :func:`loss_names` of ``groups`` (FLAME's: NAMES)."""
    diff = pred.float() - target.float()  # (B, T, D)
    if std is not None:
        diff = diff / std  # (B, T, D)
    m = mask.to(diff.dtype)  # (B, T)
    sq = diff.square()  # (B, T, D)
    sums, counts = [], []
    for part in groups.values():
        width = group_width(part, diff.shape[-1])
        sums.append((sq[..., part].sum(-1) * m).sum())
        counts.append(m.sum() * width)
    vel = diff[:, 1:] - diff[:, :-1]  # (B, T-1, D) = pred velocity - target velocity
    mv = m[:, 1:] * m[:, :-1]  # (B, T-1)
    sums.append((vel.square().sum(-1) * mv).sum())
    counts.append(mv.sum() * diff.shape[-1])
    return torch.stack(sums), torch.stack(counts)


def weights(cfg: LossConfig, device=None, groups: Mapping[str, slice | list[int]] = GROUPS) -> torch.Tensor:
    """(G+1,) the loss weights of ``groups`` (by name, from ``cfg``) and of the velocity."""
    return torch.tensor([getattr(cfg, g) for g in loss_names(groups)], dtype=torch.float32, device=device)


def combine(sums: torch.Tensor, counts: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (weighted total, the MSE of each part (G+1,)). Parts without a valid element count as 0."""
    mse = sums / counts.clamp_min(1)  # (G+1,)
    return (w * mse).sum(), mse
