"""Camera, normals and lighting shared by both rasterisers.

The camera looks down -z at a head facing +z (FLAME's convention: y up, x to the subject's left).
Lighting is computed per vertex in numpy (a key light, a fill light, a little specular), so the
rasterisers only interpolate colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Camera:
    center: np.ndarray  # (3,) point the camera looks at
    radius: float  # half the height of the framed region, in model units
    size: int  # square image side in pixels
    distance_factor: float = 6.0  # camera distance in radii (mild perspective)

    def project(self, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(V, 3) -> pixel xy (V, 2) with y down, and depth (V,) = distance along the view axis."""
        dist = self.distance_factor * self.radius
        focal = 0.5 * self.size * dist / self.radius
        p = verts - self.center  # (V, 3)
        depth = dist - p[:, 2]  # (V,)
        xy = np.empty((len(verts), 2), np.float32)
        xy[:, 0] = 0.5 * self.size + focal * p[:, 0] / depth
        xy[:, 1] = 0.5 * self.size - focal * p[:, 1] / depth
        return xy, depth.astype(np.float32)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) of a counter-clockwise (outward) mesh."""
    tri = verts[faces]  # (F, 3, 3)
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), length = 2 * area
    n = np.zeros_like(verts)
    idx = faces.reshape(-1)  # (F*3,)
    for c in range(3):
        n[:, c] = np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=len(verts))
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


_KEY = np.array([0.45, 0.55, 1.0]) / np.linalg.norm([0.45, 0.55, 1.0])  # upper right, in front
_FILL = np.array([-0.7, 0.0, 0.7]) / np.linalg.norm([-0.7, 0.0, 0.7])
_HALF = (_KEY + np.array([0, 0, 1.0])) / np.linalg.norm(_KEY + np.array([0, 0, 1.0]))


def shade(base: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Per-vertex colour (V, 3) in [0, 1] from base colours (V, 3) and unit normals (V, 3)."""
    key = np.clip(normals @ _KEY, 0, None)[:, None]  # (V, 1)
    fill = np.clip(normals @ _FILL, 0, None)[:, None]
    spec = np.clip(normals @ _HALF, 0, None)[:, None] ** 24
    return np.clip(base * (0.30 + 0.62 * key + 0.22 * fill) + 0.10 * spec, 0, 1).astype(np.float32)
