"""The comparison baselines as modules: cached autoregressive inference equals the teacher-forced pass,
codebooks round-trip motion, bad configs are one error line."""

from __future__ import annotations

import pytest
import torch

from dualtalk.model.baselines.common import ARDecoder, causal_periodic_bias
from dualtalk.model.dualtalk import build_model
from dualtalk.model.presets import get_preset


def _tiny(name: str, *overrides: str):
    torch.manual_seed(0)
    return build_model(get_preset(f"tiny-{name}", ["dropout=0.0", *overrides])).eval()


def test_causal_periodic_bias_is_faceformers():
    bias = causal_periodic_bias(4, 6, 6, period=2)  # (H, T, T)
    slope = bias[0, 5, 2] / -1.0  # floor((5 - 2) / 2) = 1
    assert bias[0, 5, 5] == 0 and bias[0, 5, 4] == 0 and torch.isclose(bias[0, 5, 3], -slope)
    assert torch.isclose(bias[0, 5, 0], -2 * slope)
    assert torch.isinf(bias[:, 2, 3]).all()  # no future


@pytest.mark.parametrize("window", [0, 3])
def test_decoder_step_with_cache_equals_the_whole_sequence(window):
    torch.manual_seed(1)
    dec = ARDecoder(16, 4, 32, 2, 0.0, period=5, before=1, after=2, window=window).eval()
    x, memory = torch.randn(2, 12, 16), torch.randn(2, 12, 16)
    with torch.no_grad():
        whole = dec(x, memory)  # (B, T, d)
        cache: dict = {}
        steps = torch.cat([dec.step(x[:, t : t + 1], memory, t, cache) for t in range(12)], dim=1)
    torch.testing.assert_close(steps, whole, atol=1e-5, rtol=1e-5)
    if window:
        assert cache["l0.self.k"].shape[2] == window - 1  # constant memory


def test_faceformer_autoregressive_with_cache_equals_teacher_forced():
    model = _tiny("faceformer")
    for p in model.motion_map_r.parameters():  # the output map starts at zero: give the loop something to feed back
        torch.nn.init.normal_(p, std=0.3)
    audio = torch.randn(2, 640 * 30)
    with torch.no_grad():
        memory = model.encode_audio(audio, 30)  # (B, T, d)
        cached = model.generate(memory, 30, cache=True)  # (B, T, 56) model units
        uncached = model.generate(memory, 30, cache=False)
        forced = model.teacher_forced(memory, cached)  # the same frames as ground truth
        out = model(audio, None, None)  # data units
        again, extra = model(audio, None, None, target=out)
    assert cached.abs().mean() > 0.1  # not the trivial zero output
    torch.testing.assert_close(cached, uncached, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(forced, cached, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(again, out, atol=1e-5, rtol=1e-4)
    assert extra is None and out.shape == (2, 30, 56)


def test_faceformer_uses_only_its_own_audio():
    model = _tiny("faceformer")
    assert not any(n.startswith("partner") for n, _ in model.named_parameters())
    assert model.config.needs_partner_motion is False
