"""The facts of the data (dualtalk.layout), the restricted unpickler and the thread limiter."""

from __future__ import annotations

import io
import math
import os
import pickle

import numpy as np
import pytest

from dualtalk import layout
from dualtalk.io.motion import Motion
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
