"""2-D overlays drawn onto rendered panels: captions, the expression heat strip, labels.

Text is rasterised once into RGBA sprites with Pillow (DejaVu Sans, which matplotlib ships) and then
alpha-blended per frame with numpy, so per-frame cost stays tiny.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..layout import N_EXP

SPEAKING = (0.16, 0.62, 0.28)
LISTENING = (0.55, 0.55, 0.58)


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        path = font_manager.findfont(
            font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
        )
        return ImageFont.truetype(path, size)
    except Exception:  # pragma: no cover - matplotlib always ships DejaVu
        return ImageFont.load_default(size=size)


def text_sprite(text: str, size: int, color=(0.1, 0.1, 0.1), bold: bool = False, pad: int = 0, box=None) -> np.ndarray:
    """RGBA float sprite (h, w, 4) of one line of text, optionally on a rounded box of colour ``box``."""
    from PIL import Image, ImageDraw

    font = _font(size, bold)
    left, top, right, bottom = font.getbbox(text)
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    img = Image.new("RGBA", (max(w, 1), max(h, 1)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if box is not None:
        draw.rounded_rectangle(
            [0, 0, w - 1, h - 1], radius=max(2, h // 3), fill=tuple(int(255 * c) for c in box) + (235,)
        )
    draw.text((pad - left, pad - top), text, font=font, fill=tuple(int(255 * c) for c in color) + (255,))
    return np.asarray(img, np.float32) / 255.0


def blend(image: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend an RGBA float sprite onto a uint8 image (H, W, 3) in place at top-left (x, y)."""
    H, W = image.shape[:2]
    h, w = sprite.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    s = sprite[y0 - y : y1 - y, x0 - x : x1 - x]
    a = s[..., 3:4]
    region = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (region * (1 - a) + s[..., :3] * 255 * a + 0.5).astype(np.uint8)


def vstack(sprites: list[np.ndarray], gap: int) -> np.ndarray:
    """Stack RGBA sprites top to bottom, each centred horizontally."""
    width = max(sp.shape[1] for sp in sprites)
    height = sum(sp.shape[0] for sp in sprites) + gap * (len(sprites) - 1)
    out = np.zeros((height, width, 4), sprites[0].dtype)
    y = 0
    for sp in sprites:
        x = (width - sp.shape[1]) // 2
        out[y : y + sp.shape[0], x : x + sp.shape[1]] = sp
        y += sp.shape[0] + gap
    return out


def hstack(sprites: list[np.ndarray], gap: int) -> np.ndarray:
    """Place RGBA sprites left to right, each centred vertically: ``vstack`` of the transposed sprites."""
    return np.ascontiguousarray(vstack([sp.transpose(1, 0, 2) for sp in sprites], gap).transpose(1, 0, 2))


def fitted(make, size: int, width: int, smallest: int = 6) -> np.ndarray:
    """``make(font_size)``, the font shrunk from ``size`` until the sprite is at most ``width`` pixels wide
    (small panels, long names); at ``smallest`` it is taken as it is."""
    sprite = make(size)
    while sprite.shape[1] > width and size > smallest:
        size -= 1
        sprite = make(size)
    return sprite


