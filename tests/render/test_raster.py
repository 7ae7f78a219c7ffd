"""Rasterisers: coverage against a brute-force reference, culling, depth test, EGL fallback."""

from __future__ import annotations

import numpy as np
import pytest

from dualtalk.errors import DualTalkError
from dualtalk.render import raster
from dualtalk.render.raster import SoftwareRasterizer, egl_available, make_rasterizer

WHITE = np.ones((3, 3), np.float32)


def _reference_coverage(xy, size):
    """Pixel centres inside the triangle, either winding (edge functions, brute force)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5

    def edge(p, q):
        return (q[0] - p[0]) * (yy - p[1]) - (q[1] - p[1]) * (xx - p[0])

    e = [edge(xy[0], xy[1]), edge(xy[1], xy[2]), edge(xy[2], xy[0])]
    return ((e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0)) | ((e[0] <= 0) & (e[1] <= 0) & (e[2] <= 0))


def test_coverage_matches_brute_force(rng):
    r = SoftwareRasterizer(48, 48)
    for trial in range(60):
        spread = 1.5 if trial % 2 else 15.0  # tiny and large triangles
        xy = (rng.uniform(8, 40, (1, 2)) + rng.standard_normal((3, 2)) * spread).astype(np.float32)
        f = np.array([[0, 1, 2]])
        drawn = [r.draw(xy, np.ones(3, np.float32), WHITE, ff, np.zeros(3))[..., 0] > 0 for ff in (f, f[:, ::-1])]
        assert not (drawn[0] & drawn[1]).any()  # exactly one winding is a front face
        mismatch = (drawn[0] | drawn[1]) != _reference_coverage(xy, 48)
        assert mismatch.sum() <= 1  # pixel centres exactly on an edge may go either way


def test_counter_clockwise_is_front_and_colours_interpolate():
    r = SoftwareRasterizer(16, 16)
    xy = np.array([[1, 1], [1, 15], [15, 1]], np.float32)  # counter-clockwise on screen (y down)
    colors = np.eye(3, dtype=np.float32)  # red, green, blue corners
    img = r.draw(xy, np.ones(3, np.float32), colors, np.array([[0, 1, 2]]), np.zeros(3))
    assert img[1, 1, 0] > 200 and img[13, 1, 1] > 180 and img[1, 13, 2] > 180  # each corner its colour
    back = r.draw(xy, np.ones(3, np.float32), colors, np.array([[0, 2, 1]]), np.zeros(3))
    assert back.max() == 0  # clockwise: culled


def test_nearest_surface_wins_whatever_the_order():
    r = SoftwareRasterizer(16, 16)
    xy = np.array([[1, 1], [1, 15], [15, 1]] * 2, np.float32)
    depth = np.array([2, 2, 2, 1, 1, 1], np.float32)  # second triangle nearer
    colors = np.array([[1, 0, 0]] * 3 + [[0, 0, 1]] * 3, np.float32)
    for faces in (np.array([[0, 1, 2], [3, 4, 5]]), np.array([[3, 4, 5], [0, 1, 2]])):
        img = r.draw(xy, depth, colors, faces, np.zeros(3))
        assert img[4, 4, 2] == 255 and img[4, 4, 0] == 0


def test_auto_falls_back_to_software_when_no_egl_context(monkeypatch):
    def no_egl(*a, **k):
        raise RuntimeError("libEGL.so: cannot open shared object file")

    monkeypatch.setattr(raster, "EGLRasterizer", no_egl)
    monkeypatch.setattr(raster, "_egl_failure", None)
    assert make_rasterizer(32, 32, "auto").name == "software"
    with pytest.raises(DualTalkError, match="EGL"):
        make_rasterizer(32, 32, "egl")
    with pytest.raises(DualTalkError, match="unknown render backend"):
        make_rasterizer(32, 32, "vulkan")


def test_egl_and_software_agree_on_a_mesh():
    ok, why = egl_available()
    if not ok:
        pytest.skip(f"no headless EGL context here ({why})")
    from dualtalk.render.heads import BuiltinHead
    from dualtalk.render.scene import Camera, shade, vertex_normals

    head = BuiltinHead()
    cam = Camera(head.center, head.radius, 96)
    v = head.vertices(np.zeros((1, 50)), np.array([[0.25, 0, 0]]), np.array([[0, 0.3, 0]]))[0]
    xy, depth = cam.project(v)
    colors = shade(head.base_colors, vertex_normals(v, head.faces))
    bg = np.array([0.9, 0.9, 0.9])
    soft = SoftwareRasterizer(96, 96).draw(xy, depth, colors, head.faces, bg).astype(int)
    egl = make_rasterizer(96, 96, "egl")
    try:
        gl = egl.draw(xy, depth, colors, head.faces, bg).astype(int)
    finally:
        egl.close()
    # same picture up to anti-aliasing along edges
    assert np.mean(np.abs(soft - gl).max(axis=2) > 40) < 0.03
