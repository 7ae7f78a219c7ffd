"""The released checkpoint: parity with the reference implementation's outputs, and the full key layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.conftest import shared_path

from dualtalk.cli import main
from dualtalk.config import DualTalkConfig
from dualtalk.io import load_audio, load_motion
from dualtalk.model.checkpoint import (
    filter_official_state_dict,
    load_model,
    load_official_state_dict,
    to_official_state_dict,
)
from dualtalk.model.dualtalk import DualTalk

TOL = 1e-4


@pytest.fixture(scope="module")
def parity_dir():
    return shared_path("fixtures", "official_parity")


@pytest.fixture(scope="module")
def converted(parity_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    code = main(
        [
            "convert-official",
            str(parity_dir / "official_layout_checkpoint.pth"),
            str(out),
            "--config",
            str(parity_dir / "config.json"),
        ]
    )
    assert code == 0
    return out


def test_converted_checkpoint_reproduces_reference(parity_dir, converted):
    model = load_model(converted)
    expected = np.load(parity_dir / "expected.npz")
    a = load_audio(parity_dir / "self_audio.wav")
    b = load_audio(parity_dir / "partner_audio.wav")
    m = load_motion(parity_dir / "partner_motion.npz").to_model()
    np.testing.assert_array_equal(m, expected["model_input_motion"])
    with torch.inference_mode():
        out, inter = model(
            torch.from_numpy(a)[None], torch.from_numpy(b)[None], torch.from_numpy(m)[None], return_intermediates=True
        )
    assert out.shape == (1, 101, 56)
    assert np.abs(out[0].numpy() - expected["output"]).max() <= TOL
    for key in ("audio_feat_self", "audio_feat_partner", "partner_motion_feat", "temporal_feat"):
        err = np.abs(inter[key][0].numpy() - expected[key]).max()
        assert err <= TOL, (key, err)


def test_generate_cli_on_fixture_matches_reference(parity_dir, converted, tmp_path):
    out = tmp_path / "B.npz"
    code = main(
        [
            "generate",
            "--model",
            str(converted),
            "--self-audio",
            str(parity_dir / "self_audio.wav"),
            "--partner-audio",
            str(parity_dir / "partner_audio.wav"),
            "--partner-motion",
            str(parity_dir / "partner_motion.npz"),
            "--out",
            str(out),
            "--quiet",
            "--exact",  # float32: the default (--dtype auto) is bfloat16 on CPUs that have it
        ]
    )
    assert code == 0
    expected = np.load(parity_dir / "expected.npz")["output"]
    with np.load(out) as data:
        assert data["exp"].dtype == np.float32 and data["pose"].dtype == np.float32
        assert np.abs(data["exp"] - expected[:, :50]).max() <= TOL
        # dataset layout: pose = [global, jaw]; model order: [..., jaw, global]
        assert np.abs(data["pose"][:, :3] - expected[:, 53:56]).max() <= TOL
        assert np.abs(data["pose"][:, 3:] - expected[:, 50:53]).max() <= TOL


def test_pth_loads_directly_with_config(parity_dir):
    model = load_model(parity_dir / "official_layout_checkpoint.pth", config=parity_dir / "config.json")
    assert model.config.feature_dim == 64


def test_round_trip_to_official_layout(parity_dir, converted):
    model = load_model(converted)
    original = load_official_state_dict(parity_dir / "official_layout_checkpoint.pth")
    back = to_official_state_dict(model)
    assert set(back) == set(original)
    for key, value in original.items():
        torch.testing.assert_close(back[key], value, rtol=0, atol=0)


def test_manifest_maps_onto_full_size_model():
    manifest = json.loads(shared_path("fixtures", "official_checkpoint_manifest.json").read_text())
    with torch.device("meta"):
        model = DualTalk(DualTalkConfig())  # the released preset, built offline from config
    fake = {k: torch.empty(shape, device="meta") for k, shape in manifest["state_dict"].items()}
    mapped = filter_official_state_dict(fake, model)
    ours = model.state_dict()
    assert sorted(set(mapped) - set(ours)) == []  # nothing left over in the checkpoint
    assert sorted(set(ours) - set(mapped)) == []  # nothing left over in the model
    bad = [k for k in ours if tuple(ours[k].shape) != tuple(mapped[k].shape)]
    assert bad == []
    assert model.num_parameters() == manifest["num_parameters"] == 647_237_048


def test_released_pth_without_config_explains_shapes(parity_dir, capsys, tmp_path):
    code = main(["convert-official", str(parity_dir / "official_layout_checkpoint.pth"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "pass --config" in err and "official_layout_checkpoint.pth" in err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_convert_writes_only_into_a_new_or_model_directory(tmp_path, capsys):
    """Checked before the checkpoint is read: a directory of other files is refused, a model directory is
    replaced only with --overwrite."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["convert-official", str(tmp_path / "x.pth"), str(other)]) == 2
    assert "is not a model directory (it holds other files)" in capsys.readouterr().err
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    assert main(["convert-official", str(tmp_path / "x.pth"), str(model_dir)]) == 2
    assert "already holds a model: pass --overwrite" in capsys.readouterr().err
    assert main(["convert-official", str(tmp_path / "x.pth"), str(model_dir), "--overwrite"]) == 2  # now the .pth
    err = capsys.readouterr().err
    assert "x.pth" in err and "--overwrite" not in err
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json"] and list(other.iterdir()) == [
        other / "notes.txt"
    ]
