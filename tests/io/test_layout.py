"""The facts of the data (dualtalk.layout), the restricted unpickler and the thread limiter."""

from __future__ import annotations

import io
import math
import os
import pickle

import numpy as np
import pytest

from dualtalk import layout
from dualtalk.errors import InputError
from dualtalk.io.motion import Motion, load_motion
from dualtalk.io.pickles import Refused, RestrictedUnpickler, latin1_encode, numpy_globals
from dualtalk.io.threads import limit_threads


def test_layout_is_consistent():
    assert layout.SAMPLES_PER_FRAME * layout.FPS == layout.SAMPLE_RATE == 16000
    cols = np.concatenate([np.arange(56)[s] for s in layout.GROUPS.values()])
    np.testing.assert_array_equal(cols, np.arange(layout.MOTION_DIM))  # the groups tile the frame, in order
    assert list(layout.GROUPS) == ["exp", "jaw", "pose"] and layout.GROUPS["pose"] is layout.HEAD_ROT
    for s in (0, 1, 639, 640, 641, 16000, 123457):
        assert layout.frames_for(s) == math.ceil(s / 640)


def test_flame_pose_is_global_then_jaw():
    x = np.arange(3 * 56, dtype=np.float32).reshape(3, 56)
    m = Motion.from_model(x)
    np.testing.assert_array_equal(m.flame_pose, np.concatenate([x[:, 53:56], x[:, 50:53]], axis=1))
    np.testing.assert_array_equal(Motion.from_layout(m.exp, m.flame_pose).to_model(), x)


def test_restricted_unpickler_resolves_only_its_allow_list():
    data = {"lips": np.arange(5, dtype=np.int64)}
    blob = pickle.dumps(data, protocol=2)
    out = RestrictedUnpickler(
        io.BytesIO(blob), {**numpy_globals(), ("_codecs", "encode"): latin1_encode}, encoding="latin1"
    ).load()
    np.testing.assert_array_equal(out["lips"], data["lips"])
    with pytest.raises(Refused, match="refusing to load posix.system|refusing to load nt.system"):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(os.system, protocol=2)), numpy_globals()).load()
    with pytest.raises(Refused, match=r"no (__builtin__|builtins)\.eval here"):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(eval, protocol=2)), {}, refusal="no {module}.{name} here").load()


def test_limit_threads_is_a_context_manager():
    with limit_threads(1):
        pass
    limiter = limit_threads(1, "blas")
    limiter.restore_original_limits()
    with limit_threads(1, "openmp", reuse=True):
        pass


def test_arkit_layout_groups_tile_the_frame():
    a = layout.ARKIT
    assert a.dim == 55 == len(a.channels) and list(a.groups) == ["mouth", "upper", "pose"]
    cols = np.sort(np.concatenate([np.arange(55)[s] for s in a.groups.values()]))
    np.testing.assert_array_equal(cols, np.arange(55))  # every column in exactly one group
    mouth = [layout.ARKIT_NAMES[i] for i in a.groups["mouth"]]
    assert len(mouth) == 28 and "jawOpen" in mouth and "tongueOut" in mouth and "cheekPuff" not in mouth
    assert [layout.group_width(c, 55) for c in a.groups.values()] == [28, 24, 3]
    assert layout.get_layout("flame") is layout.FLAME and layout.FLAME.channels[50] == "jaw_x"


def test_arkit_motion_files_round_trip_and_reorder_by_names(tmp_path):
    from dualtalk.io.motion import ArkitMotion, load_any_motion, load_model_motion, motion_from_model, save_motion

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 1, (20, 52)), 0.1 * rng.normal(size=(20, 3))], 1).astype(np.float32)
    m = motion_from_model(x, "arkit")
    assert isinstance(m, ArkitMotion) and len(m) == 20 and m.layout == "arkit"
    save_motion(tmp_path / "a.npz", m)
    with np.load(tmp_path / "a.npz") as data:
        assert sorted(data.files) == ["arkit", "head"]
    np.testing.assert_array_equal(load_any_motion(tmp_path / "a.npz").to_model(), x)
    np.testing.assert_array_equal(load_model_motion(tmp_path / "a.npz", "arkit"), x)
    np.testing.assert_array_equal(m.fit_length(25).to_model()[-1], x[-1])
    # a file with its columns in another order, named (any case): reordered to ARKIT_NAMES
    perm = rng.permutation(52)
    names = np.array([layout.ARKIT_NAMES[i].upper() for i in perm])
    np.savez(tmp_path / "b.npz", arkit=x[:, perm], head=x[:, 52:], names=names)
    np.testing.assert_array_equal(load_any_motion(tmp_path / "b.npz", "arkit").to_model(), x)
    # (T, 55) .npy: an ARKit model's predictions; refused where FLAME is needed, with the reason
    np.save(tmp_path / "p.npy", x)
    np.testing.assert_array_equal(load_model_motion(tmp_path / "p.npy", None), x)
    with pytest.raises(InputError, match=r"got \(20, 55\): a \(T, 55\) array is arkit model-order motion, but this"):
        load_model_motion(tmp_path / "p.npy")
    with pytest.raises(InputError, match=r"is ARKit motion .*, but this command uses FLAME motion"):
        load_motion(tmp_path / "a.npz")


def test_a_file_with_both_layouts_serves_either(tmp_path):
    from dualtalk.io.motion import load_any_motion

    np.savez(
        tmp_path / "both.npz",
        exp=np.zeros((5, 50)),
        pose=np.zeros((5, 6)),
        arkit=np.full((5, 52), 0.5),
        head=np.zeros((5, 3)),
    )
    assert load_motion(tmp_path / "both.npz").exp.shape == (5, 50)
    assert load_any_motion(tmp_path / "both.npz").layout == "arkit"
    assert load_any_motion(tmp_path / "both.npz", "flame").layout == "flame"
