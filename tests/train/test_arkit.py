"""Training on ARKit targets (``motion_layout: arkit``): a tiny ARKit corpus (the toy FLAME corpus mapped through
a known linear map), a causal model trained a few steps, then generate, stream, predict + evaluate and export
without a map; the config's round trip and the clipping of the output to [0, 1]."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from dualtalk.cli import main
from dualtalk.config import DualTalkConfig, from_dict, to_dict
from dualtalk.io.motion import ArkitMotion, load_any_motion
from dualtalk.layout import ARKIT, ARKIT_NAMES
from dualtalk.model.checkpoint import load_model, save_model
from dualtalk.model.dualtalk import build_model
from dualtalk.model.presets import get_preset
from dualtalk.train import compose_train_config, train


@pytest.fixture(scope="module")
def arkit_corpus(tmp_path_factory):
    from dualtalk.train.toy import write_toy_corpus

    root = tmp_path_factory.mktemp("toy-arkit")
    return write_toy_corpus(root, {"train": 3, "val": 2, "test": 1}, seconds=(2.5, 5.0), layout="arkit")


@pytest.fixture(scope="module")
def arkit_run(arkit_corpus, tmp_path_factory):
    from tests.train.conftest import FAST

    run = tmp_path_factory.mktemp("arkit-run") / "run"
    cfg = compose_train_config(
        preset="tiny-stream",
        max_steps=6,
        overrides=FAST + ["model.motion_layout=arkit", "val_every=3", "optim.lr=3e-3"],
    )
    best = train(arkit_corpus, run, cfg, progress=False)
    return run, best


def test_the_corpus_is_arkit_motion(arkit_corpus):
    m = load_any_motion(arkit_corpus / "train" / "train000_speaker1.npz", "arkit")
    assert isinstance(m, ArkitMotion) and m.weights.shape[1] == 52 and m.head_rot.shape[1] == 3
    assert 0 <= m.weights.min() and m.weights.max() <= 1
    assert m.weights[:, ARKIT_NAMES.index("jawOpen")].std() > 0.1  # the jaw follows the person's speech


def test_config_layout_and_round_trip(tmp_path):
    cfg = get_preset("tiny-stream", ["motion_layout=arkit"])
    assert cfg.motion_dim == 55 and cfg.motion_layout == "arkit"
    assert from_dict(DualTalkConfig, to_dict(cfg)) == cfg
    old = to_dict(get_preset("tiny-stream"))
    old.pop("motion_layout")  # a config.json written before the layout existed: FLAME, unchanged
    assert from_dict(DualTalkConfig, old).motion_layout == "flame" and from_dict(DualTalkConfig, old).motion_dim == 56
    model = build_model(cfg)
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.config.motion_layout == "arkit" and back.blendshape_predictor.out_features == 55
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"]["motion_layout"] == "arkit"


def test_output_weights_are_clipped_in_eval_mode():
    model = build_model(get_preset("tiny-stream", ["motion_layout=arkit"]))
    bias = torch.cat([torch.linspace(-3, 3, 52), torch.full((3,), 2.0)])  # weights far outside [0, 1]
    with torch.no_grad():
        model.blendshape_predictor.weight.zero_()
        model.blendshape_predictor.bias.copy_(bias)
    audio = torch.zeros(1, 640 * 10)
    model.train()
    raw = model(audio, audio, None)  # (1, 10, 55)
    torch.testing.assert_close(raw[0], bias.expand(10, 55))  # training sees the raw output
    model.eval()
    with torch.no_grad():
        out = model(audio, audio, None)
    clipped = torch.cat([bias[:52].clamp(0, 1), bias[52:]])  # the head rotation is not bounded
    torch.testing.assert_close(out[0], clipped.expand(10, 55))


def test_training_on_arkit_targets(arkit_run):
    run, best = arkit_run
    with open(run / "metrics.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames[3:8] == ["loss", "mouth", "upper", "pose", "velocity"]
        val = [r for r in reader if r["split"] == "val"]
    assert [int(r["step"]) for r in val] == [0, 3, 6]
    assert float(val[-1]["loss"]) < float(val[0]["loss"])
    model = load_model(best)
    assert model.config.motion_layout == "arkit" and len(model.extra["motion_stats"]["mean"]) == 55


def test_generate_stream_evaluate_export(arkit_corpus, arkit_run, tmp_path):
    _, best = arkit_run
    test = arkit_corpus / "test"
    a1, a2, m2 = (test / f"test000_{n}" for n in ("speaker1.wav", "speaker2.wav", "speaker2.npz"))
    gen = tmp_path / "gen.npz"
    args = ["--self-audio", str(a1), "--partner-audio", str(a2), "--partner-motion", str(m2), "--out"]
    assert main(["generate", "--model", str(best), *args, str(gen), "--quiet"]) == 0
    with np.load(gen) as data:
        assert sorted(data.files) == ["arkit", "head"]
        weights = data["arkit"]
        assert weights.shape[1] == 52 and 0 <= weights.min() and weights.max() <= 1
    streamed = tmp_path / "stream.npz"
    assert main(["stream", "--model", str(best), *args, str(streamed)]) == 0
    s = load_any_motion(streamed, "arkit")
    np.testing.assert_allclose(s.to_model(), load_any_motion(gen, "arkit").to_model(), atol=1e-4)

    # predict + evaluate: metrics on the ARKit groups
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(best), "--data", str(test), "--out", str(pred), "--quiet"]) == 0
    assert np.load(pred / "test000_speaker1.npy").shape[1] == 55
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(test), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["info"]["layout"] == "arkit"
    assert list(result["mean"])[:3] == ["fid_mouth", "fid_upper", "fid_pose"]
    assert all(result["mean"][f"mse_{g}"] is not None for g in ARKIT.groups)
    assert set(result["by_role"]["speaking"]["mean"]) == set(result["mean"])

    # export without a map: Live Link Face CSV, JSON; glTF on the built-in head (jaw from jawOpen)
    from dualtalk.export.arkit import head_angles, load_arkit

    csv_out, json_out = tmp_path / "B.csv", tmp_path / "B.json"
    assert main(["export", "--motion", str(gen), "--out", str(csv_out)]) == 0
    assert main(["export", "--motion", str(gen), "--out", str(json_out)]) == 0
    for path in (csv_out, json_out):
        back, present, _ = load_arkit(path)
        assert present.all()
        np.testing.assert_allclose(back, weights, atol=1e-6)
    head = json.loads(json_out.read_text())["head"]["values"]["HeadYaw"]
    np.testing.assert_allclose(head, head_angles(load_any_motion(gen).head_rot)[:, 0], atol=1e-6)
    pytest.importorskip("pygltflib")
    from dualtalk.export.gltf import ARKIT_JAW_OPEN_RADIANS, export_gltf

    summary = export_gltf(gen, tmp_path / "B.glb")
    assert summary["head"] == "builtin" and summary["source_layout"] == "arkit"
    import pygltflib

    doc = pygltflib.GLTF2().load(str(tmp_path / "B.glb"))
    assert doc.asset.extras["dualtalk"]["source_layout"] == "arkit"
    jaw_channel = next(c for c in doc.animations[0].channels if doc.nodes[c.target.node].name == "jaw")
    acc = doc.accessors[doc.animations[0].samplers[jaw_channel.sampler].output]
    view = doc.bufferViews[acc.bufferView]
    quats = np.frombuffer(doc.binary_blob(), np.float32, acc.count * 4, view.byteOffset + (acc.byteOffset or 0))
    angle = 2 * np.arctan2(quats.reshape(-1, 4)[:, 0], quats.reshape(-1, 4)[:, 3])  # about x
    jaw_open = weights[:, ARKIT_NAMES.index("jawOpen")]
    jaw_open = np.append(jaw_open, jaw_open[-1])  # the clip's last key holds the last frame (it lasts T / 25 s)
    np.testing.assert_allclose(angle, ARKIT_JAW_OPEN_RADIANS * jaw_open, atol=1e-5)


def test_flame_motion_to_arkit_training_data(tmp_path):
    """``export --format arkit-npz``: FLAME motion through a map -> ARKit motion, loadable as training data."""
    from dualtalk.export.arkit import flame_to_arkit
    from dualtalk.io.motion import Motion, save_motion
    from dualtalk.train.toy import toy_arkit_map

    rng = np.random.default_rng(0)
    motion = Motion.from_model(rng.normal(0, 0.3, (40, 56)).astype(np.float32))
    save_motion(tmp_path / "A.npz", motion)
    toy_arkit_map().save(tmp_path / "MAP.json")
    out = tmp_path / "A_arkit.npz"
    argv = ["export", "--motion", str(tmp_path / "A.npz"), "--out", str(out), "--format", "arkit-npz"]
    assert main([*argv, "--arkit-map", str(tmp_path / "MAP.json")]) == 0
    back = load_any_motion(out, "arkit")
    np.testing.assert_allclose(back.weights, flame_to_arkit(motion, toy_arkit_map()), atol=1e-6)
    np.testing.assert_array_equal(back.head_rot, motion.global_rot)
