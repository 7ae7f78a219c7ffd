"""The FLAME head model's forward pass in numpy: motion parameters -> mesh vertices.

    from dualtalk.flame import load_flame
    flame = load_flame("generic_model.pkl")           # the user's own, licensed FLAME file
    verts = flame.vertices(exp, jaw, global_rot)      # (T, 5023, 3) in metres

FLAME (Li et al., SIGGRAPH Asia 2017) is a linear blend skinning (LBS) model with five joints:
0 root ("global"), 1 neck, 2 jaw, 3 left eye, 4 right eye. For a frame with expression ``e`` and
per-joint rotations ``R_j`` the forward pass is (shape coefficients are zero here):

    v_shaped = v_template + shapedirs[:, :, 300:350] @ e           expression blendshapes
    J        = J_regressor @ v_shaped                                joint locations (5, 3)
    v_posed  = v_shaped + posedirs @ vec(R_1..R_4 - I)              pose correctives (36 features)
    G_j      = G_parent(j) @ [R_j | J_j - J_parent(j)]              kinematic chain
    v        = sum_j weights[v, j] * (G_j @ [v_posed - J_j ; 1])    skinning

Which joint the motion's "global/neck rotation" drives: the DualTalk reference renderer passes the
motion's rotation as FLAME's *neck* pose and leaves the root at identity (so the head turns about the
neck joint, the way a person's head turns on the neck). :meth:`FlameModel.vertices` does the same by
default (``rotation_joint="neck"``); ``rotation_joint="root"`` rotates the whole mesh about joint 0
instead (rigidly: the root is not part of the pose correctives).

Loading: FLAME files are Python 2 pickles holding numpy arrays, ``chumpy`` ``Ch`` objects (a numpy
array in their ``x`` attribute) and a ``scipy.sparse`` matrix (``J_regressor``). They are read with a
restricted unpickler that resolves only those classes (to inert stand-ins; chumpy need not be
installed) and refuses anything else, so a malicious file cannot run code. The converted arrays are
cached once as an ``.npz`` beside the file (or in the user's cache directory when that is read-only).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io.files import atomic_path
from .io.pickles import Refused, RestrictedUnpickler, latin1_encode, numpy_globals
from .layout import N_EXP

EXP_OFFSET = 300  # expression blendshapes follow the 300 shape blendshapes in ``shapedirs``
N_JOINTS = 5  # root, neck, jaw, left eye, right eye
ROOT, NECK, JAW, EYE_L, EYE_R = range(N_JOINTS)
CACHE_VERSION = 1
_CACHE_KEYS = ("v_template", "faces", "expdirs", "posedirs", "J_regressor", "parents", "weights")


# ----------------------------------------------------------------------------------------------------
# restricted unpickling


class _ChStandIn:
    """Inert stand-in for ``chumpy`` classes (``chumpy.ch.Ch`` and friends): keeps the pickled state.

    A plain ``Ch`` holds its array in ``state['x']``; other chumpy objects (derived expressions) may sit
    under keys the forward pass does not use, and are kept inert."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _SparseStandIn:
    """Inert stand-in for a pickled ``scipy.sparse`` matrix; rebuilt from its state after loading."""

    fmt = "csc"

    def __setstate__(self, state):
        self.state = state


class _CscStandIn(_SparseStandIn):
    fmt = "csc"


class _CsrStandIn(_SparseStandIn):
    fmt = "csr"


