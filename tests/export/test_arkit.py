"""ARKit: the names and Live Link Face layout, the map (file, apply), its fit (a known map recovered, mirrored
names tied, held-out error), the CSV/JSON files and the commands."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from dualtalk.cli import main
from dualtalk.export.arkit import (
    ARKIT_NAMES,
    LIVE_LINK_FACE_HEADER,
    MAP_INPUTS,
    ArkitMap,
    arkit_map_from_dict,
    exp_mirror_matrix,
    fit_arkit_map,
    flame_to_arkit,
    head_angles,
    load_arkit,
    load_arkit_map,
    mirror_name,
    mirror_operator,
    write_arkit_csv,
    write_arkit_json,
)
from dualtalk.flame import load_flame, write_synthetic_flame
from dualtalk.io.motion import Motion, save_motion


def test_names_and_live_link_face_header():
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES))
    assert len(LIVE_LINK_FACE_HEADER) == 2 + 52 + 3 + 6
    assert LIVE_LINK_FACE_HEADER[:4] == ("Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft")
    assert LIVE_LINK_FACE_HEADER[-9:-6] == ("HeadYaw", "HeadPitch", "HeadRoll")
    # Live Link Face's order, not Apple's: Right before Left for jaw and mouth
    assert ARKIT_NAMES.index("jawRight") + 1 == ARKIT_NAMES.index("jawLeft")
    assert ARKIT_NAMES.index("mouthRight") + 1 == ARKIT_NAMES.index("mouthLeft")
    pairs = {n for n in ARKIT_NAMES if mirror_name(n)}
    assert len(pairs) == 2 * 20 and mirror_name("eyeBlinkLeft") == "eyeBlinkRight" and mirror_name("jawOpen") is None
    assert len(MAP_INPUTS) == 56 and MAP_INPUTS[50] == "jaw_x" and MAP_INPUTS[-1] == "global_z"


def smooth_frames(T: int, seed: int) -> np.ndarray:
    """(T, 56) model-order frames: smooth random expression (~N(0, 1)), jaw and head rotations (~0.1 rad)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None] / 25.0
    f = rng.uniform(0.2, 2.0, (1, 56))
    x = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (1, 56))) + 0.3 * rng.standard_normal((T, 56))
    x[:, 50:] *= 0.1
    return x.astype(np.float32)


def known_map(seed: int = 0) -> ArkitMap:
    """A map whose mirrored rows are exact mirror images (jaw/global inputs; expression weights only on the
    left row's own inputs, mirrored by the identity ``exp_mirror`` given to the fit)."""
    rng = np.random.default_rng(seed)
    amap = ArkitMap.zeros()
    amap.weights = rng.normal(0, 0.15, (52, 56)) * (rng.random((52, 56)) < 0.3)
    amap.weights[:, 50:] = rng.normal(0, 1.5, (52, 6))
    amap.bias = rng.uniform(0.1, 0.5, 52)
    P, _ = mirror_operator(np.eye(50))
    for i, name in enumerate(ARKIT_NAMES):
        if name.endswith("Left") and mirror_name(name):
            j = ARKIT_NAMES.index(mirror_name(name))
            amap.weights[j], amap.bias[j] = P.T @ amap.weights[i], amap.bias[i]
    amap.defined[:] = True
    return amap


def noisy_targets(x: np.ndarray, amap: ArkitMap, noise: float, rng) -> np.ndarray:
    """clip(linear + noise, 0, 1): the model the fit assumes (noise before the clipping)."""
    return np.clip(x @ amap.weights.T + amap.bias + noise * rng.standard_normal((len(x), 52)), 0, 1)


def test_apply_clips_and_leaves_undefined_rows_zero():
    amap = known_map()
    amap.defined[ARKIT_NAMES.index("tongueOut")] = False
    x = 5 * smooth_frames(40, 1)
    y = flame_to_arkit(x, amap)
    assert y.shape == (40, 52) and y.dtype == np.float32
    assert y.min() == 0.0 and y.max() == 1.0  # large inputs: both clips reached
    assert (y[:, ARKIT_NAMES.index("tongueOut")] == 0).all()
    motion = Motion.from_model(x)
    np.testing.assert_array_equal(flame_to_arkit(motion, amap), y)