class Caption:
    """Name and, when the person's audio is known, a speaking / listening tag; top-left of a panel."""

    def __init__(self, name: str, panel_size: int):
        fs = max(10, panel_size // 30)
        self.margin = max(4, panel_size // 48)
        width = panel_size - 2 * self.margin

        def caption(tag: bool | None, fs: int) -> np.ndarray:
            title = text_sprite(name, fs, (0.12, 0.12, 0.14), bold=True)
            if tag is None:
                return title
            if tag:
                box = text_sprite("\u25cf speaking", int(fs * 0.85), (1, 1, 1), bold=True, pad=fs // 4, box=SPEAKING)
            else:
                box = text_sprite("listening", int(fs * 0.85), (1, 1, 1), pad=fs // 4, box=LISTENING)
            return hstack([title, box], gap=fs // 2)

        self.sprites = {k: fitted(lambda s, k=k: caption(k, s), fs, width) for k in (None, True, False)}
        for k in (True, False):
            if self.sprites[k].shape[1] > width:  # a tiny panel: the name alone
                self.sprites[k] = self.sprites[None]

    def draw(self, image: np.ndarray, speaking: bool | None) -> None:
        blend(image, self.sprites[speaking], self.margin, self.margin)


def _coolwarm_lut() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["coolwarm"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)  # (256, 3)


class ExpressionStrip:
    """The 50 expression coefficients as a live heat strip (blue negative, red positive), bottom of a panel.

    Shown with the built-in head, which has no expression blendshapes: the coefficients are displayed as
    numbers, and the label says the full face needs a FLAME model file.
    """

    def __init__(self, panel_size: int, num: int = N_EXP, scale: float = 2.5):
        self.num, self.scale = num, scale
        self.lut = _coolwarm_lut()
        fs = max(9, panel_size // 42)
        m = max(4, panel_size // 48)
        self.cell = max(1, (panel_size - 2 * m) // num)
        self.height = max(6, panel_size // 28)
        self.x0 = (panel_size - self.cell * num) // 2
        self.y0 = panel_size - m - self.height
        width = panel_size - 2 * m
        label = f"expression coefficients 1\u2013{num}  (blue \u2212, red +)"
        self.label = fitted(lambda s: text_sprite(label, s, (0.15, 0.15, 0.18)), fs, width)
        if self.label.shape[1] > width:  # a small panel: fewer words
            short = f"exp 1\u2013{num} (blue \u2212, red +)"
            self.label = fitted(lambda s: text_sprite(short, s, (0.15, 0.15, 0.18)), fs, width)
        note_color = (0.35, 0.2, 0.1)
        self.note = text_sprite(
            "built-in head: jaw + head rotation only \u00b7 full face needs --flame FILE", fs, note_color
        )
        if self.note.shape[1] > width:  # small panels: the same words on two lines (smaller still if need be)
            self.note = fitted(
                lambda s: vstack(
                    [
                        text_sprite("built-in head: jaw + head rotation only", s, note_color),
                        text_sprite("full face needs --flame FILE", s, note_color),
                    ],
                    gap=max(1, s // 4),
                ),
                fs,
                width,
            )
        nothing = np.zeros((0, 0, 4), np.float32)
        self.note = self.note if self.note.shape[1] <= width else nothing  # a tiny panel: no words that do not fit
        self.label = self.label if self.label.shape[1] <= width else nothing
        self.label_y = self.y0 - self.label.shape[0] - max(2, fs // 3)
        self.note_y = self.label_y - self.note.shape[0] - max(2, fs // 3)
        self.panel_size = panel_size
        self.backing_y = self.note_y - m // 2
        backing = np.zeros((panel_size - self.backing_y, panel_size, 4), np.float32)
        backing[..., :3], backing[..., 3] = 1.0, 0.72  # a light band so the text reads over the shoulders
        self.backing = backing

    def draw(self, image: np.ndarray, exp: np.ndarray) -> None:
        blend(image, self.backing, 0, self.backing_y)
        blend(image, self.note, (self.panel_size - self.note.shape[1]) // 2, self.note_y)
        blend(image, self.label, (self.panel_size - self.label.shape[1]) // 2, self.label_y)
        idx = np.clip(((np.asarray(exp[: self.num]) / self.scale + 1) * 127.5), 0, 255).astype(np.int64)  # (50,)
        colors = self.lut[idx]  # (50, 3)
        strip = np.repeat(colors, self.cell, axis=0)  # (50*cell, 3)
        image[self.y0 : self.y0 + self.height, self.x0 : self.x0 + len(strip)] = strip[None]
        image[self.y0 : self.y0 + self.height, self.x0 + self.cell * np.arange(1, self.num)] = (
            image[self.y0 : self.y0 + self.height, self.x0 + self.cell * np.arange(1, self.num)] * 0.8
        ).astype(np.uint8)
