"""The model's variants, presets, encoders and checkpoints (tiny presets, generated inputs)."""

from __future__ import annotations

import json

import pytest
import torch

from dualtalk.config import DualTalkConfig, apply_overrides, from_dict, to_dict
from dualtalk.errors import DualTalkError
from dualtalk.model.checkpoint import load_model, save_model
from dualtalk.model.dualtalk import DualTalk
from dualtalk.model.layers import alignment_mask, temporal_bias
from dualtalk.model.presets import get_preset, list_presets

T = 40
S = T * 640


def inputs(seed=0, b=1):
    g = torch.Generator().manual_seed(seed)
    return (
        0.1 * torch.randn(b, S, generator=g),
        0.1 * torch.randn(b, S, generator=g),
        torch.randn(b, T, 56, generator=g),
    )


def test_presets_build_and_run():
    for name in ("tiny", "tiny-mel", "speaker_only", "listener_only", "small"):
        model = DualTalk(get_preset(name)).eval()
        with torch.inference_mode():
            y = model(*inputs())
        assert y.shape == (1, T, 56) and torch.isfinite(y).all(), name
    assert {"released", "paper", "tiny"} <= set(list_presets())


def test_tiny_forward_is_fast_enough_to_use_in_every_test():
    # behaviour, not a benchmark: the tiny preset really is tiny
    model = DualTalk(get_preset("tiny"))
    assert model.num_parameters() < 200_000


def test_output_length_follows_self_audio():
    model = DualTalk(get_preset("tiny")).eval()
    a, b, m = inputs()
    with torch.inference_mode():
        y = model(a[:, : S - 100], b[:, : S - 100], m)  # ceil((S-100)/640) == T
    assert y.shape[1] == T
    with pytest.raises(DualTalkError, match="partner motion has 40 frames"):
        model(a[:, : S - 700], b[:, : S - 700], m)


def test_paper_variant_differs_where_it_should():
    torch.manual_seed(0)
    released = DualTalk(get_preset("tiny")).eval()
    paper = DualTalk(apply_overrides(get_preset("tiny"), ["variant=paper"])).eval()
    # same parameters (the paper variant adds no weights: biases and PPE are fixed)
    assert set(released.state_dict()) == set(paper.state_dict())
    paper.load_state_dict(released.state_dict())
    x = inputs()
    with torch.inference_mode():
        y_r, i_r = released(*x, return_intermediates=True)
        y_p, i_p = paper(*x, return_intermediates=True)
    # the encoders are shared; the aligned cross-attention, the interaction module and synthesis differ
    for key in ("audio_feat_self", "audio_feat_partner", "partner_motion_feat"):
        torch.testing.assert_close(i_r[key], i_p[key])
    assert (i_r["temporal_feat"] - i_p["temporal_feat"]).abs().max() > 1e-3
    assert (i_r["interaction_feat"] - i_p["interaction_feat"]).abs().max() > 1e-3
    assert (y_r - y_p).abs().max() > 1e-3


def test_paper_cross_attention_keeps_the_partner_motion_timing():
    torch.manual_seed(0)
    a, b, m = inputs()
    moved = m.clone()
    moved[:, [3, 30]] = moved[:, [30, 3]]  # swap two frames of the partner's motion
    for variant, local in (("released", False), ("paper", True)):
        model = DualTalk(apply_overrides(get_preset("tiny"), [f"variant={variant}"])).eval()
        outputs = []
        model.temporal_enhancer.cross_attention.register_forward_hook(lambda mod, i, o, out=outputs: out.append(o[0]))
        with torch.inference_mode():
            model(a, b, m)
            model(a, b, moved)
        changed = (outputs[0] - outputs[1]).abs().amax(dim=-1)[0] > 1e-6  # (T,) frames whose output changed
        if local:  # only the two swapped frames change
            assert changed.nonzero().flatten().tolist() == [3, 30]
        else:  # a permutation of the keys changes nothing: the timing is lost
            assert not changed.any()


def test_paper_modulation_is_sigmoid_gated():
    cfg = apply_overrides(get_preset("tiny"), ["variant=paper", "modulation_alpha=0.5"])
    model = DualTalk(cfg).eval()
    syn = model.synthesis_module
    captured = {}
    syn.blendshape_predictor.register_forward_hook(lambda m, i, o: captured.setdefault("in", i[0]))
    syn.synthesis_decoder.register_forward_hook(lambda m, i, o: captured.setdefault("d", o))
    with torch.inference_mode():
        model(*inputs())
    delta = captured["in"] - captured["d"]  # = alpha * sigmoid(...) in (0, alpha)
    assert delta.min() > 0 and delta.max() < 0.5