def test_map_file_round_trip(tmp_path):
    amap = known_map()
    amap.defined[3] = False
    amap.save(tmp_path / "map.json")
    back = load_arkit_map(tmp_path / "map.json")
    data = json.loads((tmp_path / "map.json").read_text())
    assert data["inputs"] == list(MAP_INPUTS) and ARKIT_NAMES[3] not in data["rows"]
    np.testing.assert_array_equal(back.defined, amap.defined)
    np.testing.assert_allclose(back.weights[amap.defined], amap.weights[amap.defined])
    bom = tmp_path / "bom.json"  # as an editor on Windows saves it
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "map.json").read_bytes())
    np.testing.assert_array_equal(load_arkit_map(bom).weights, back.weights)
    # case-insensitive names, bias optional
    m = arkit_map_from_dict({"rows": {"JawOpen": {"weights": [0.0] * 50 + [2.0, 0, 0, 0, 0, 0]}}})
    assert m.defined.sum() == 1 and m.weights[ARKIT_NAMES.index("jawOpen"), 50] == 2.0


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_fit_recovers_a_known_map(noise):
    truth = known_map()
    xs = [smooth_frames(1500, s) for s in range(3)]
    rng = np.random.default_rng(9)
    ys = [noisy_targets(x, truth, noise, rng) for x in xs]
    fitted = fit_arkit_map(xs, ys, l2=1e-6, symmetry=1.0, exp_mirror=np.eye(50))
    assert fitted.defined.all()
    assert fitted.fit["heldout_frames"] == 3 * 300 and fitted.fit["train_frames"] == 3 * 1200
    held = fitted.fit["heldout"]
    assert set(held["rmse_per_name"]) == set(ARKIT_NAMES)
    # on fresh frames the fitted map gives what the true map gives
    fresh = smooth_frames(2000, 77)
    err = np.sqrt(((flame_to_arkit(fresh, fitted) - flame_to_arkit(fresh, truth)) ** 2).mean())
    if noise == 0:
        rel = np.linalg.norm(fitted.weights - truth.weights) / np.linalg.norm(truth.weights)
        assert rel < 0.01, rel  # the map itself is recovered
        np.testing.assert_allclose(fitted.bias, truth.bias, atol=0.01)
        assert held["rmse"] < 1e-3 and err < 1e-3, (held["rmse"], err)
    else:  # the held-out error is the noise (clipped at 0 and 1), the map's own error a fraction of it
        assert held["rmse"] < 1.1 * noise and err < 0.5 * noise, (held["rmse"], err)


def test_clipping_aware_fit_beats_plain_least_squares():
    """Targets pinned at 0 (most frames of most ARKit channels) bias a plain ridge; the censored fit is not."""
    truth = known_map()
    truth.bias[:] = -0.3  # most outputs clip at 0
    xs = [smooth_frames(2000, 4)]
    ys = [flame_to_arkit(xs[0], truth)]
    censored = fit_arkit_map(xs, ys, l2=1e-6, symmetry=0.0)
    plain = fit_arkit_map(xs, ys, l2=1e-6, symmetry=0.0, iters=1)
    assert censored.fit["heldout"]["rmse"] < 0.25 * plain.fit["heldout"]["rmse"]


def test_symmetry_tying_helps_with_few_noisy_frames():
    truth = known_map(2)
    xs = [smooth_frames(150, 5)]  # 6 s: too few frames for 52 x 57 free parameters
    rng = np.random.default_rng(1)
    ys = [noisy_targets(xs[0], truth, 0.05, rng)]
    fresh = smooth_frames(2000, 77)
    errors = {}
    for mu in (0.0, 1.0):
        fitted = fit_arkit_map(xs, ys, l2=1e-3, symmetry=mu, exp_mirror=np.eye(50), holdout=0.0)
        errors[mu] = np.sqrt(((flame_to_arkit(fresh, fitted) - flame_to_arkit(fresh, truth)) ** 2).mean())
    assert errors[1.0] < 0.9 * errors[0.0], errors


def test_expression_mirror_of_a_symmetric_model(tmp_path):
    """Expression blendshapes closed under mirroring (25 and their mirror images) give an exact mirror matrix."""
    model = load_flame(write_synthetic_flame(tmp_path / "flame.pkl", num_vertices=800, num_faces=None))
    from scipy.spatial import cKDTree

    v = model.v_template
    pair = cKDTree(v).query(v * [-1, 1, 1])[1]
    half = model.expdirs[:, :, :25]
    E = np.concatenate([half, half[pair] * np.array([-1, 1, 1])[None, :, None]], axis=2)
    M, residual = exp_mirror_matrix(dataclasses.replace(model, expdirs=E.astype(np.float32)))
    assert residual < 1e-4
    np.testing.assert_allclose(M[:25, 25:], np.eye(25), atol=1e-3)  # component k mirrors into k + 25


def test_head_angles():
    rot = np.array([[0, 0.3, 0], [0.2, 0, 0], [0, 0, -0.1]], np.float32)  # yaw, pitch, roll
    np.testing.assert_allclose(head_angles(rot), [[0.3, 0, 0], [0, 0.2, 0], [0, 0, -0.1]], atol=1e-6)


