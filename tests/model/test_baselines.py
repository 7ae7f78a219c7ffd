"""The comparison baselines as modules: cached autoregressive inference equals the teacher-forced pass,
codebooks round-trip motion, bad configs are one error line."""

from __future__ import annotations

import pytest
import torch

from dualtalk.errors import DualTalkError
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


@pytest.mark.parametrize("window", [0, 3, 5])
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


@pytest.mark.parametrize("name", ["codetalker", "learning2listen"])
def test_codebook_round_trips_motion(name):
    """The VQ-VAE of stage 1, fitted on two 64-frame sequences for 300 steps, codes and decodes them with an
    error below 30 % of their variance (Learning2Listen: 8 frames per code, 32-frame windows)."""
    model = _tiny(name)
    t = torch.linspace(0, 6.28, 64)
    y = torch.stack([torch.sin(t * (k % 5 + 1) + k) for k in range(56)], -1)[None].repeat(2, 1, 1)  # (2, 64, 56)
    y[1] = -y[1]
    opt = torch.optim.Adam(model.vq.parameters(), 3e-3)
    model.train()
    for _ in range(300):
        rec, loss = model.vq(y)
        total = (rec - y).square().mean() + loss
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        codes = model.vq.codes(y)  # (B, T', N)
        back = model.vq.decode_indices(codes, 64)
    assert codes.shape == ((2, 64, 1) if name == "codetalker" else (2, 8, 1))
    assert float((back - y).square().mean() / y.var()) < 0.3


def test_learning2listen_cached_generation_equals_teacher_forced():
    model = _tiny("learning2listen")
    torch.nn.init.normal_(model.code_logits.weight, std=1.0)  # a code sequence that is not constant
    audio, motion = torch.randn(2, 640 * 70), torch.randn(2, 70, 56)
    with torch.no_grad():
        memory = model.speaker_features(audio, motion, 70, model.vq.padded_length(70))  # (B, 12, d): 96 frames
        codes = model.generate_codes(memory)  # (B, 12)
        logits = model.predict_codes(memory, codes)
        out = model(None, audio, motion)
    assert memory.shape[1] == 12 and len(codes[0].unique()) > 1
    assert torch.equal(logits.argmax(-1), codes)
    assert out.shape == (2, 70, 56)


def test_learning2listen_sees_no_speaker_future_beyond_its_patch():
    model = _tiny("learning2listen")
    audio, motion = torch.randn(1, 640 * 64), torch.randn(1, 64, 56)
    later = motion.clone()
    later[:, 40:] += 1.0  # frames of code 5 onwards
    with torch.no_grad():
        a = model.speaker_features(audio, motion, 64, 64)
        b = model.speaker_features(audio, later, 64, 64)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5], b[:, 5])


def test_codetalker_stage_two_leaves_the_codebook_alone():
    model = _tiny("codetalker").train()
    audio, target = torch.randn(2, 640 * 20), torch.randn(2, 20, 56)
    pred, loss = model(audio, None, None, target=target, step=model.config.baseline.stage1_steps)
    (pred.square().mean() + loss).backward()
    assert all(p.grad is None for p in model.vq.parameters())
    assert model.feat_map.weight.grad is not None and model.feat_map.weight.grad.abs().sum() > 0
    pred, loss = model(audio, None, None, target=target, step=0)  # stage 1: the VQ-VAE
    assert pred.shape == (2, 20, 56) and loss.requires_grad


@pytest.mark.parametrize(
    "name, override, words",
    [
        ("codetalker", "baseline.codebook_size=0", "baseline.codebook_size must be >= 1, got 0"),
        ("learning2listen", "baseline.vq_window=20", "not a multiple of the frames per code"),
        ("codetalker", "baseline.stage1_steps=0", "trains its codebook first"),
    ],
)
def test_bad_baseline_configs_are_one_error_line(name, override, words):
    with pytest.raises(DualTalkError) as err:
        get_preset(f"tiny-{name}", [override])
    assert words in str(err.value) and "\n" not in str(err.value)


def test_faceformer_trains_autoregressively_with_gradients_through_the_loop():
    """``baseline.teacher_forcing=false``, FaceFormer's own training loop: the target is not fed in (the
    prediction is the autoregressive one, whatever the target), and the loss reaches the input map only
    through the fed-back frames."""
    model = _tiny("faceformer", "baseline.teacher_forcing=false").train()
    for p in model.motion_map_r.parameters():
        torch.nn.init.normal_(p, std=0.3)
    audio = torch.randn(2, 640 * 12)
    with torch.no_grad():
        free = model(audio, None, None)
    pred, _ = model(audio, None, None, target=torch.randn(2, 12, 56))
    torch.testing.assert_close(pred, free, atol=1e-5, rtol=1e-4)  # dropout 0: the same loop
    pred.square().mean().backward()
    assert model.motion_map.weight.grad is not None and model.motion_map.weight.grad.abs().sum() > 0
    with pytest.raises(DualTalkError, match="baseline.teacher_forcing=false is FaceFormer's"):
        _tiny("codetalker", "baseline.teacher_forcing=false")
