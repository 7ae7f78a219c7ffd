"""FLAME forward pass and the restricted loader, on small synthetic model files in the FLAME layout."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import dualtalk.flame as flame_module
from dualtalk.errors import InputError
from dualtalk.flame import load_flame, write_synthetic_flame


@pytest.fixture
def small_model(tmp_path):
    return load_flame(write_synthetic_flame(tmp_path / "generic_model.pkl", num_vertices=40, num_faces=None, seed=3))


def _by_hand(m, exp, jaw, neck):
    """One frame, vertex by vertex, with scipy's rotations: the LBS formula written out for FLAME's tree."""
    E = len(exp)
    v_shaped = m.v_template + np.einsum("vce,e->vc", m.expdirs[:, :, :E].astype(np.float64), exp)
    J = m.J_regressor.astype(np.float64) @ v_shaped  # (5, 3)
    Rn = Rotation.from_rotvec(neck).as_matrix()
    Rj = Rotation.from_rotvec(jaw).as_matrix()
    eye = np.eye(3)
    feature = np.concatenate([(Rn - eye).ravel(), (Rj - eye).ravel(), np.zeros(9), np.zeros(9)])  # neck, jaw, eyes
    v_posed = v_shaped + m.posedirs.astype(np.float64) @ feature
    out = np.zeros_like(v_posed)
    for i, x in enumerate(v_posed):
        per_joint = [
            x,  # root: identity
            Rn @ (x - J[1]) + J[1],  # neck
            Rn @ (Rj @ (x - J[2]) + J[2] - J[1]) + J[1],  # jaw hangs from the neck
            Rn @ (x - J[1]) + J[1],  # eyes (no own rotation) follow the neck
            Rn @ (x - J[1]) + J[1],
        ]
        out[i] = sum(w * p for w, p in zip(m.weights[i], per_joint))
    return out


def test_forward_pass_matches_hand_computed_vertices(small_model, rng):
    T = 3
    exp = rng.standard_normal((T, 50))
    jaw = np.array([[0.0, 0, 0], [0.3, 0.02, -0.01], [0.1, 0, 0]])
    neck = np.array([[0.0, 0, 0], [-0.2, 0.4, 0.1], [0.05, -0.3, 0.0]])
    got = small_model.vertices(exp, jaw, neck)
    assert got.shape == (T, 40, 3) and got.dtype == np.float32
    for t in range(T):
        np.testing.assert_allclose(got[t], _by_hand(small_model, exp[t], jaw[t], neck[t]), atol=2e-6)


def test_zero_motion_gives_the_template(small_model):
    got = small_model.vertices(np.zeros((2, 50)), np.zeros((2, 3)), np.zeros((2, 3)))
    np.testing.assert_allclose(got, np.broadcast_to(small_model.v_template, got.shape), atol=1e-7)


def test_root_rotation_turns_the_whole_mesh_rigidly_about_joint_0(small_model, rng):
    exp, jaw, rot = rng.standard_normal((1, 50)), np.array([[0.2, 0, 0]]), np.array([[0.1, 0.5, -0.2]])
    unrotated = small_model.vertices(exp, jaw, np.zeros((1, 3)))[0]
    root = small_model.vertices(exp, jaw, rot, rotation_joint="root")[0]
    v_shaped = small_model.v_template + small_model.expdirs[:, :, :50] @ exp[0]
    J0 = small_model.J_regressor[0] @ v_shaped
    R = Rotation.from_rotvec(rot[0]).as_matrix()
    np.testing.assert_allclose(root, (unrotated - J0) @ R.T + J0, atol=2e-6)
    neck = small_model.vertices(exp, jaw, rot)[0]  # default: the neck joint, a different pivot
    assert np.abs(neck - root).max() > 1e-3
    with pytest.raises(ValueError):
        small_model.vertices(exp, jaw, rot, rotation_joint="eyes")


def test_chunking_does_not_change_results(small_model, rng):
    exp, jaw, rot = rng.standard_normal((7, 50)), 0.2 * rng.standard_normal((7, 3)), 0.2 * rng.standard_normal((7, 3))
    np.testing.assert_allclose(
        small_model.vertices(exp, jaw, rot, chunk=2), small_model.vertices(exp, jaw, rot), atol=1e-6
    )


def test_chumpy_variant_loads_the_same_arrays(tmp_path):
    plain = load_flame(write_synthetic_flame(tmp_path / "a.pkl", num_vertices=30, num_faces=None, seed=1))
    path = write_synthetic_flame(tmp_path / "b.pkl", num_vertices=30, num_faces=None, seed=1, chumpy=True)
    assert b"chumpy.ch\nCh" in path.read_bytes() and b"scipy.sparse.csc\ncsc_matrix" in path.read_bytes()
    ch = load_flame(path)
    for key in ("v_template", "faces", "expdirs", "posedirs", "J_regressor", "parents", "weights"):
        np.testing.assert_array_equal(getattr(plain, key), getattr(ch, key), err_msg=key)
    assert plain.parents.tolist() == [-1, 0, 1, 1, 1]


class _ChumpyAdd:
    """Written as chumpy.ch_ops.add: a derived chumpy expression, as some model files carry."""


class _Pickler(flame_module._FlamePickler):
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _ChumpyAdd):
            return self._save_fake(b"chumpy.ch_ops\nadd\n", {"a": np.ones(2), "b": np.ones(2)})
        return super().save(obj, save_persistent_id)


def test_other_chumpy_objects_under_unused_keys_are_tolerated(tmp_path):
    plain = write_synthetic_flame(tmp_path / "plain.pkl", num_vertices=30, num_faces=None)
    with open(plain, "rb") as fh:
        data = pickle.load(fh)  # our own file: plain numpy and scipy objects
    data["J_expr"] = _ChumpyAdd()
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(data)
    path = tmp_path / "extra.pkl"
    path.write_bytes(buf.getvalue())
    assert b"chumpy.ch_ops\nadd" in path.read_bytes()
    np.testing.assert_array_equal(load_flame(path).weights, load_flame(plain).weights)
    # the same object under a key the forward pass needs is a clear error
    data["v_template"] = _ChumpyAdd()
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(data)
    path.write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="v_template"):
        load_flame(path)


def test_flame_sized_synthetic_model(tmp_path):
    m = load_flame(write_synthetic_flame(tmp_path / "generic_model.pkl"))
    assert m.v_template.shape == (5023, 3) and m.faces.shape == (9976, 3)


def test_converted_once_then_cached(tmp_path, monkeypatch):
    path = write_synthetic_flame(tmp_path / "generic_model.pkl", num_vertices=30, num_faces=None)
    first = load_flame(path)
    cache = tmp_path / "generic_model.pkl.dualtalk.npz"
    assert cache.exists()
    import dualtalk.flame as flame

    monkeypatch.setattr(flame, "_read_pickle", lambda p: pytest.fail("pickle read again despite the cache"))
    np.testing.assert_array_equal(load_flame(path).v_template, first.v_template)
    np.testing.assert_array_equal(load_flame(cache).weights, first.weights)  # the .npz loads directly too
    # a changed pickle invalidates the cache
    monkeypatch.undo()
    write_synthetic_flame(path, num_vertices=30, num_faces=None, seed=9)
    os.utime(path, ns=(1, 1))
    assert not np.allclose(load_flame(path).expdirs, first.expdirs)


def test_unwritable_sibling_cache_falls_back_to_cache_dir(tmp_path):
    path = write_synthetic_flame(tmp_path / "generic_model.pkl", num_vertices=30, num_faces=None)
    (tmp_path / "generic_model.pkl.dualtalk.npz").mkdir()  # cannot be written (works as root too)
    first = load_flame(path, cache_dir=tmp_path / "cache")
    cached = list((tmp_path / "cache").glob("generic_model-*.npz"))
    assert len(cached) == 1
    np.testing.assert_array_equal(load_flame(cached[0]).faces, first.faces)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_refuses_a_pickle_that_calls_anything_else(tmp_path):
    _Evil.marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=2))
    with pytest.raises(InputError) as err:
        load_flame(path)
    assert "refusing" in str(err.value) and "system" in str(err.value) and str(path) in str(err.value)
    assert not _Evil.marker.exists()
    # builtins other than the harmless containers are refused as well
    path.write_bytes(pickle.dumps(eval, protocol=2))
    with pytest.raises(InputError, match="eval"):
        load_flame(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a pickle at all", "not a FLAME model pickle"),
        (pickle.dumps([1, 2, 3], protocol=2), "expected a dict"),
        (pickle.dumps({"v_template": np.zeros((4, 3))}, protocol=2), "missing key"),
    ],
)
def test_clear_errors_for_other_files(tmp_path, content, message):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_flame(path)


def test_wrong_shapes_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_flame(tmp_path / "nope.pkl")
    path = write_synthetic_flame(tmp_path / "m.pkl", num_vertices=30, num_faces=None)
    with open(path, "rb") as fh:
        data = pickle.load(fh)  # our own file: plain numpy and scipy objects
    data["posedirs"] = np.zeros((30, 3, 10))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(InputError, match="posedirs"):
        load_flame(bad)
