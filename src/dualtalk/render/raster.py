"""Triangle rasterisers: moderngl on a headless EGL context, and a numpy software fallback.

Both draw the same thing: triangles given in *screen space* (pixel x, pixel y, depth = distance from
the camera) with one colour per vertex (lighting is computed beforehand, see ``scene.py``), colours
interpolated across each triangle, nearest surface wins, back faces culled. So the two backends give
the same picture; the EGL one adds 4x multisample anti-aliasing.

:func:`make_rasterizer` picks moderngl+EGL when a context can be made (Mesa's llvmpipe software
driver is enough, no GPU or display needed) and falls back to :class:`SoftwareRasterizer` otherwise.

The software rasteriser is vectorised numpy scan conversion, all triangles at once: one entry per
(triangle, pixel row), the span of pixel centres inside the triangle on that row from its edge
crossings, one entry per covered pixel with its barycentric weights, and a depth buffer
(``np.minimum.at``) that keeps the nearest surface per pixel.
"""

from __future__ import annotations

import os

import numpy as np

BACKENDS = ("auto", "egl", "software")
egl_contexts_made = False


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated: the position of each repeated entry in its run."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts  # (n,)
    return (np.arange(total) - np.repeat(starts, counts)).astype(np.int32)


class SoftwareRasterizer:
    name = "software"

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)

    def draw(
        self, xy: np.ndarray, depth: np.ndarray, colors: np.ndarray, faces: np.ndarray, background: np.ndarray
    ) -> np.ndarray:
        """xy (V, 2) pixel coords (x right, y down), depth (V,), colors (V, 3) in [0, 1], faces (F, 3).

        Returns (H, W, 3) uint8. Triangles counter-clockwise as seen by the camera are front faces.
        """
        H, W = self.height, self.width
        image = np.empty((H * W, 3), np.uint8)
        image[:] = np.clip(np.asarray(background) * 255 + 0.5, 0, 255).astype(np.uint8)
        xy = np.asarray(xy, np.float32)
        tri = xy[faces]  # (F, 3, 2)
        x0, y0, x1, y1, x2, y2 = (tri[:, k // 2, k % 2] for k in range(6))  # each (F,)
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # (F,) < 0: counter-clockwise with y down
        lo = np.maximum(np.floor(tri.min(axis=1) - 0.5).astype(np.int32) + 1, 0)  # (F, 2) first pixel inside
        hi = np.minimum(np.floor(tri.max(axis=1) - 0.5).astype(np.int32), [W - 1, H - 1])  # (F, 2) last one
        extent = hi - lo + 1  # (F, 2)
        keep = (area < -1e-6) & (extent > 0).all(axis=1) & (depth[faces] > 0).all(axis=1)
        f = np.flatnonzero(keep)
        if len(f) == 0:
            return image.reshape(H, W, 3)
        X, Y = tri[f, :, 0], tri[f, :, 1]  # (n, 3) each
        # 1. one entry per (triangle, pixel row) its box covers
        ny = extent[f, 1]  # (n,)
        fr = np.repeat(np.arange(len(f)), ny)  # (R,) triangle of each row entry
        row = lo[f, 1][fr] + _ranks(ny)  # (R,)
        cy = (row + 0.5).astype(np.float32)
        # 2. the span of pixel centres inside the triangle on that row, from its crossings with the edges
        ya, yb = Y[fr], np.roll(Y, -1, axis=1)[fr]  # (R, 3) edge k runs from vertex k to vertex k+1
        xa, xb = X[fr], np.roll(X, -1, axis=1)[fr]
        dy = yb - ya
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (cy[:, None] - ya) / dy  # (R, 3)
        cross = (t >= 0) & (t <= 1) & (dy != 0)
        xs = xa + t * (xb - xa)
        lo_x, hi_x = np.where(cross, xs, np.inf), np.where(cross, xs, -np.inf)
        xl = np.minimum(np.minimum(lo_x[:, 0], lo_x[:, 1]), lo_x[:, 2])  # (R,) (faster than .min(axis=1))
        xr = np.maximum(np.maximum(hi_x[:, 0], hi_x[:, 1]), hi_x[:, 2])
        ok = np.isfinite(xl) & np.isfinite(xr)
        c_lo = np.maximum(np.ceil(np.where(ok, xl, 0) - 0.5), lo[f, 0][fr]).astype(np.int32)
        c_hi = np.minimum(np.floor(np.where(ok, xr, -1) - 0.5), hi[f, 0][fr]).astype(np.int32)
        count = np.where(ok, np.maximum(c_hi - c_lo + 1, 0), 0)  # (R,)
        # 3. one entry per covered pixel: barycentric weights relative to vertex 2 (precise for small triangles)
        pr = np.repeat(np.arange(len(fr)), count)  # (P,)
        px = c_lo[pr] + _ranks(count)
        py = row[pr]
        ff = fr[pr]  # (P,) index into f
        # per-triangle constants, gathered once per pixel: w0 = a0 ex + b0 ey, w1 = a1 ex + b1 ey with
        # (ex, ey) the pixel centre relative to vertex 2, and depth z = z2 + w0 (z0 - z2) + w1 (z1 - z2)
        inv = 1.0 / area[f]
        zf = depth[faces[f]].astype(np.float32)  # (n, 3)
        table = np.stack(
            [
                X[:, 2],
                Y[:, 2],
                (Y[:, 1] - Y[:, 2]) * inv,
                (X[:, 2] - X[:, 1]) * inv,
                (Y[:, 2] - Y[:, 0]) * inv,
                (X[:, 0] - X[:, 2]) * inv,
                zf[:, 2],
                zf[:, 0] - zf[:, 2],
                zf[:, 1] - zf[:, 2],
            ],
            axis=1,
        )  # (n, 9)
        g = table[ff]  # (P, 9)
        ex = (px + 0.5).astype(np.float32) - g[:, 0]
        ey = (py + 0.5).astype(np.float32) - g[:, 1]
        w0 = g[:, 2] * ex + g[:, 3] * ey  # (P,)
        w1 = g[:, 4] * ex + g[:, 5] * ey
        pix = py * W + px
        z = g[:, 6] + w0 * g[:, 7] + w1 * g[:, 8]
        zbuf = np.full(H * W, np.inf, np.float32)
        np.minimum.at(zbuf, pix, z)  # nearest depth per pixel
        win = z <= zbuf[pix]
        cf = np.asarray(colors, np.float32)[faces[f]]  # (n, 3, 3) per triangle corner
        ctab = np.concatenate([cf[:, 2], cf[:, 0] - cf[:, 2], cf[:, 1] - cf[:, 2]], axis=1)[ff[win]]  # (m, 9)
        w0, w1 = w0[win, None], w1[win, None]
        col = ctab[:, 0:3] + w0 * ctab[:, 3:6] + w1 * ctab[:, 6:9]  # (m, 3)
        image[pix[win]] = np.clip(col * 255 + 0.5, 0, 255).astype(np.uint8)
        return image.reshape(H, W, 3)

    def close(self):
        pass


_VERTEX_SHADER = """
#version 330
in vec3 in_pos;
in vec3 in_color;
out vec3 v_color;
void main() {
    gl_Position = vec4(in_pos, 1.0);
    v_color = in_color;
}
"""
_FRAGMENT_SHADER = """
#version 330
in vec3 v_color;
out vec4 f_color;
void main() {
    f_color = vec4(v_color, 1.0);
}
"""


class EGLRasterizer:
    """moderngl on a standalone EGL context (GPU driver, or Mesa llvmpipe on CPU-only machines)."""

    name = "egl"

    def __init__(self, width: int, height: int, samples: int = 4):
        import moderngl

        self.width, self.height = int(width), int(height)
        global egl_contexts_made
        # moderngl's stub types every **settings value as a dict; the backend setting is a string
        self.ctx = moderngl.create_context(standalone=True, backend="egl")  # type: ignore[arg-type]
        egl_contexts_made = True  # a process with an EGL context must not fork render workers
        self.prog = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        size = (self.width, self.height)
        self.msaa = self.ctx.framebuffer(
            self.ctx.renderbuffer(size, 3, samples=samples), self.ctx.depth_renderbuffer(size, samples=samples)
        )
        self.resolved = self.ctx.framebuffer(self.ctx.renderbuffer(size, 3))
        self.ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self.ctx.front_face = "ccw"
        self._meshes: dict = {}  # faces identity -> (ibo, vbo, vao, capacity)

    def _vao(self, faces: np.ndarray, num_vertices: int):
        key = (faces.__array_interface__["data"][0], faces.shape)
        entry = self._meshes.get(key)
        if entry is None or entry[3] < num_vertices:
            ibo = self.ctx.buffer(np.ascontiguousarray(faces, dtype=np.int32).tobytes())
            vbo = self.ctx.buffer(reserve=num_vertices * 6 * 4, dynamic=True)
            vao = self.ctx.vertex_array(
                self.prog, [(vbo, "3f 3f", "in_pos", "in_color")], index_buffer=ibo, index_element_size=4
            )
            entry = (ibo, vbo, vao, num_vertices, faces)  # keep faces alive so the key stays unique
            self._meshes[key] = entry
        return entry

    def draw(self, xy, depth, colors, faces, background) -> np.ndarray:
        near, far = 1e-3, float(depth.max()) * 2 + 1e-3
        data = np.empty((len(xy), 6), np.float32)
        data[:, 0] = 2.0 * xy[:, 0] / self.width - 1.0  # pixel -> normalised device coordinates (y up)
        data[:, 1] = 1.0 - 2.0 * xy[:, 1] / self.height
        data[:, 2] = 2.0 * (depth - near) / (far - near) - 1.0
        data[:, 3:] = colors
        _, vbo, vao, _, _ = self._vao(faces, len(xy))
        vbo.write(data.tobytes())
        self.msaa.use()
        red, green, blue = (float(c) for c in background)  # an RGB colour
        self.msaa.clear(red, green, blue, 1.0, depth=1.0)
        vao.render(vertices=faces.size)
        self.ctx.copy_framebuffer(self.resolved, self.msaa)
        raw = self.resolved.read(components=3, alignment=1)
        return np.frombuffer(raw, np.uint8).reshape(self.height, self.width, 3)[::-1].copy()  # GL rows are bottom-up

    def close(self):
        for ibo, vbo, vao, _, _ in self._meshes.values():
            vao.release(), vbo.release(), ibo.release()
        self._meshes.clear()
        self.ctx.release()


_egl_failure: str | None = None


def egl_available() -> tuple[bool, str]:
    """(True, renderer name) when a headless EGL context can be made here, else (False, reason)."""
    try:
        r = EGLRasterizer(16, 16)
    except Exception as exc:  # no libEGL, no driver, no moderngl ...
        return False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    name = r.ctx.info.get("GL_RENDERER", "unknown")
    r.close()
    return True, name


def make_rasterizer(width: int, height: int, backend: str = "auto"):
    """A rasteriser for ``backend`` ("auto": EGL if a context can be made, else software)."""
    global _egl_failure
    if backend not in BACKENDS:
        from ..errors import DualTalkError

        raise DualTalkError(f"unknown render backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if backend == "software" or (
        backend == "auto" and (_egl_failure or os.environ.get("DUALTALK_RENDER_BACKEND") == "software")
    ):
        return SoftwareRasterizer(width, height)
    try:
        return EGLRasterizer(width, height)
    except Exception as exc:
        _egl_failure = f"{type(exc).__name__}: {exc}"
        if backend == "egl":
            from ..errors import DualTalkError

            raise DualTalkError(
                f"cannot create a headless EGL context ({_egl_failure}); install libEGL and "
                "Mesa (Debian: apt-get install libegl1 libgl1-mesa-dri) or use --backend software"
            ) from None
        return SoftwareRasterizer(width, height)