def _safe_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` (protocol 0/1 pickles) limited to our stand-ins on ``object``."""
    if base is not object or cls not in (_ChStandIn, _CscStandIn, _CsrStandIn):
        raise Refused(f"refusing to reconstruct {cls!r} from {base!r}")
    return object.__new__(cls)


def _allowed_globals() -> dict[tuple[str, str], object]:
    """The allow-list of a FLAME model file: numpy arrays, chumpy ``Ch`` and scipy sparse matrices."""
    table = dict(numpy_globals())
    table[("chumpy.ch", "Ch")] = _ChStandIn
    for mod in ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr"):
        table[(mod, "csc_matrix")] = _CscStandIn
        table[(mod, "csr_matrix")] = _CsrStandIn
    table[("_codecs", "encode")] = latin1_encode
    for mod in ("copy_reg", "copyreg"):
        table[(mod, "_reconstructor")] = _safe_reconstructor
    for mod in ("__builtin__", "builtins"):
        table[(mod, "object")] = object
        table[(mod, "set")] = set
        table[(mod, "frozenset")] = frozenset
    return table


#: every chumpy class, whatever it is called, becomes the inert stand-in
_CHUMPY = {"chumpy": _ChStandIn}
_REFUSAL = (
    "the pickle asks for '{module}.{name}', which a FLAME model never contains (only numpy arrays, "
    "chumpy Ch and scipy sparse matrices are allowed)"
)


def _to_array(path, key: str, value) -> np.ndarray:
    """Plain ndarray from an ndarray, a chumpy stand-in or a sparse stand-in."""
    if isinstance(value, _ChStandIn):
        state = value.state if isinstance(getattr(value, "state", None), dict) else {}
        if "x" not in state:
            raise InputError(path, f"'{key}' is a chumpy object without an array ('x')")
        value = state["x"]
    if isinstance(value, _SparseStandIn):
        import scipy.sparse

        s = value.state if isinstance(getattr(value, "state", None), dict) else {}
        shape = s.get("_shape", s.get("shape"))
        if not all(k in s for k in ("data", "indices", "indptr")) or shape is None:
            raise InputError(path, f"'{key}' is a sparse matrix with an unexpected layout")
        cls = scipy.sparse.csc_matrix if value.fmt == "csc" else scipy.sparse.csr_matrix
        value = cls(
            (np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])),
            shape=tuple(int(n) for n in shape),
        ).toarray()
    if not isinstance(value, np.ndarray):
        raise InputError(path, f"'{key}' is a {type(value).__name__}, expected an array")
    return value


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            data = RestrictedUnpickler(
                fh, _allowed_globals(), modules=_CHUMPY, refusal=_REFUSAL, encoding="latin1"
            ).load()
    except Refused as exc:
        raise InputError(path, f"refusing to load this FLAME file: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
    ) as exc:
        raise InputError(path, f"not a FLAME model pickle ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"not a FLAME model: the pickle holds a {type(data).__name__}, expected a dict")
    return data


def _convert(path: Path, data: dict) -> dict[str, np.ndarray]:
    """FLAME pickle contents -> the float32/int arrays the forward pass uses."""
    missing = [
        k
        for k in ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights")
        if k not in data
    ]
    if missing:
        raise InputError(path, f"not a FLAME model: missing key(s) {', '.join(missing)}")
    v_template = _to_array(path, "v_template", data["v_template"]).astype(np.float32)
    if v_template.ndim != 2 or v_template.shape[1] != 3:
        raise InputError(path, f"'v_template' must be (V, 3), got {v_template.shape}")
    V = v_template.shape[0]
    faces = _to_array(path, "f", data["f"]).astype(np.int64)
    shapedirs = _to_array(path, "shapedirs", data["shapedirs"])
    posedirs = _to_array(path, "posedirs", data["posedirs"])
    J_regressor = _to_array(path, "J_regressor", data["J_regressor"])
    kintree = _to_array(path, "kintree_table", data["kintree_table"])
    weights = _to_array(path, "weights", data["weights"])
    checks = [
        (
            faces.ndim == 2 and faces.shape[1] == 3 and faces.size and faces.min() >= 0 and faces.max() < V,
            f"'f' must be (F, 3) vertex indices below {V}, got {faces.shape}",
        ),
        (
            shapedirs.ndim == 3 and shapedirs.shape[:2] == (V, 3) and shapedirs.shape[2] >= EXP_OFFSET + N_EXP,
            f"'shapedirs' must be (V, 3, >= {EXP_OFFSET + N_EXP}), got {shapedirs.shape}",
        ),
        (posedirs.shape == (V, 3, 9 * (N_JOINTS - 1)), f"'posedirs' must be ({V}, 3, 36), got {posedirs.shape}"),
        (J_regressor.shape == (N_JOINTS, V), f"'J_regressor' must be ({N_JOINTS}, {V}), got {J_regressor.shape}"),
        (kintree.shape == (2, N_JOINTS), f"'kintree_table' must be (2, {N_JOINTS}), got {kintree.shape}"),
        (weights.shape == (V, N_JOINTS), f"'weights' must be ({V}, {N_JOINTS}), got {weights.shape}"),
    ]
    for ok, what in checks:
        if not ok:
            raise InputError(path, f"not a FLAME model: {what}")
    parents = kintree[0].astype(np.int64)
    parents[0] = -1  # stored as uint32 max
    if not all(0 <= parents[j] < j for j in range(1, N_JOINTS)):
        raise InputError(path, f"'kintree_table' parents {parents.tolist()} are not a tree in joint order")
    return {
        "v_template": v_template,  # (V, 3)
        "faces": faces.astype(np.int32),  # (F, 3)
        "expdirs": shapedirs[:, :, EXP_OFFSET:].astype(np.float32),  # (V, 3, E) all expression blendshapes
        "posedirs": posedirs.astype(np.float32),  # (V, 3, 36)
        "J_regressor": J_regressor.astype(np.float32),  # (5, V)
        "parents": parents,  # (5,)
        "weights": weights.astype(np.float32),  # (V, 5)
    }


# ----------------------------------------------------------------------------------------------------
# the model


def rodrigues(r: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) -> rotation matrices (..., 3, 3)."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)  # (..., 1)
    k = r / np.maximum(theta, 1e-12)  # unit axis; zero where theta == 0
    K = np.zeros(r.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]  # (..., 1, 1)
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


@dataclass
class FlameModel:
    v_template: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int32
    expdirs: np.ndarray  # (V, 3, E >= 50) expression blendshapes
    posedirs: np.ndarray  # (V, 3, 36) pose-corrective blendshapes
    J_regressor: np.ndarray  # (5, V)
    parents: np.ndarray  # (5,) parent joint, -1 for the root
    weights: np.ndarray  # (V, 5) skinning weights

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def vertices(
        self, exp: np.ndarray, jaw: np.ndarray, global_rot: np.ndarray, rotation_joint: str = "neck", chunk: int = 128
    ) -> np.ndarray:
        """Posed vertices (T, V, 3) float32 for expression (T, 50), jaw (T, 3) and global/neck rotation (T, 3).

        ``rotation_joint``: "neck" (default, as the DualTalk reference renderer) or "root".
        Shape coefficients and eye rotations are zero. Frames are processed ``chunk`` at a time.
        """
        if rotation_joint not in ("neck", "root"):
            raise ValueError(f"rotation_joint must be 'neck' or 'root', got {rotation_joint!r}")
        exp = np.atleast_2d(np.asarray(exp, np.float32))
        jaw = np.atleast_2d(np.asarray(jaw, np.float32))
        global_rot = np.atleast_2d(np.asarray(global_rot, np.float32))
        T = exp.shape[0]
        if exp.shape[1] > self.expdirs.shape[2] or jaw.shape != (T, 3) or global_rot.shape != (T, 3):
            raise ValueError(
                f"expected exp (T, <= {self.expdirs.shape[2]}), jaw (T, 3), global_rot (T, 3); "
                f"got {exp.shape}, {jaw.shape}, {global_rot.shape}"
            )
        pose = np.zeros((T, N_JOINTS, 3), np.float32)  # (T, 5, 3) axis-angle per joint
        pose[:, NECK if rotation_joint == "neck" else ROOT] = global_rot
        pose[:, JAW] = jaw
        out = np.empty((T, self.num_vertices, 3), np.float32)
        for s in range(0, T, chunk):
            out[s : s + chunk] = self._lbs(exp[s : s + chunk], pose[s : s + chunk])
        return out

    def _flat(self, E: int) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous (E, V*3) expression and (36, V*3) pose blendshape matrices, made once."""
        cache = self.__dict__.setdefault("_flat_cache", {})
        if E not in cache:
            V = self.num_vertices
            cache[E] = (
                np.ascontiguousarray(self.expdirs[:, :, :E].reshape(V * 3, E).T),  # (E, V*3)
                np.ascontiguousarray(self.posedirs.reshape(V * 3, -1).T),
            )  # (36, V*3)
        return cache[E]

    def _lbs(self, exp: np.ndarray, pose: np.ndarray) -> np.ndarray:
        T, V, E = exp.shape[0], self.num_vertices, exp.shape[1]
        expdirs, posedirs = self._flat(E)
        # expression blendshapes
        v_shaped = self.v_template[None] + (exp @ expdirs).reshape(T, V, 3)  # (T, V, 3)
        joints = self.J_regressor @ v_shaped  # (T, 5, 3)
        # pose correctives from the non-root joints' rotations
        rot = rodrigues(pose).astype(np.float32)  # (T, 5, 3, 3)
        feature = (rot[:, 1:] - np.eye(3, dtype=np.float32)).reshape(T, 9 * (N_JOINTS - 1))  # (T, 36)
        v_posed = v_shaped + (feature @ posedirs).reshape(T, V, 3)  # (T, V, 3)
        # kinematic chain: world transform of each joint, G_j = G_parent @ [R_j | J_j - J_parent]
        G = np.zeros((T, N_JOINTS, 3, 4), np.float32)  # (T, 5, 3, 4) rows of the affine 4x4
        for j in range(N_JOINTS):
            p = self.parents[j]
            if p < 0:
                G[:, j, :, :3], G[:, j, :, 3] = rot[:, j], joints[:, j]
            else:
                G[:, j, :, :3] = G[:, p, :, :3] @ rot[:, j]
                G[:, j, :, 3] = (G[:, p, :, :3] @ (joints[:, j] - joints[:, p])[..., None])[..., 0] + G[:, p, :, 3]
        # express each transform relative to the joint's rest position: A_j v = G_j (v - J_j)
        A = G.copy()
        A[..., 3] -= (G[..., :3] @ joints[..., None])[..., 0]
        # skinning: blend the per-joint affine transforms with the weights, apply per vertex
        blended = (self.weights @ A.reshape(T, N_JOINTS, 12)).reshape(T, V, 3, 4)  # (T, V, 3, 4)
        out = blended[..., 3].copy()  # translation, then + rotation-scale part row by row
        for c in range(3):
            out += blended[..., c] * v_posed[..., c : c + 1]
        return out  # (T, V, 3)

    def rest_vertices(self) -> np.ndarray:
        """(V, 3) the template with zero expression and pose."""
        return self.v_template.copy()

    def to_npz(self, path: str | os.PathLike, source: dict | None = None) -> None:
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    allow_pickle=True,  # the default; explicit so mypy does not match the arrays below to it
                    cache_version=np.int64(CACHE_VERSION),
                    **{k: getattr(self, k) for k in _CACHE_KEYS},
                    **{f"source_{k}": np.asarray(v) for k, v in (source or {}).items()},
                )


def _load_npz(path: Path) -> tuple[FlameModel, dict]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise InputError(path, "not a FLAME .npz (a single array?)")
            missing = [k for k in _CACHE_KEYS if k not in data.files]
            if missing:
                raise InputError(path, f"not a converted FLAME model: missing key(s) {', '.join(missing)}")
            arrays = {k: data[k] for k in _CACHE_KEYS}
            source: dict[str, Any] = {k[len("source_") :]: data[k] for k in data.files if k.startswith("source_")}
            source["cache_version"] = int(data["cache_version"]) if "cache_version" in data.files else 0
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise InputError(path, f"not a readable .npz file ({exc})") from None
    return FlameModel(**arrays), source


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dualtalk" / "flame"


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": np.int64(st.st_size), "mtime_ns": np.int64(st.st_mtime_ns)}


def load_flame(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> FlameModel:
    """Read a FLAME model: the original ``.pkl`` (converted once, then cached) or a converted ``.npz``.

    The cache is ``<name>.dualtalk.npz`` beside the pickle, or ``cache_dir`` (default
    ``~/.cache/dualtalk/flame``) when the pickle's directory is not writable. A cache whose recorded
    size/mtime no longer match the pickle is rebuilt.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "FLAME model file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, expected a FLAME model file (generic_model.pkl)")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):  # a zip: our converted .npz
        return _load_npz(path)[0]
    stamp = _stamp(path)
    candidates = [path.with_name(path.name + ".dualtalk.npz")]
    key = hashlib.sha1(f"{path.resolve()}".encode()).hexdigest()[:16]
    candidates.append(
        Path(cache_dir) / f"{path.stem}-{key}.npz" if cache_dir else _default_cache_dir() / f"{path.stem}-{key}.npz"
    )
    for cached in candidates:
        if cached.exists():
            try:
                model, source = _load_npz(cached)
            except InputError:
                continue
            if (
                source.get("cache_version") == CACHE_VERSION
                and int(source.get("size", -1)) == stamp["size"]
                and int(source.get("mtime_ns", -1)) == stamp["mtime_ns"]
            ):
                return model
    model = FlameModel(**_convert(path, _read_pickle(path)))
    for cached in candidates:
        try:
            model.to_npz(cached, source=stamp)
            break
        except (OSError, InputError):  # a place that takes no file: the next candidate
            continue
    return model


# ----------------------------------------------------------------------------------------------------
# a synthetic model file in the FLAME layout (tests, benchmarks)


class _FakeCh:
    """Written as ``chumpy.ch.Ch`` with the state dict chumpy's ``__getstate__`` produces."""

    def __init__(self, x):
        self.x = np.asarray(x, np.float64)


class _FakeOldCsc:
    """Written as ``scipy.sparse.csc.csc_matrix`` (the module path of Python 2 era pickles)."""

    def __init__(self, m):
        self.m = m


class _FlamePickler(pickle._Pickler):
    """Pure-python pickler that writes the two fakes above under their historical class names."""

    write: Callable[[bytes], Any]  # set by pickle._Pickler.__init__ (undocumented, so not in typeshed)

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _FakeCh):
            state = {
                "x": obj.x,
                "_dirty_vars": set(),
                "_itr": None,
                "_depends_on_deps": {},
                "_make_dense": False,
                "_make_sparse": False,
            }
            return self._save_fake(b"chumpy.ch\nCh\n", state)
        if isinstance(obj, _FakeOldCsc):
            m = obj.m
            state = {"data": m.data, "indices": m.indices, "indptr": m.indptr, "_shape": m.shape, "maxprint": 50}
            return self._save_fake(b"scipy.sparse.csc\ncsc_matrix\n", state)
        return super().save(obj, save_persistent_id)

    def _save_fake(self, global_line: bytes, state: dict):
        self.write(pickle.GLOBAL + global_line)  # the class
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)  # cls.__new__(cls)
        self.save(state)
        self.write(pickle.BUILD)  # obj.__setstate__(state)


def _synthetic_head_mesh(num_vertices: int, num_faces: int | None):
    """A closed-top, open-bottom lat-long ellipsoid with exactly ``num_vertices`` vertices (metres)."""
    n = num_vertices - 1  # one top pole
    cols = max(6, int(round(np.sqrt(n / 1.3))))
    rows = max(2, n // cols)
    theta = np.linspace(0.12, 0.9 * np.pi, rows)  # polar angle from the top
    phi = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")  # (rows, cols)
    ring = np.stack([0.075 * np.sin(th) * np.sin(ph), 0.1 * np.cos(th), 0.09 * np.sin(th) * np.cos(ph)], -1)
    verts = np.concatenate([[[0.0, 0.1, 0.0]], ring.reshape(-1, 3)])  # (1 + rows*cols, 3)
    extra = num_vertices - len(verts)  # unreferenced vertices (as FLAME's eyeball interiors are)
    verts = np.concatenate([verts, np.zeros((extra, 3))]) if extra > 0 else verts
    idx = 1 + np.arange(rows * cols).reshape(rows, cols)  # (rows, cols)
    nxt = np.roll(idx, -1, axis=1)
    cap = np.stack([np.zeros(cols, int), nxt[0], idx[0]], -1)  # (cols, 3), outward (counter-clockwise)
    a, b, c, d = idx[:-1], nxt[:-1], idx[1:], nxt[1:]
    quads = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, d, c], -1).reshape(-1, 3)])
    faces = np.concatenate([cap, quads]).astype(np.uint32)
    if num_faces is not None:
        faces = faces[:num_faces]
    return verts, faces


def _smooth_fields(v: np.ndarray, k: int, scale: float, rng) -> np.ndarray:
    """(V, 3, k) random smooth vector fields: sin(w . v + phase) along a random direction."""
    w = rng.standard_normal((k, 3)) * 25.0  # spatial frequencies (rad per metre)
    phase = rng.uniform(0, 2 * np.pi, k)
    direction = rng.standard_normal((k, 3))  # (k, 3)
    wave = np.sin(v @ w.T + phase)  # (V, k)
    return scale * wave[:, None, :] * direction.T[None]  # (V, 3, k)


def write_synthetic_flame(
    path: str | os.PathLike, num_vertices: int = 5023, num_faces: int | None = 9976, seed: int = 0, chumpy: bool = False
) -> Path:
    """Write a small random model in the FLAME pickle layout (protocol 2, as the real files).

    Arrays: ``v_template`` (V, 3), ``f`` (F, 3) uint32, ``shapedirs`` (V, 3, 400), ``posedirs``
    (V, 3, 36), ``J_regressor`` scipy csc (5, V), ``kintree_table`` (2, 5) uint32, ``weights`` (V, 5)
    and a few extra keys real files have. ``chumpy=True`` stores ``v_template`` and ``shapedirs`` as
    ``chumpy.ch.Ch`` objects and ``J_regressor`` under the old ``scipy.sparse.csc`` path, the way
    FLAME 2017/2020 files do. The head is a deformed ellipsoid; joints sit where FLAME's would.
    """
    import scipy.sparse

    if num_vertices < 12:
        raise ValueError("num_vertices must be at least 12")
    rng = np.random.default_rng(seed)
    v, f = _synthetic_head_mesh(num_vertices, num_faces)
    V = len(v)
    targets = np.array([[0, 0, 0], [0, -0.07, -0.01], [0, -0.03, 0.0], [0.03, 0.03, 0.07], [-0.03, 0.03, 0.07]])
    # joints regressed from the 8 vertices nearest each target, like FLAME's sparse regressor
    dist = np.linalg.norm(v[None] - targets[:, None], axis=-1)  # (5, V)
    rows = np.repeat(np.arange(N_JOINTS), 8)
    cols = np.argsort(dist, axis=1)[:, :8].reshape(-1)
    J_regressor = scipy.sparse.csc_matrix((np.full(len(cols), 1 / 8), (rows, cols)), shape=(N_JOINTS, V))
    # skinning: the lower front goes with the jaw, the rest with the neck, a little root everywhere
    jaw_w = 1 / (1 + np.exp(-(-(v[:, 1] + 0.02) * 200))) * (v[:, 2] > 0)
    weights = np.stack([np.full(V, 0.05), 0.95 - 0.9 * jaw_w, 0.9 * jaw_w, np.zeros(V), np.zeros(V)], -1)
    # blendshapes are smooth displacement fields (as FLAME's are): random plane waves over the head
    shapedirs = _smooth_fields(v, 400, 1e-3, rng)  # (V, 3, 400), ~1 mm per unit coefficient
    posedirs = _smooth_fields(v, 36, 2e-4, rng)  # (V, 3, 36)
    model = {
        "v_template": _FakeCh(v) if chumpy else v,
        "f": f,
        "shapedirs": _FakeCh(shapedirs) if chumpy else shapedirs,
        "posedirs": posedirs,
        "J_regressor": _FakeOldCsc(J_regressor) if chumpy else J_regressor,
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        "weights": weights,
        "J": np.asarray(J_regressor @ v),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    buf = io.BytesIO()
    _FlamePickler(buf, protocol=2).dump(model)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return path
