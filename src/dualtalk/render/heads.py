"""Head models for rendering: the user's FLAME model, or the project's built-in head.

A head turns motion parameters into vertices of a fixed-topology mesh with per-vertex base colours:

- :class:`FlameHead`: the full FLAME forward pass (expression, jaw, neck rotation, skinning).
- :class:`BuiltinHead`: a hand-made head of rigid parts that shows only what the parameters mean
  physically without FLAME: the lower jaw rotates about a hinge by the jaw rotation (so the mouth
  opens and shows teeth, tongue and a dark mouth cavity), and the whole head rotates about the neck
  by the global rotation while neck and shoulders stay still. It has no expression blendshapes: the 50
  expression coefficients are shown beside it as numbers (a heat strip), never faked on the face.

Each head also describes itself as JSON (:meth:`BuiltinHead.definition`, :meth:`FlameHead.definition`):
the arrays and the rig, from which the page of ``dualtalk serve`` builds and poses the same mesh in the
browser. Arrays are packed as little-endian base64 (:func:`pack_array`, :func:`unpack_array`).
"""

from __future__ import annotations

import base64

import numpy as np

from ..flame import JAW, NECK, FlameModel, rodrigues


def pack_array(a, dtype: str) -> dict:
    """An array as JSON: ``{"dtype", "shape", "base64"}``, little-endian ``dtype`` (``float32``, ``int32``, ...)."""
    x = np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": np.dtype(dtype).name, "shape": list(x.shape), "base64": base64.b64encode(x.tobytes()).decode()}


def unpack_array(d: dict) -> np.ndarray:
    """The inverse of :func:`pack_array`."""
    dtype = np.dtype(d["dtype"]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(d["base64"]), dtype).reshape(d["shape"]).astype(d["dtype"])


class Head:
    kind = "head"
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    base_colors: np.ndarray  # (V, 3) float32
    center: np.ndarray  # (3,) framing centre
    radius: float  # framing half-height

    def vertices(self, exp: np.ndarray, jaw: np.ndarray, global_rot: np.ndarray) -> np.ndarray:
        """(T, 50), (T, 3), (T, 3) -> (T, V, 3)."""
        raise NotImplementedError


class FlameHead(Head):
    kind = "flame"

    def __init__(self, model: FlameModel, color=(0.78, 0.77, 0.76)):
        self.model = model
        self.faces = np.ascontiguousarray(model.faces, dtype=np.int32)
        self.base_colors = np.tile(np.asarray(color, np.float32), (model.num_vertices, 1))
        used = model.v_template[np.unique(self.faces)]  # (U, 3)
        lo, hi = used.min(0), used.max(0)
        self.center = ((lo + hi) / 2).astype(np.float32)
        self.radius = float(max(hi[1] - lo[1], hi[0] - lo[0]) / 2 * 1.12)

    def vertices(self, exp, jaw, global_rot):
        return self.model.vertices(exp, jaw, global_rot)

    def definition(self, num_exp: int = 50) -> dict:
        """JSON-able FLAME rig of :meth:`FlameModel.vertices` (rotation on the neck joint): template, faces,
        the first ``num_exp`` expression blendshapes (E, V, 3), the pose correctives (36, V, 3), the joints
        of the template (5, 3) and their change per expression coefficient (E, 5, 3) (the joint regressor
        applied to the blendshapes: joints follow the expression), parents and skinning weights (V, 5)."""
        m = self.model
        expdirs = np.moveaxis(m.expdirs[:, :, :num_exp], -1, 0)  # (E, V, 3)
        return {
            "kind": self.kind,
            "num_vertices": m.num_vertices,
            "num_faces": len(self.faces),
            "num_exp": num_exp,
            "rotation_joint": "neck",
            "joints": {"neck": NECK, "jaw": JAW},
            "v_template": pack_array(m.v_template, "float32"),
            "faces": pack_array(self.faces, "uint32"),
            "base_colors": pack_array(self.base_colors, "float32"),
            "expdirs": pack_array(expdirs, "float32"),
            "posedirs": pack_array(np.moveaxis(m.posedirs, -1, 0), "float32"),  # (36, V, 3)
            "joints_template": pack_array(m.J_regressor @ m.v_template, "float32"),  # (5, 3)
            "joints_expdirs": pack_array(np.einsum("jv,evc->ejc", m.J_regressor, expdirs), "float32"),  # (E, 5, 3)
            "parents": [int(p) for p in m.parents],
            "weights": pack_array(m.weights, "float32"),
            "center": [float(c) for c in self.center],
            "radius": self.radius,
        }