def test_alignment_bias_shapes_and_values():
    bias = temporal_bias(4, 60, 25)
    assert bias.shape == (4, 60, 60)
    assert bias[:, 0, 0].abs().max() == 0 and (bias[:, 0, 24] == 0).all() and (bias[:, 0, 25] < 0).all()
    torch.testing.assert_close(bias, bias.transpose(1, 2))  # symmetric: whole dialogue is available
    mask = alignment_mask(5, 5, 1)
    assert torch.isinf(mask[0, 2]) and mask[0, 1] == 0 and mask[2, 3] == 0


def test_paper_variant_trains_one_step():
    torch.manual_seed(0)
    model = DualTalk(apply_overrides(get_preset("tiny"), ["variant=paper"])).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    a, b, m = inputs(b=2)
    target = torch.randn(2, T, 56)
    loss = torch.nn.functional.mse_loss(model(a, b, m), target)
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    before = model.synthesis_module.modulation_layer.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.synthesis_module.modulation_layer.weight)


def test_baseline_presets_ignore_switched_off_inputs():
    model = DualTalk(get_preset("speaker_only")).eval()
    a, b, m = inputs()
    with torch.inference_mode():
        y1 = model(a, b, m)
        y2 = model(a, torch.randn_like(b), torch.randn_like(m))
    torch.testing.assert_close(y1, y2)
    assert not hasattr(model.joint_encoder, "audio_encoder2")
    model = DualTalk(get_preset("listener_only")).eval()
    with torch.inference_mode():
        torch.testing.assert_close(model(a, b, m), model(torch.randn_like(a), b, m))


def test_precomputed_audio_features_replace_the_encoders():
    """``audio_features`` (the training feature cache's path) gives exactly what the encoders would."""
    model = DualTalk(get_preset("tiny")).eval()
    a, b, m = inputs()
    t = m.shape[1]
    with torch.inference_mode():
        feats = (model.joint_encoder.audio_encoder1(a, t), model.joint_encoder.audio_encoder2(b, t))  # (B, T, H)
        torch.testing.assert_close(model(None, None, m, audio_features=feats), model(a, b, m))
        with pytest.raises(DualTalkError, match="partner audio features"):
            model(None, None, m, audio_features=(feats[0], None))
        with pytest.raises(DualTalkError, match="self audio features"):
            model(None, None, m, audio_features=(feats[0][:, :-1], feats[1]))
    speaker_only = DualTalk(get_preset("speaker_only")).eval()  # a switched-off input needs no features
    with torch.inference_mode():
        f1 = speaker_only.joint_encoder.audio_encoder1(a, t)
        torch.testing.assert_close(speaker_only(None, None, m, audio_features=(f1, None)), speaker_only(a, b, m))


