"""LVE / FDD on hand-made vertex arrays, and wired to a synthetic FLAME file + synthetic region masks."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from dualtalk.cli import main
from dualtalk.errors import InputError
from dualtalk.eval import evaluate
from dualtalk.eval.mesh import MeshEvaluator, fdd, load_region_masks, lve, mesh_regions
from dualtalk.flame import load_flame, write_synthetic_flame
from dualtalk.io.motion import Motion, save_model_motion, save_motion


def test_lve_by_hand():
    gt = np.zeros((2, 4, 3))
    pred = gt.copy()
    pred[0, 1] = [3.0, 4.0, 0.0]  # frame 0: lip vertex 1 off by 5
    pred[0, 2] = [1.0, 0.0, 0.0]  # and lip vertex 2 off by 1 -> max 5
    pred[1, 3] = [0.0, 0.0, 9.0]  # frame 1: only a non-lip vertex is off -> 0
    lips = np.array([1, 2])
    assert lve(pred, gt, lips) == pytest.approx(2.5)  # (5 + 0) / 2


def test_fdd_by_hand():
    template = np.zeros((3, 3))
    # upper vertex 0: gt displacement norms 0, 2 (std 1); pred 0, 0 (std 0) -> +1
    # upper vertex 1: gt 1, 1 (std 0); pred 0, 4 (std 2) -> -2
    gt = np.array([[[0, 0, 0], [1, 0, 0], [5, 5, 5]], [[0, 2, 0], [0, 1, 0], [5, 5, 5]]], float)
    pred = np.array([[[0, 0, 0], [0, 0, 0], [9, 9, 9]], [[0, 0, 0], [0, 0, 4], [0, 0, 0]]], float)
    assert fdd(pred, gt, template, np.array([0, 1])) == pytest.approx((1 - 2) / 2)
    assert fdd(gt, gt, template, np.array([0, 1, 2])) == 0


@pytest.fixture(scope="module")
def flame_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("flame")
    model_path = write_synthetic_flame(d / "generic_model.pkl", num_vertices=400, num_faces=None, seed=0)
    model = load_flame(model_path)
    v = model.v_template
    masks = {  # FLAME_masks.pkl layout: a dict of vertex index arrays
        "lips": np.flatnonzero((v[:, 1] < np.quantile(v[:, 1], 0.3)) & (v[:, 2] > 0)).astype(np.int64),
        "forehead": np.flatnonzero(v[:, 1] > np.quantile(v[:, 1], 0.8)).astype(np.int64),
        "eye_region": np.flatnonzero((v[:, 1] > np.quantile(v[:, 1], 0.6)) & (v[:, 2] > 0)).astype(np.int64),
        "neck": np.arange(10),
    }
    masks_path = d / "FLAME_masks.pkl"
    with open(masks_path, "wb") as fh:
        pickle.dump(masks, fh, protocol=2)
    return model_path, masks_path, masks


def test_mesh_evaluator_matches_the_forward_pass(flame_files, rng):
    model_path, masks_path, masks = flame_files
    ev = MeshEvaluator.load(model_path, masks_path)
    assert np.array_equal(ev.regions.lips, np.unique(masks["lips"]))
    t = 300  # more than one chunk
    gt = (0.3 * rng.standard_normal((t, 56))).astype(np.float32)
    pred = gt.copy()
    pred[:, 50] += 0.2  # jaw opened further in the prediction
    pred[:, 53:56] += 0.5  # head pose differs too, but the mesh metrics ignore global rotation
    res = ev.per_file(pred, gt)
    model = load_flame(model_path)
    zeros = np.zeros((t, 3))
    vp = model.vertices(pred[:, :50], pred[:, 50:53], zeros)  # (T, V, 3)
    vg = model.vertices(gt[:, :50], gt[:, 50:53], zeros)
    upper = np.unique(np.concatenate([masks["forehead"], masks["eye_region"]]))
    assert res["lve_mm"] == pytest.approx(1000 * lve(vp, vg, masks["lips"]), rel=1e-6)
    assert res["fdd_mm"] == pytest.approx(1000 * fdd(vp, vg, model.v_template, upper), rel=1e-5, abs=1e-9)
    assert res["lve_mm"] > 0
    same = ev.per_file(gt, gt)
    assert same["lve_mm"] == 0 and same["fdd_mm"] == 0


def test_masks_errors(flame_files, tmp_path):
    model_path, masks_path, masks = flame_files
    with pytest.raises(InputError, match="no region lips"):
        mesh_regions({"forehead": masks["forehead"], "eye_region": masks["eye_region"]}, 400)
    with pytest.raises(InputError, match="not a set of vertex indices of a 100-vertex model"):
        mesh_regions(masks, 100)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"lips": Evil()}, protocol=2))
    with pytest.raises(InputError, match="refusing to load .*print"):
        load_region_masks(bad)
    with pytest.raises(InputError, match="masks file not found"):
        load_region_masks(tmp_path / "nope.pkl")


def test_evaluate_with_flame(flame_files, tmp_path, rng):
    model_path, masks_path, _ = flame_files
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    for k in (1, 2):
        gt = (0.3 * rng.standard_normal((80, 56))).astype(np.float32)
        save_motion(gt_dir / f"c_speaker{k}.npz", Motion.from_model(gt))
        save_model_motion(pred_dir / f"c_speaker{k}.npy", gt + 0.1 * rng.standard_normal((80, 56)).astype(np.float32))
    out = tmp_path / "m.json"
    assert (
        main(
            [
                "evaluate",
                "--pred",
                str(pred_dir),
                "--gt",
                str(gt_dir),
                "--flame",
                str(model_path),
                "--flame-masks",
                str(masks_path),
                "--json",
                str(out),
                "--workers",
                "2",
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert set(r["mesh"]["per_file"]) == {"c_speaker1.npy", "c_speaker2.npy"}
    assert r["mesh"]["mean"]["lve_mm"] > 0
    serial = evaluate(pred_dir, gt_dir, flame=model_path, flame_masks=masks_path, workers=1)
    for key, values in r["mesh"]["per_file"].items():  # float32 BLAS: thread counts change the last bits
        assert serial["mesh"]["per_file"][key] == pytest.approx(values, rel=1e-5)
    pooled = evaluate(pred_dir, gt_dir, protocol="pooled", flame=model_path, flame_masks=masks_path, workers=1)
    assert pooled["mesh"]["mean"]["lve_mm"] == pytest.approx(r["mesh"]["mean"]["lve_mm"])  # equal lengths