# ----------------------------------------------------------------------------------------------------
# the built-in head

SKIN = (0.89, 0.73, 0.62)
LIPS = (0.76, 0.36, 0.37)
MOUTH = (0.30, 0.06, 0.08)
TONGUE = (0.80, 0.42, 0.45)
TEETH = (0.96, 0.95, 0.90)
SCLERA = (0.97, 0.97, 0.97)
PUPIL = (0.10, 0.10, 0.13)
HAIR = (0.32, 0.21, 0.13)
SHIRT = (0.33, 0.45, 0.62)

MOUTH_Y = -0.04  # the lip line
JAW_HINGE = np.array([0.0, -0.005, 0.0])
NECK_PIVOT = np.array([0.0, -0.075, -0.015])
_FACE_C = np.array([0.0, 0.015, 0.005])
_FACE_R = np.array([0.078, 0.105, 0.092])


def _ellipsoid(center, radii, n_lat=16, n_lon=24):
    """Closed UV ellipsoid: vertices (V, 3), outward counter-clockwise faces (F, 3), unit directions (V, 3)."""
    theta = np.linspace(0, np.pi, n_lat + 1)[1:-1]  # polar angle, poles excluded
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")  # (n_lat-1, n_lon)
    d = np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], -1).reshape(-1, 3)
    d = np.concatenate([[[0, 1, 0]], d, [[0, -1, 0]]])  # (V, 3) with top and bottom pole
    rings = 1 + np.arange(len(theta) * n_lon).reshape(len(theta), n_lon)  # (rings, n_lon)
    nxt = np.roll(rings, -1, axis=1)
    bottom = len(d) - 1
    faces = [
        np.stack([np.zeros(n_lon, int), rings[0], nxt[0]], -1),
        np.stack([rings[:-1], rings[1:], nxt[:-1]], -1).reshape(-1, 3),
        np.stack([nxt[:-1], rings[1:], nxt[1:]], -1).reshape(-1, 3),
        np.stack([rings[-1], np.full(n_lon, bottom), nxt[-1]], -1),
    ]
    faces = np.concatenate(faces)
    verts = np.asarray(center) + d * np.asarray(radii)
    return verts, _orient_outward(verts, faces, np.asarray(center)), d


def _orient_outward(verts, faces, center):
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = np.einsum("fc,fc->f", n, tri.mean(1) - center) < 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces


def _face_surface(n_lat=40, n_lon=56):
    """The face ellipsoid, narrowing towards the chin (shared by skull and jaw so their surfaces meet)."""
    v, f, d = _ellipsoid(_FACE_C, _FACE_R, n_lat, n_lon)
    v = v.copy()
    taper = 1 - 0.22 * np.clip(-(v[:, 1] - 0.0) / 0.09, 0, 1)
    v[:, 0] *= taper
    return v, f, d


_THETA_MOUTH = float(np.arccos((MOUTH_Y - _FACE_C[1]) / _FACE_R[1]))  # polar angle of the lip line


def _disc(d, t):
    """Points of the flat disc bounded by the face surface's lip-line ring; t in [0, 1] from centre to rim."""
    ring = np.sin(_THETA_MOUTH) * d[:, [0, 2]] / np.maximum(np.linalg.norm(d[:, [0, 2]], axis=1, keepdims=True), 1e-9)
    taper = 1 - 0.22 * np.clip(-MOUTH_Y / 0.09, 0, 1)
    out = np.empty_like(d)
    out[:, 0] = _FACE_C[0] + t * ring[:, 0] * _FACE_R[0] * taper
    out[:, 1] = MOUTH_Y
    out[:, 2] = _FACE_C[2] + t * ring[:, 1] * _FACE_R[2]
    return out