def test_csv_and_json_round_trip(tmp_path):
    w = flame_to_arkit(smooth_frames(60, 3), known_map())
    head = head_angles(0.1 * smooth_frames(60, 2)[:, 53:])
    write_arkit_csv(tmp_path / "B.csv", w, head)
    rows = list(csv.reader((tmp_path / "B.csv").open()))
    assert tuple(rows[0]) == LIVE_LINK_FACE_HEADER and len(rows) == 61
    assert rows[1][:2] == ["00:00:00:00.000", "61"] and rows[26][0] == "00:00:01:00.000"
    assert float(rows[5][LIVE_LINK_FACE_HEADER.index("HeadYaw")]) == pytest.approx(head[4, 0], abs=1e-6)
    back, present, fps = load_arkit(tmp_path / "B.csv")
    assert present.all() and fps is None
    np.testing.assert_allclose(back, w, atol=1e-6)
    write_arkit_json(tmp_path / "B.json", w, head)
    data = json.loads((tmp_path / "B.json").read_text())
    assert data["channels"] == list(ARKIT_NAMES) and data["fps"] == 25 and data["frames"] == 60
    assert data["head"]["units"] == "radians"
    back, present, fps = load_arkit(tmp_path / "B.json")
    assert fps == 25
    np.testing.assert_allclose(back, w, atol=1e-6)


def test_commands_fit_then_export(tmp_path, capsys):
    truth = known_map()
    motions, arkits = [], []
    for k in range(2):
        x = smooth_frames(500, 10 + k)
        save_motion(tmp_path / f"m{k}.npz", Motion.from_model(x))
        write_arkit_csv(tmp_path / f"a{k}.csv", flame_to_arkit(x, truth))
        motions.append(str(tmp_path / f"m{k}.npz"))
        arkits.append(str(tmp_path / f"a{k}.csv"))
    out = tmp_path / "MAP.json"
    assert (
        main(["fit-arkit-map", "--flame-motion", *motions, "--arkit", *arkits, "--out", str(out), "--l2", "1e-6"]) == 0
    )
    assert "held-out RMSE" in capsys.readouterr().out
    amap = load_arkit_map(out)
    assert amap.fit["heldout"]["rmse"] < 0.01
    # export both ways; the CSV read back equals the map applied to the motion
    assert main(["export", "--motion", motions[0], "--out", str(tmp_path / "B.csv"), "--arkit-map", str(out)]) == 0
    assert main(["export", "--motion", motions[0], "--out", str(tmp_path / "B.json"), "--arkit-map", str(out)]) == 0
    x = Motion.from_model(smooth_frames(500, 10))
    want = flame_to_arkit(x, amap)
    np.testing.assert_allclose(load_arkit(tmp_path / "B.csv")[0], want, atol=2e-6)
    np.testing.assert_allclose(load_arkit(tmp_path / "B.json")[0], want, atol=2e-6)
    out_text = capsys.readouterr().out
    assert "52 of 52 ARKit channels mapped" in out_text
    # with the FLAME model the expression weights of mirrored names are tied too (its mirror fit reported)
    flame = write_synthetic_flame(tmp_path / "flame.pkl", num_vertices=800, num_faces=None)
    args = ["--flame-motion", *motions, "--arkit", *arkits, "--out", str(out), "--flame", str(flame)]
    assert main(["fit-arkit-map", *args]) == 0
    fit = load_arkit_map(out).fit
    assert fit["expression_tied"] and 0 <= fit["expression_mirror_residual"]


def test_fit_and_apply_check_their_arrays(tmp_path):
    from dualtalk.errors import DualTalkError
    from dualtalk.export.arkit import fit_arkit_map

    x = np.random.default_rng(0).normal(0, 0.1, (40, 56)).astype(np.float32)
    with pytest.raises(DualTalkError, match=r"\(T, 52\) weights"):
        fit_arkit_map([x], [np.zeros((40, 50))])  # was an IndexError
    with pytest.raises(DualTalkError, match=r"in \[0, 1\]; got 0 to 5"):
        fit_arkit_map([x], [np.full((40, 52), 5.0) * (np.arange(40) > 0)[:, None]])
    amap = known_map()
    amap.save(tmp_path / "map.json")
    np.testing.assert_array_equal(flame_to_arkit(x, tmp_path / "map.json"), flame_to_arkit(x, amap))  # a map file
    with pytest.raises(DualTalkError, match=r"\(T, 56\) model-order array, got \(40, 50\)"):
        flame_to_arkit(x[:, :50], amap)
