"""The objective: released terms, weights, masks, normalised space."""

from __future__ import annotations

import torch

from dualtalk.config import LossConfig
from dualtalk.train.loss import combine, motion_errors, weights


def test_released_objective_without_mask():
    g = torch.Generator().manual_seed(0)
    pred, gt = torch.randn(2, 9, 56, generator=g), torch.randn(2, 9, 56, generator=g)
    sums, counts = motion_errors(pred, gt, torch.ones(2, 9, dtype=torch.bool))
    total, mse = combine(sums, counts, weights(LossConfig()))
    mse_fn = torch.nn.functional.mse_loss
    ref = [
        mse_fn(pred[..., :50], gt[..., :50]),
        mse_fn(pred[..., 50:53], gt[..., 50:53]),
        mse_fn(pred[..., 53:], gt[..., 53:]),
        mse_fn(pred[:, 1:] - pred[:, :-1], gt[:, 1:] - gt[:, :-1]),
    ]
    assert torch.allclose(mse, torch.stack(ref), atol=1e-6)
    assert torch.isclose(total, sum(ref), atol=1e-5)
    total2, _ = combine(sums, counts, weights(LossConfig(exp=2.0, velocity=0.0)))
    assert torch.isclose(total2, 2 * ref[0] + ref[1] + ref[2], atol=1e-5)


def test_masked_frames_carry_no_loss_and_std_normalises():
    pred, gt = torch.zeros(1, 6, 56), torch.zeros(1, 6, 56)
    pred[:, 4:] = 100.0  # garbage in the padded frames
    pred[:, :4, 0] = 2.0
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    sums, counts = motion_errors(pred, gt, mask)
    _, mse = combine(sums, counts, weights(LossConfig()))
    assert torch.isclose(mse[0], torch.tensor(4.0 / 50)) and mse[1] == 0 and mse[3] == 0
    std = torch.full((56,), 2.0)
    _, mse_n = combine(*motion_errors(pred, gt, mask, std), weights(LossConfig()))
    assert torch.isclose(mse_n[0], mse[0] / 4)
    # an all-masked batch gives 0, not NaN
    _, mse0 = combine(*motion_errors(pred, gt, torch.zeros_like(mask)), weights(LossConfig()))
    assert torch.equal(mse0, torch.zeros(4))