def _smoothstep(a, b, x):
    t = np.clip((x - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


class BuiltinHead(Head):
    """Rigid parts: ``head`` (turns with the global rotation), ``jaw`` (also turns with the jaw), ``body``."""

    kind = "builtin"

    def __init__(self):
        parts = []  # (verts, faces, colors, group)

        def add(v, f, color, group):
            c = np.broadcast_to(np.asarray(color, np.float32), v.shape).copy() if np.ndim(color) == 1 else color
            parts.append((v, f, c, group))

        # skull: the face ellipsoid whose lower front folds into a flat palate at the lip line
        v, f, d = _face_surface()
        theta = np.arccos(np.clip(d[:, 1], -1, 1))  # polar angle from the top
        below = theta > _THETA_MOUTH
        front = _smoothstep(-0.025, 0.015, v[:, 2]) * below
        disc = _disc(d, (np.pi - theta) / (np.pi - _THETA_MOUTH))
        v += front[:, None] * (disc - v)
        under_hair = d[:, 1] > np.interp(d[:, 2], [-1, -0.3, 0.3, 1], [-0.45, -0.05, 0.35, 0.62]) + 0.2
        add(v, f[~under_hair[f].all(axis=1)], self._colors(v, front > 0.5), "head")
        # lower jaw: the same surface below the lip line, its top folded into a flat floor of the mouth
        v, f, d = _face_surface()
        theta = np.arccos(np.clip(d[:, 1], -1, 1))
        lid = theta < _THETA_MOUTH
        v[lid] = _disc(d[lid], theta[lid] / _THETA_MOUTH)
        v[:, 2] = np.maximum(v[:, 2], -0.015)  # flat at the back, hidden inside the skull
        add(v, f, self._colors(v, lid), "jaw")
        # inside the mouth: upper teeth with the skull, tongue and lower teeth with the jaw
        add(*_ellipsoid([0, MOUTH_Y + 0.004, 0.066], [0.024, 0.006, 0.012], 12, 20)[:2], TEETH, "head")
        add(*_ellipsoid([0, MOUTH_Y - 0.002, 0.064], [0.022, 0.004, 0.011], 12, 20)[:2], TEETH, "jaw")
        add(*_ellipsoid([0, MOUTH_Y - 0.003, 0.035], [0.026, 0.0045, 0.028], 12, 20)[:2], TONGUE, "jaw")
        # eyes (fixed gaze: FLAME motion here has no eye rotation), brows, nose, ears
        for s in (-1, 1):
            add(*_ellipsoid([s * 0.032, 0.03, 0.078], [0.013, 0.013, 0.013])[:2], SCLERA, "head")
            add(*_ellipsoid([s * 0.032, 0.03, 0.0885], [0.0058, 0.0058, 0.0058], 12, 16)[:2], PUPIL, "head")
            add(*_ellipsoid([s * 0.033, 0.054, 0.079], [0.017, 0.0035, 0.005], 12, 16)[:2], HAIR, "head")
            add(*_ellipsoid([s * 0.077, 0.01, -0.005], [0.009, 0.022, 0.013], 12, 16)[:2], SKIN, "head")
        add(*_ellipsoid([0, 0.0, 0.09], [0.011, 0.022, 0.018], 16, 20)[:2], (0.87, 0.66, 0.56), "head")
        # hair: a slightly larger shell, pulled inside the skull below a hairline
        v, f, d = _ellipsoid([0, 0.02, -0.004], [0.083, 0.11, 0.097], 28, 40)
        hairline = np.interp(d[:, 2], [-1, -0.3, 0.3, 1], [-0.45, -0.05, 0.35, 0.62])
        # the shell dives smoothly into the skull below the hairline (their intersection is the hairline)
        shrink = 0.82 + 0.18 * _smoothstep(hairline - 0.12, hairline + 0.02, d[:, 1])
        v = np.array([0, 0.02, -0.004]) + d * np.array([0.083, 0.11, 0.097]) * shrink[:, None]
        hidden = shrink < 0.83
        add(v, f[~hidden[f].all(axis=1)], HAIR, "head")  # faces entirely inside the skull are dropped
        # neck and shoulders stay still, so the head's rotation reads against them
        add(*_ellipsoid([0, -0.11, -0.012], [0.042, 0.07, 0.042])[:2], SKIN, "body")
        add(*_ellipsoid([0, -0.205, -0.02], [0.17, 0.07, 0.085])[:2], SHIRT, "body")

        offsets = np.cumsum([0] + [len(p[0]) for p in parts])
        self.rest = np.concatenate([p[0] for p in parts]).astype(np.float32)  # (V, 3)
        self.faces = np.concatenate([p[1] + o for p, o in zip(parts, offsets)]).astype(np.int32)  # (F, 3)
        self.base_colors = np.concatenate([p[2] for p in parts]).astype(np.float32)  # (V, 3)
        group = np.concatenate([[p[3]] * len(p[0]) for p in parts])
        self.jaw_idx = np.flatnonzero(group == "jaw")
        self.head_idx = np.flatnonzero(group != "body")  # jaw included
        self.center = np.array([0.0, -0.02, 0.0], np.float32)
        self.radius = 0.165

    @staticmethod
    def _colors(v, inside):
        """Skin, red lips along the lip line at the front, dark mouth colour on the folded (inner) part."""
        narrow = 1 - _smoothstep(0.028, 0.04, np.abs(v[:, 0]))  # the mouth is narrower than the jaw
        lip = (1 - _smoothstep(0.003, 0.008, np.abs(v[:, 1] - MOUTH_Y))) * _smoothstep(0.05, 0.07, v[:, 2]) * narrow
        c = np.asarray(SKIN) * (1 - lip[:, None]) + np.asarray(LIPS) * lip[:, None]
        cheek = np.asarray(SKIN) * 0.8  # inside of the cheeks beside the mouth
        c[inside] = np.asarray(MOUTH) * narrow[inside, None] + cheek * (1 - narrow[inside, None])
        return c.astype(np.float32)

    def vertices(self, exp, jaw, global_rot):
        jaw = np.atleast_2d(jaw)
        global_rot = np.atleast_2d(global_rot)
        T = len(jaw)
        out = np.broadcast_to(self.rest, (T,) + self.rest.shape).copy()  # (T, V, 3)
        Rj = rodrigues(jaw).astype(np.float32)  # (T, 3, 3)
        Rg = rodrigues(global_rot).astype(np.float32)
        hinge, pivot = JAW_HINGE.astype(np.float32), NECK_PIVOT.astype(np.float32)
        out[:, self.jaw_idx] = np.einsum("tab,tvb->tva", Rj, out[:, self.jaw_idx] - hinge) + hinge
        out[:, self.head_idx] = np.einsum("tab,tvb->tva", Rg, out[:, self.head_idx] - pivot) + pivot
        return out

    def definition(self) -> dict:
        """JSON-able mesh and rig of :meth:`vertices`: rest vertices, faces, per-vertex colours, the jaw's
        and the head's vertex indices, the jaw hinge and the neck pivot. Posing: the jaw vertices rotate
        about ``jaw_hinge`` by the jaw rotation, then the head vertices (jaw included) about ``neck_pivot``
        by the global rotation (axis-angle, Rodrigues)."""
        return {
            "kind": self.kind,
            "num_vertices": len(self.rest),
            "num_faces": len(self.faces),
            "rest": pack_array(self.rest, "float32"),
            "faces": pack_array(self.faces, "uint32"),
            "base_colors": pack_array(self.base_colors, "float32"),
            "jaw_idx": pack_array(self.jaw_idx, "uint32"),
            "head_idx": pack_array(self.head_idx, "uint32"),
            "jaw_hinge": [float(c) for c in JAW_HINGE.astype(np.float32)],
            "neck_pivot": [float(c) for c in NECK_PIVOT.astype(np.float32)],
            "center": [float(c) for c in self.center],
            "radius": self.radius,
        }