def test_config_round_trip_and_strictness(tmp_path):
    cfg = apply_overrides(get_preset("tiny"), ["feature_dim=24", "audio_encoder.type=mel"])
    assert cfg.feature_dim == 24 and cfg.audio_encoder.type == "mel"
    assert from_dict(DualTalkConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg
    assert apply_overrides(cfg, ["modulation_alpha=1e-3"]).modulation_alpha == 0.001  # YAML 1.1 reads a string
    with pytest.raises(DualTalkError, match="unknown key"):
        apply_overrides(cfg, ["feature_dims=3"])
    with pytest.raises(DualTalkError, match="variant"):
        apply_overrides(cfg, ["variant=other"])


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    for preset in ("tiny", "tiny-mel"):
        model = DualTalk(get_preset(preset)).eval()
        if model.config.normalize_motion:
            model.set_motion_statistics(torch.arange(56.0), torch.full((56,), 2.0))
        save_model(model, tmp_path / preset, extra={"note": "test"})
        meta = json.loads((tmp_path / preset / "config.json").read_text())
        assert meta["format_version"] == 1 and meta["extra"] == {"note": "test"}
        # sections added later are left out where they do not apply: older versions still read the file
        assert "baseline" not in meta["model"] and "motion_layout" not in meta["model"]
        loaded = load_model(tmp_path / preset)
        assert loaded.config == model.config
        x = inputs()
        with torch.inference_mode():
            torch.testing.assert_close(model(*x), loaded(*x))


def test_pretrained_wav2vec2_from_local_directory(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from dualtalk.model.presets import TINY_WAV2VEC2

    torch.manual_seed(3)
    w2v = Wav2Vec2Model(Wav2Vec2Config(**TINY_WAV2VEC2))
    w2v.save_pretrained(tmp_path / "w2v")
    cfg = apply_overrides(get_preset("tiny"), [f"audio_encoder.pretrained={tmp_path / 'w2v'}"])
    model = DualTalk(cfg)
    for enc in (model.joint_encoder.audio_encoder1, model.joint_encoder.audio_encoder2):
        torch.testing.assert_close(
            enc.model.encoder.layers[0].attention.q_proj.weight, w2v.encoder.layers[0].attention.q_proj.weight
        )
    bad = apply_overrides(
        cfg, ["audio_encoder.wav2vec2.hidden_size=64", "audio_encoder.wav2vec2.num_attention_heads=4"]
    )
    with pytest.raises(DualTalkError, match="hidden_size"):
        DualTalk(bad)
    with pytest.raises(DualTalkError, match="cannot load pretrained"):
        DualTalk(apply_overrides(cfg, [f"audio_encoder.pretrained={tmp_path / 'nothing'}"]))


def test_hf_hub_ids_load_through_the_hub_client(tmp_path, monkeypatch):
    import huggingface_hub

    model = DualTalk(get_preset("tiny")).eval()
    save_model(model, tmp_path / "repo")
    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename))
        return str(tmp_path / "repo" / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    loaded = load_model("hf-hub:someone/dualtalk-tiny")
    assert calls == [("someone/dualtalk-tiny", "config.json"), ("someone/dualtalk-tiny", "model.safetensors")]
    x = inputs()
    with torch.inference_mode():
        torch.testing.assert_close(model(*x), loaded(*x))

    def offline(repo_id, filename, **kw):
        raise OSError("We couldn't connect to the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DualTalkError, match="hf-hub:someone/x: cannot download"):
        load_model("hf-hub:someone/x")

    def no_network(repo_id, filename, **kw):  # what the client raises offline with nothing cached
        raise huggingface_hub.errors.LocalEntryNotFoundError("An error happened while trying to locate the file " * 9)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    with pytest.raises(DualTalkError, match=r"cannot be reached \(offline\?\) and the model is not in the local cache"):
        load_model("hf-hub:someone/x")


def test_partner_voice_reaches_the_paper_model_only_with_the_enhancer_residual():
    """alignment_window 0 leaves one admissible key per query: softmax over one key is 1 whatever the query,
    so without the residual the partner's audio changes nothing; with it, it does."""
    a, b, m = inputs()
    other = 0.1 * torch.randn_like(b)
    for residual, reaches in ((False, False), (True, True)):
        torch.manual_seed(0)
        cfg = apply_overrides(get_preset("tiny"), ["variant=paper", f"enhancer_residual={str(residual).lower()}"])
        model = DualTalk(cfg).eval()
        with torch.inference_mode():
            change = (model(a, b, m) - model(a, other, m)).abs().max()
        assert (change > 1e-4) == reaches, (residual, float(change))


def test_paper_paths_start_as_the_path_free_model_and_carry_single_coefficients():
    torch.manual_seed(0)
    cfg = get_preset("tiny-mel", ["variant=paper"])
    assert cfg.motion_skip and cfg.temporal_kernel and cfg.enhancer_residual  # the preset's paths are on
    with_paths = DualTalk(cfg).eval()
    assert with_paths.joint_encoder.motion_skip.weight.abs().max() == 0  # zero-initialised: no change at first
    assert with_paths.temporal_enhancer.temporal_conv[1].weight.abs().max() == 0
    off = apply_overrides(cfg, ["motion_skip=false", "temporal_kernel=0"])
    without = DualTalk(off).eval()
    missing, unexpected = without.load_state_dict(with_paths.state_dict(), strict=False)
    assert not missing and sorted({k.split(".")[1] for k in unexpected}) == ["motion_skip", "temporal_conv"]
    a, b, m = inputs()
    with torch.inference_mode():
        torch.testing.assert_close(with_paths(a, b, m), without(a, b, m))
    # the skip maps every coefficient: once trained, one coefficient of the partner moves the features
    torch.nn.init.normal_(with_paths.joint_encoder.motion_skip.weight)
    moved = m.clone()
    moved[..., 41] += 1.0
    with torch.inference_mode():
        f1 = with_paths(a, b, m, return_intermediates=True)[1]["partner_motion_feat"]
        f2 = with_paths(a, b, moved, return_intermediates=True)[1]["partner_motion_feat"]
    assert ((f2 - f1).abs() > 1e-3).float().mean() > 0.5


def test_temporal_kernel_must_be_odd():
    with pytest.raises(DualTalkError, match="odd"):
        get_preset("tiny-mel", ["temporal_kernel=4"])


def test_temporal_lookahead_bounds_the_future_the_convolution_sees():
    """``temporal_lookahead=0``: the enhancer's convolution is causal; a change at frame t moves no earlier frame."""
    torch.manual_seed(0)
    model = DualTalk(get_preset("tiny-mel", ["variant=paper", "temporal_kernel=9", "temporal_lookahead=0"]))
    conv = model.temporal_enhancer.temporal_conv
    torch.nn.init.normal_(conv[1].weight)
    pad = model.temporal_enhancer.temporal_pad
    assert pad == (8, 0)
    x = torch.zeros(1, 20, conv[0].in_channels)  # (B, T, d)
    y0 = conv(torch.nn.functional.pad(x.transpose(1, 2), pad)).transpose(1, 2)
    x[:, 10] = 1.0
    y1 = conv(torch.nn.functional.pad(x.transpose(1, 2), pad)).transpose(1, 2)
    moved = (y1 - y0).abs().amax(-1)[0] > 1e-6  # (T,)
    assert not moved[:10].any() and moved[10:19].all() and not moved[19:].any()
    symmetric = DualTalk(get_preset("tiny-mel", ["variant=paper", "temporal_kernel=9"]))
    assert symmetric.temporal_enhancer.temporal_pad == (4, 4)
    for bad in ("temporal_lookahead=9", "temporal_lookahead=-2"):
        with pytest.raises(DualTalkError, match="temporal_lookahead"):
            get_preset("tiny-mel", ["variant=paper", "temporal_kernel=9", bad])


def test_mirror_path_starts_at_zero_and_maps_each_coefficient_to_itself_causally():
    """``mirror_kernel``: zero at first (the model without it); once trained, the partner's coefficient i at
    frame t moves only the output's coefficient i, at frames t .. t + k - 1; refused without normalisation."""
    torch.manual_seed(0)
    cfg = get_preset("tiny-mel", ["variant=paper", "normalize_motion=true", "mirror_kernel=5"])
    model = DualTalk(cfg).eval()
    without = DualTalk(apply_overrides(cfg, ["mirror_kernel=0"])).eval()
    missing, unexpected = without.load_state_dict(model.state_dict(), strict=False)
    assert not missing and sorted(unexpected) == [
        "mirror_path.mirror_filter.weight",
        "mirror_path.mirror_gate.bias",
        "mirror_path.mirror_gate.weight",
    ]
    a, b, m = inputs()
    with torch.inference_mode():
        torch.testing.assert_close(model(a, b, m), without(a, b, m))
        torch.nn.init.normal_(model.mirror_path.mirror_filter.weight)
        moved = m.clone()
        moved[:, 10, 41] += 1.0
        mirror = model.mirror_path
        h = torch.zeros(1, T, 2 * cfg.feature_dim)
        d = mirror(moved, h) - mirror(m, h)  # (1, T, 56)
    changed = d.abs() > 1e-6
    assert changed[0, 10:15, 41].all() and changed.sum() == 5  # coefficient 41, frames 10..14 only
    torch.testing.assert_close(d[0, 10:15, 41], 0.5 * model.mirror_path.mirror_filter.weight[41, 0].flip(0))
    opened = DualTalk(apply_overrides(cfg, ["mirror_gate_bias=2"])).eval()  # the gate starts at sigmoid(2)
    opened.mirror_path.mirror_filter.weight.data.copy_(model.mirror_path.mirror_filter.weight)
    with torch.inference_mode():
        d = opened.mirror_path(moved, h) - opened.mirror_path(m, h)
    torch.testing.assert_close(
        d[0, 10:15, 41], torch.sigmoid(torch.tensor(2.0)) * mirror.mirror_filter.weight[41, 0].flip(0)
    )
    assert not hasattr(DualTalk(get_preset("speaker_only", ["mirror_kernel=5"])), "mirror_path")  # no partner face
    with pytest.raises(DualTalkError, match="mirror_kernel needs normalize_motion"):
        get_preset("tiny-mel", ["variant=paper", "normalize_motion=false", "mirror_kernel=5"])


def test_audio_response_path_starts_at_zero_and_reads_only_the_partners_past_audio():
    """``audio_response_kernel``: zero at first (the model without it); once trained, the partner's audio
    features at frame t move every output coefficient at frames t .. t + k - 1 only; absent where the partner's
    audio is not an input, and inert there (``--reuse``)."""
    torch.manual_seed(0)
    cfg = get_preset("tiny-mel", ["variant=paper", "audio_response_kernel=5", "audio_response_channels=3"])
    model = DualTalk(cfg).eval()
    without = DualTalk(apply_overrides(cfg, ["audio_response_kernel=0"])).eval()
    missing, unexpected = without.load_state_dict(model.state_dict(), strict=False)
    assert not missing and sorted(unexpected) == [
        "audio_response_path.response_channels.bias",
        "audio_response_path.response_channels.weight",
        "audio_response_path.response_filter.weight",
        "audio_response_path.response_gate.bias",
        "audio_response_path.response_gate.weight",
    ]
    a, b, m = inputs()
    with torch.inference_mode():
        torch.testing.assert_close(model(a, b, m), without(a, b, m))
        path = model.audio_response_path
        torch.nn.init.normal_(path.response_filter.weight)
        feats = torch.randn(1, T, cfg.feature_dim)
        moved = feats.clone()
        moved[:, 10] += 1.0
        h = torch.zeros(1, T, 2 * cfg.feature_dim)
        d = path(moved, h) - path(feats, h)  # (1, T, 56)
        step = path.response_channels.weight.sum(1)  # (c,) the channels' change for +1 on every feature
        expected = 0.5 * torch.einsum("nck,c->kn", path.response_filter.weight.flip(2), step)  # (k, 56)
    changed = d.abs().amax(2)[0] > 1e-6  # (T,)
    assert changed[10:15].all() and changed.sum() == 5  # frames 10..14 only: the past and present, k frames
    torch.testing.assert_close(d[0, 10:15], expected)
    assert not hasattr(DualTalk(get_preset("speaker_only", ["audio_response_kernel=5"])), "audio_response_path")
    assert "audio_response_kernel" in get_preset("speaker_only", ["audio_response_kernel=5"]).inert_fields()
    assert "audio_response_channels" in get_preset("tiny-mel", ["variant=paper"]).inert_fields()


def test_output_gain_shrinks_toward_the_stored_mean():
    model = DualTalk(get_preset("tiny-mel", ["output_gain=true"])).eval()
    model.set_motion_statistics(torch.linspace(-1, 1, 56), torch.full((56,), 2.0))
    x = inputs()
    with torch.inference_mode():
        full = model(*x)
        model.output_gain.zero_()
        torch.testing.assert_close(model(*x), model.motion_mean.expand_as(full))
        model.output_gain.fill_(0.5)
        torch.testing.assert_close(model(*x), model.motion_mean + 0.5 * (full - model.motion_mean))
    with pytest.raises(DualTalkError, match="normalize_motion"):
        get_preset("tiny", ["output_gain=true"])


def tiny_wav2vec2_cnn(**overrides):
    """A small wav2vec2 CNN feature extractor (the LayerNorm variant, as the released model's), random weights."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = dict(
        feat_extract_norm="layer", conv_bias=True, num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
        intermediate_size=32, conv_dim=(32,) * 7,
    )  # fmt: skip
    return Wav2Vec2Model(Wav2Vec2Config(**{**cfg, **overrides})).eval().feature_extractor


def test_time_major_wav2vec2_cnn_equals_transformers_across_chunks():
    """The inference CNN (time-major matrix products, in chunks of output frames with their receptive
    field) equals transformers' Wav2Vec2FeatureEncoder, for clips shorter than, equal to and spanning
    several chunks, and batched."""
    from dualtalk.features.audio_encoder import conv_features_channels_last

    torch.manual_seed(0)
    extractor = tiny_wav2vec2_cnn()
    with torch.inference_mode():
        for samples in (400, 16000, 16000 * 3 + 123):
            wave = torch.randn(2, samples)
            ref = extractor(wave).transpose(1, 2)  # (B, L, C)
            for chunk in (7, 50, 500):
                out = conv_features_channels_last(extractor, wave, chunk_frames=chunk)
                torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)


def test_interpolation_step_is_the_integer_scale_of_align_corners_interpolation():
    from dualtalk.features.audio_encoder import interpolate_frames, interpolation_step

    assert interpolation_step(1499, 750) == 2  # 30 s: 480,000 samples, 1,499 CNN frames, 750 motion frames
    assert interpolation_step(13, 4) == 4
    assert interpolation_step(1498, 750) == 1  # not a whole step
    assert interpolation_step(750, 750) == 1 and interpolation_step(700, 750) == 1
    assert interpolation_step(5, 1) == 1  # one frame: nothing to leave out worth a path
    x = torch.randn(1, 13, 3)
    for frames, t in ((13, 4), (13, 7), (13, 5)):
        step = interpolation_step(frames, t)
        if step > 1:  # the interpolation picks exactly those frames (weights 1 and 0)
            assert torch.equal(interpolate_frames(x[:, :frames], t), x[:, :frames:step])


def test_time_major_wav2vec2_cnn_computes_only_the_frames_asked_for():
    """``every`` r: frames 0, r, 2r, ... of the CNN, each layer computing only what they read, equal to the
    full CNN's frames there (and to transformers'), for clips shorter than a chunk and spanning the outer
    chunks of the upper layers, batched; where the kernels overlap (r = 1) the plain CNN."""
    from dualtalk.features import audio_encoder as ae

    torch.manual_seed(0)
    extractor = tiny_wav2vec2_cnn()
    assert ae._sparse_rows(extractor, 2) == [79, 39, 19, 9, 4, 2, 1]
    assert ae._sparse_rows(extractor, 1) is None
    with torch.inference_mode():
        for samples in (400, 640 * 7, 16000 * 3 + 123, 640 * 150):
            wave = torch.randn(2, samples)
            ref = extractor(wave).transpose(1, 2)  # (B, L, C)
            for every in (2, 3, 4):
                for chunk in (7, 100):  # 7 // 2 = 3 periods a chunk: the 150 frames span several outer chunks
                    out = ae.conv_features_channels_last(extractor, wave, chunk_frames=chunk, every=every)
                    torch.testing.assert_close(out, ref[:, ::every], atol=2e-5, rtol=1e-4)
    short = tiny_wav2vec2_cnn(conv_dim=(32, 32), conv_kernel=(10, 3), conv_stride=(5, 2))  # fewer than 3 layers
    with torch.inference_mode():
        wave = torch.randn(1, 16000)
        torch.testing.assert_close(
            ae.conv_features_channels_last(short, wave, every=2),
            short(wave).transpose(1, 2)[:, ::2],
            atol=2e-5,
            rtol=1e-4,
        )


def test_wav2vec2_encoder_computes_the_cnn_frames_the_interpolation_keeps(monkeypatch):
    """The encoder's output is the same whether the CNN computes every frame (transformers' path) or only
    those the interpolation to the motion frame rate keeps (whole motion frames, the clip ending inside one,
    and a length where every frame is needed)."""
    from dualtalk.config import AudioEncoderConfig
    from dualtalk.features import audio_encoder as ae

    torch.manual_seed(0)
    w2v = dict(
        feat_extract_norm="layer", conv_bias=True, num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
        intermediate_size=32, conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        do_stable_layer_norm=True,
    )  # fmt: skip
    encoder = ae.Wav2Vec2Encoder(AudioEncoderConfig(type="wav2vec2", wav2vec2=w2v)).eval()
    asked = []
    original = ae.conv_features_channels_last
    monkeypatch.setattr(
        ae, "conv_features_channels_last", lambda *a, **k: asked.append(k.get("every", 1)) or original(*a, **k)
    )
    with torch.inference_mode():
        for samples, steps in ((640 * 20, 2), (640 * 19 + 500, 2), (640 * 19 + 100, 1)):
            wave = torch.randn(1, samples)
            frames = -(-samples // 640)
            fast = encoder(wave, frames)
            encoder.time_major_cnn = False
            slow = encoder(wave, frames)
            encoder.time_major_cnn = True
            assert fast.shape == (1, frames, 32) and asked[-1] == steps
            torch.testing.assert_close(fast, slow, atol=2e-5, rtol=1e-4)


def test_mel_encoder_takes_a_clip_shorter_than_half_its_window():
    """A 100-sample clip (one motion frame of audio is 640) was a torch error in the STFT's reflect padding."""
    from dualtalk.features.audio_encoder import build_audio_encoder
    from dualtalk.model.presets import get_preset

    enc = build_audio_encoder(get_preset("tiny-mel").audio_encoder).eval()
    with torch.no_grad():
        out = enc(torch.randn(1, 100), 1)
    assert out.shape[:2] == (1, 1) and torch.isfinite(out).all()
