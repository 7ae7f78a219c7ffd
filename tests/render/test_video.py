"""End to end: mp4 files (frames, audio stream, layout), the CLI, smoothing, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dualtalk.cli import main
from dualtalk.errors import DualTalkError, InputError
from dualtalk.flame import write_synthetic_flame
from dualtalk.io.motion import Motion, load_motion, save_model_motion, save_motion
from dualtalk.render import render_video, smooth_motion

REPO = Path(__file__).resolve().parents[2]
SR = 16000


def _probe(path):
    """(frames, video seconds, (width, height), audio seconds or None), read back with imageio-ffmpeg."""
    import imageio_ffmpeg

    frames, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    audio = None
    if meta.get("audio_codec"):
        raw = subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-v",
                "error",
                "-i",
                str(path),
                "-map",
                "0:a",
                "-f",
                "f32le",
                "-ac",
                "1",
                "-ar",
                str(SR),
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
        audio = len(raw) / 4 / SR
    return frames, secs, tuple(meta["size"]), audio, meta


def _first_frame(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frame = np.frombuffer(next(reader), np.uint8).reshape(meta["size"][1], meta["size"][0], 3)
    reader.close()
    return frame


@pytest.fixture
def conversation(tmp_path, rng):
    """Two people, 1.2 s: A talks (noise bursts) in the first half, B in the second."""
    T = 30
    t = np.arange(int(T / 25 * SR)) / SR
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    a = np.where(t < 0.6, voice, 0).astype(np.float32)
    b = np.where(t >= 0.6, voice, 0).astype(np.float32)
    sf.write(tmp_path / "A.wav", a, SR)
    sf.write(tmp_path / "B.wav", b[: len(b) - 3000], SR)  # shorter than the motion: padded
    for name in ("A", "B", "B_gt"):
        jaw = np.abs(rng.normal(0.1, 0.05, (T, 3))).astype(np.float32)
        save_motion(
            tmp_path / f"{name}.npz",
            Motion(rng.normal(0, 1, (T, 50)).astype(np.float32), jaw, rng.normal(0, 0.1, (T, 3)).astype(np.float32)),
        )
    return tmp_path


def test_two_heads_with_mixed_audio(conversation):
    d = conversation
    out = d / "conv.mp4"
    result = render_video(
        d / "B.npz",
        out,
        audio=d / "B.wav",
        partner_motion=d / "A.npz",
        partner_audio=d / "A.wav",
        size=96,
        backend="software",
        progress=False,
    )
    assert result["frames"] == 30 and result["backend"] == "software"
    frames, secs, size, audio, meta = _probe(out)
    assert frames == 30 and size == (192, 96) and meta["codec"] == "h264" and meta["audio_codec"] == "aac"
    assert abs(meta["fps"] - 25) < 1e-6
    assert audio == pytest.approx(30 / 25, abs=0.05)  # audio as long as the video
    assert not list(d.glob(".conv.mp4.tmp-*"))  # nothing half-written left behind


def test_ground_truth_panel_and_one_head_without_audio(conversation):
    d = conversation
    out = d / "gt.mp4"
    render_video(d / "B.npz", out, ground_truth=d / "B_gt.npz", size=64, backend="software", progress=False)
    frames, _, size, audio, _ = _probe(out)
    assert frames == 30 and size == (128, 64) and audio is None
    render_video(d / "B.npz", out, size=64, backend="software", progress=False)
    assert _probe(out)[2] == (64, 64)


def test_flame_model_and_npy_motion(conversation, rng):
    d = conversation
    flame = write_synthetic_flame(d / "generic_model.pkl", num_vertices=600, num_faces=None)
    save_model_motion(d / "B.npy", load_motion(d / "B.npz").to_model()[:10])
    out = d / "flame.mp4"
    render_video(d / "B.npy", out, flame=flame, size=64, backend="software", progress=False)
    assert _probe(out)[0] == 10
    assert (d / "generic_model.pkl.dualtalk.npz").exists()  # converted once, cached


def test_worker_processes_give_the_same_video(conversation):
    d = conversation
    one, two = d / "one.mp4", d / "two.mp4"
    render_video(d / "B.npz", one, size=64, backend="software", workers=1, progress=False)
    result = render_video(d / "B.npz", two, size=64, backend="software", workers=2, progress=False)
    assert result["workers"] == 2  # software workers fork even after an EGL context was made here
    np.testing.assert_array_equal(_first_frame(one), _first_frame(two))


def test_a_backend_failing_in_the_workers_is_one_clear_error(conversation, monkeypatch):
    from dualtalk.render import raster

    def no_egl(*a, **k):
        raise RuntimeError("eglInitialize failed")

    monkeypatch.setattr(raster, "EGLRasterizer", no_egl)  # forked workers inherit the patch
    monkeypatch.setattr(raster, "egl_contexts_made", False)
    with pytest.raises(DualTalkError, match="EGL"):
        render_video(conversation / "B.npz", conversation / "e.mp4", size=64, backend="egl", workers=2, progress=False)
    assert not (conversation / "e.mp4").exists()


def test_smoothing_is_display_only(conversation):
    d = conversation
    before = (d / "B.npz").read_bytes()
    m = load_motion(d / "B.npz")
    s = smooth_motion(m)
    assert np.abs(np.diff(s.exp, 2, axis=0)).mean() < 0.5 * np.abs(np.diff(m.exp, 2, axis=0)).mean()
    np.testing.assert_array_equal(s.jaw, m.jaw)  # the jaw is not smoothed (as in the reference)
    assert np.array_equal(load_motion(d / "B.npz").exp, m.exp)
    render_video(d / "B.npz", d / "s.mp4", smooth=True, size=64, backend="software", progress=False)
    assert (d / "B.npz").read_bytes() == before
    short = Motion(m.exp[:2], m.jaw[:2], m.global_rot[:2])
    np.testing.assert_array_equal(smooth_motion(short).exp, short.exp)  # too short to smooth


def test_errors_are_clear_and_leave_no_output(conversation):
    d = conversation
    with pytest.raises(InputError, match="motion file not found"):
        render_video(d / "missing.npz", d / "x.mp4", backend="software", progress=False)
    with pytest.raises(InputError, match=r"\.mp4"):
        render_video(d / "B.npz", d / "x.avi", backend="software", progress=False)
    with pytest.raises(DualTalkError, match="multiple of 16"):
        render_video(d / "B.npz", d / "x.mp4", size=100, backend="software", progress=False)
    with pytest.raises(DualTalkError, match="partner-motion"):
        render_video(d / "B.npz", d / "x.mp4", partner_audio=d / "A.wav", backend="software", progress=False)
    short = d / "A_short.npz"
    with np.load(d / "A.npz") as a:
        np.savez(short, exp=a["exp"][:3], pose=a["pose"][:3])
    with pytest.raises(InputError, match="partner motion has 3 frames") as info:  # not another conversation's
        render_video(d / "B.npz", d / "x.mp4", partner_motion=short, backend="software", progress=False)
    assert str(short) in str(info.value)
    (d / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(InputError, match="bad.wav"):
        render_video(d / "B.npz", d / "x.mp4", audio=d / "bad.wav", backend="software", progress=False)
    sf.write(d / "long.wav", np.zeros(3 * SR, np.float32), SR)  # 75 frames' worth beside 30 frames
    with pytest.raises(InputError, match=r"long.wav: the audio has 75 frames' worth \(3.00 s\) but the motion has 30"):
        render_video(d / "B.npz", d / "x.mp4", audio=d / "long.wav", backend="software", progress=False)
    assert not (d / "x.mp4").exists() and not list(d.glob(".x.mp4*"))


def test_cli_render_and_plot(conversation, capsys, monkeypatch):
    d = conversation
    monkeypatch.setenv("DUALTALK_RENDER_BACKEND", "software")
    code = main(
        [
            "render",
            "--motion",
            str(d / "B.npz"),
            "--audio",
            str(d / "B.wav"),
            "--partner-motion",
            str(d / "A.npz"),
            "--partner-audio",
            str(d / "A.wav"),
            "--out",
            str(d / "c.mp4"),
            "--size",
            "64",
            "--backend",
            "software",
            "--name",
            "Bob",
            "--partner-name",
            "Alice",
        ]
    )
    assert code == 0 and "30 frames" in capsys.readouterr().out
    assert _probe(d / "c.mp4")[:3] == (30, 1.2, (128, 64))
    code = main(
        [
            "plot",
            "--motion",
            str(d / "B.npz"),
            "--audio",
            str(d / "B.wav"),
            "--partner-motion",
            str(d / "A.npz"),
            "--partner-audio",
            str(d / "A.wav"),
            "--out",
            str(d / "c.png"),
        ]
    )
    assert code == 0 and (d / "c.png").stat().st_size > 10_000
    code = main(["render", "--motion", str(d / "nope.npz"), "--out", str(d / "n.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "nope.npz" in err and "Traceback" not in err
    assert not (d / "n.mp4").exists()


def test_cli_subprocess(conversation):
    d = conversation
    exe = Path(sys.executable).parent / "dualtalk"
    if not exe.exists():
        pytest.skip("dualtalk console script not installed next to this python")
    run = subprocess.run(
        [
            str(exe),
            "render",
            "--motion",
            str(d / "B.npz"),
            "--out",
            str(d / "p.mp4"),
            "--size",
            "64",
            "--backend",
            "software",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert _probe(d / "p.mp4")[0] == 30
    run = subprocess.run(
        [str(exe), "render", "--motion", str(d / "B.npz"), "--out", str(d / "p.mp4"), "--flame", str(d / "B.wav")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "B.wav" in run.stderr and "Traceback" not in run.stderr


def test_rendering_never_imports_the_model_or_torch(conversation):
    code = (
        "import sys; from dualtalk.render import render_video, plot_motion; "
        f"render_video(r'{conversation / 'B.npz'}', r'{conversation / 'i.mp4'}', size=64, backend='software', "
        "progress=False); "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('dualtalk.model', 'transformers'))]; "
        "assert not bad, bad"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
