"""Rendered frames of known poses, checked by pixels (software rasteriser: runs on any machine)."""

from __future__ import annotations

import numpy as np
import pytest

from dualtalk.flame import load_flame, write_synthetic_flame
from dualtalk.io.motion import Motion
from dualtalk.render.heads import BuiltinHead, FlameHead
from dualtalk.render.video import BACKGROUND, FrameRenderer, Panel

SIZE = 128
BG = np.round(BACKGROUND * 255).astype(int)


def _motion(jaw=(0, 0, 0), rot=(0, 0, 0), exp=None, T=1):
    exp = np.zeros((T, 50)) if exp is None else np.tile(exp, (T, 1))
    return Motion(exp.astype(np.float32), np.tile(np.float32(jaw), (T, 1)), np.tile(np.float32(rot), (T, 1)))


def _frame(head, motion, speaking=None, strip=None):
    strip = head.kind == "builtin" if strip is None else strip
    r = FrameRenderer([Panel(head, motion, "B", speaking, strip)], SIZE, backend="software")
    try:
        return r.render(0).astype(int)
    finally:
        r.close()


@pytest.fixture(scope="module")
def builtin():
    return BuiltinHead()


def _head_mask(img):
    return np.abs(img - BG).sum(axis=2) > 30


def test_open_jaw_changes_the_mouth_region_only(builtin):
    closed = _frame(builtin, _motion())
    opened = _frame(builtin, _motion(jaw=(0.35, 0, 0)))
    changed = np.abs(opened - closed).sum(axis=2) > 60  # (H, W)
    rows = np.flatnonzero(changed.any(axis=1))
    mouth_row = int(SIZE * 0.56)  # the lip line sits a little below the image centre
    assert rows.min() >= mouth_row - SIZE // 10  # nothing above the mouth moved (eyes, nose, hair)
    assert changed[mouth_row - 4 : mouth_row + 16].sum() > 40
    # the open mouth shows its dark inside
    region = opened[mouth_row - 2 : mouth_row + 14, SIZE // 2 - 12 : SIZE // 2 + 12]
    assert (region.sum(axis=2) < 200).sum() > 20
    closed_region = closed[mouth_row - 2 : mouth_row + 14, SIZE // 2 - 12 : SIZE // 2 + 12]
    assert (closed_region.sum(axis=2) < 200).sum() < (region.sum(axis=2) < 200).sum() / 3


@pytest.mark.parametrize("sign", [1, -1])
def test_yaw_moves_the_head_silhouette_sideways(builtin, sign):
    rows = slice(int(SIZE * 0.08), int(SIZE * 0.45))  # the cranium, above the (static) neck
    front = _head_mask(_frame(builtin, _motion()))[rows]
    turned = _head_mask(_frame(builtin, _motion(rot=(0, sign * 0.6, 0))))[rows]
    cx = lambda m: np.nonzero(m)[1].mean()  # noqa: E731
    shift = cx(turned) - cx(front)
    assert sign * shift > 1.5  # positive yaw turns the head (and its mass) towards image right
    # the body does not turn
    body = slice(int(SIZE * 0.9), SIZE - 14)
    np.testing.assert_array_equal(
        _head_mask(_frame(builtin, _motion()))[body, :20],
        _head_mask(_frame(builtin, _motion(rot=(0, sign * 0.6, 0))))[body, :20],
    )


def test_positive_pitch_nods_the_face_down(builtin):
    def pupil_row(img):  # mean row of the near-black pupils
        rows, _ = np.nonzero(img[: SIZE * 3 // 4].sum(axis=2) < 120)
        return rows.mean()

    level = pupil_row(_frame(builtin, _motion()))
    assert pupil_row(_frame(builtin, _motion(rot=(0.4, 0, 0)))) > level + 3
    assert pupil_row(_frame(builtin, _motion(rot=(-0.4, 0, 0)))) < level - 3


def test_caption_shows_speaking_or_listening(builtin):
    speaking = _frame(builtin, _motion(), speaking=np.array([True]))
    listening = _frame(builtin, _motion(), speaking=np.array([False]))
    band = (slice(0, SIZE // 8), slice(0, SIZE))
    green = lambda im: ((im[..., 1] > im[..., 0] + 40) & (im[..., 1] > im[..., 2] + 40)).sum()  # noqa: E731
    assert green(speaking[band]) > 10 and green(listening[band]) == 0


def test_heat_strip_shows_the_expression_coefficients(builtin):
    zero = _frame(builtin, _motion())
    exp = np.zeros(50)
    exp[0], exp[49] = 3.0, -3.0
    coloured = _frame(builtin, _motion(exp=exp))
    strip = slice(SIZE - 12, SIZE - 4)
    diff = np.abs(coloured[strip] - zero[strip]).sum(axis=2) > 60
    cols = np.flatnonzero(diff.any(axis=0))
    assert cols.min() < SIZE * 0.15 and cols.max() > SIZE * 0.85  # first and last cells
    assert not diff[:, SIZE // 3 : 2 * SIZE // 3].any()  # the coefficients in between did not change
    left, right = coloured[strip, cols.min() + 1], coloured[strip, cols.max() - 1]
    assert left[:, 0].mean() > left[:, 2].mean() + 60  # positive: red
    assert right[:, 2].mean() > right[:, 0].mean() + 60  # negative: blue
    # the built-in head itself does not change with expression (nothing pretends to be an expression)
    face = slice(SIZE // 8, SIZE // 2)
    np.testing.assert_array_equal(zero[face], coloured[face])


@pytest.fixture(scope="module")
def flame_head(tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    return FlameHead(load_flame(write_synthetic_flame(path, num_vertices=2000, num_faces=None, seed=2)))


def test_flame_head_renders_expression_and_rotation(flame_head):
    neutral = _frame(flame_head, _motion())
    mask = _head_mask(neutral)
    assert 0.15 < mask.mean() < 0.8  # a head fills a good part of the frame
    exp = np.zeros(50)
    exp[:5] = 3.0
    expressive = _frame(flame_head, _motion(exp=exp))
    assert (np.abs(expressive - neutral).sum(axis=2) > 30).mean() > 0.02  # expression changes the surface
    cx = lambda m: np.nonzero(m)[1].mean()  # noqa: E731
    assert abs(cx(_head_mask(_frame(flame_head, _motion(rot=(0, 0, 0.5))))) - cx(mask)) > 1.0  # roll


@pytest.mark.parametrize("size", [64, 96, 128, 192, 512])
def test_overlay_text_fits_small_panels(size):
    """Captions and the strip's words shrink (or, where nothing legible fits, give way) so that nothing
    runs past a panel's edge, at every --size."""
    from dualtalk.render.overlay import Caption, ExpressionStrip

    cap = Caption("B \u00b7 ground truth", size)
    assert all(s.shape[1] <= size - 2 * cap.margin for s in cap.sprites.values())
    strip = ExpressionStrip(size)
    assert strip.label.shape[1] <= size and strip.note.shape[1] <= size
    if size >= 384:  # the full words at the usual sizes
        assert strip.label.shape[0] > 0 and strip.note.shape[0] > 0
