"""Motion curves with speaking bands."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dualtalk.errors import InputError
from dualtalk.io.motion import Motion
from dualtalk.render import plot_motion


def _motion(rng, T=100):
    return Motion(
        rng.normal(0, 1, (T, 50)).astype(np.float32),
        np.abs(rng.normal(0.1, 0.05, (T, 3))).astype(np.float32),
        rng.normal(0, 0.1, (T, 3)).astype(np.float32),
    )


def test_two_people_with_speaking_bands(tmp_path, rng):
    t = np.arange(4 * 16000) / 16000
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    a, b = np.where(t < 2, voice, 0), np.where(t >= 2, voice, 0)
    out = plot_motion(
        _motion(rng), tmp_path / "curves.png", audio=b, partner_motion=_motion(rng, 97), partner_audio=a, num_exp=4
    )
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape[0] > img.shape[1] * 0.6  # 7 stacked rows
    blue = ((img[..., 2] - img[..., 0]) > 80).sum()  # person B's colour (speech band, curves)
    orange = ((img[..., 0] - img[..., 2]) > 80).sum()  # partner A's colour
    assert blue > 1000 and orange > 1000


def test_files_of_another_conversation_are_refused(tmp_path, rng):
    """A partner or audio more than 5 frames off the motion's length is another conversation's (render and
    plot agree): one error naming the file, nothing drawn."""
    import soundfile as sf

    from dualtalk.io.motion import save_motion

    partner = tmp_path / "A.npz"
    save_motion(partner, _motion(rng, 90_000))  # an hour beside 4 s
    with pytest.raises(InputError, match=r"A.npz: the partner motion has 90000 frames but the motion has 100"):
        plot_motion(_motion(rng), tmp_path / "x.png", partner_motion=partner)
    wav = tmp_path / "B.wav"
    sf.write(str(wav), np.zeros(3 * 16000, np.float32), 16000)
    with pytest.raises(InputError, match=r"B.wav: the audio has 75 frames' worth \(3.00 s\)"):
        plot_motion(_motion(rng), tmp_path / "x.png", audio=wav)
    assert not (tmp_path / "x.png").exists()


def test_one_person_without_audio_and_bad_output(tmp_path, rng):
    out = plot_motion(_motion(rng), tmp_path / "one.svg")
    assert out.read_text().lstrip().startswith("<?xml")
    with pytest.raises(InputError, match="png"):
        plot_motion(_motion(rng), tmp_path / "curves.jpeg")


def test_all_fifty_coefficients_plot_without_warnings(tmp_path, rng):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned that a 50-entry legend did not fit
        out = plot_motion(_motion(rng), tmp_path / "all.png", num_exp=50)
    assert out.stat().st_size > 0


def test_arrays_are_checked_as_files_are(tmp_path, rng):
    """Audio and motion given as arrays: int16 scaled as a file's samples, stereo and NaN refused, a list
    named (not a TypeError from deep inside)."""
    from dualtalk.errors import DualTalkError
    from dualtalk.render.video import as_audio, as_motion

    x = np.clip(0.3 * rng.standard_normal(1600), -0.99, 0.99).astype(np.float32)
    np.testing.assert_allclose(as_audio((x * 32768).astype(np.int16)), x, atol=1e-4)
    with pytest.raises(DualTalkError, match="mono, shape"):
        as_audio(np.stack([x, x], 1))
    with pytest.raises(DualTalkError, match="NaN"):
        as_audio(np.full(10, np.nan, np.float32))
    with pytest.raises(DualTalkError, match="got list"):
        as_audio(list(x))
    with pytest.raises(DualTalkError, match="NaN"):
        as_motion(np.full((5, 56), np.nan, np.float32))
    with pytest.raises(DualTalkError, match=r"\(T, 56\) in model order with T >= 1, got shape \(0, 56\)"):
        as_motion(np.zeros((0, 56), np.float32))
    with pytest.raises(DualTalkError, match=r"got shape \(5, 55\)"):
        plot_motion(np.zeros((5, 55), np.float32), tmp_path / "x.png")
