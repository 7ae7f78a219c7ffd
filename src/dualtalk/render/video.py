"""Render a conversation to an mp4: one or two heads (plus an optional ground truth), captions, audio.

    from dualtalk.render import render_video
    render_video("B.npz", "conversation.mp4", audio="B.wav", partner_motion="A.npz", partner_audio="A.wav")

Layout, left to right: partner, generated person, ground truth (each a square ``size`` x ``size``
panel). Each caption names the person and says whether they are speaking or listening, from voice
activity on their own audio. The video is H.264 (yuv420p, faststart) at 25 fps with the two audio
tracks mixed into one AAC track cut or padded to exactly the video's length, so browsers play it.
Frames are rendered by worker processes when that helps (long videos, more than one core).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DualTalkError, InputError, require
from ..io.audio import load_audio, samples_problem
from ..io.conversation import MAX_LENGTH_MISMATCH_FRAMES
from ..io.files import atomic_path
from ..io.motion import Motion, load_model_motion, motion_values_problem
from ..io.progress import progress as progress_bar
from ..io.threads import limit_threads, single_thread_env, usable_cpus
from ..layout import FPS, SAMPLE_RATE, frames_for
from .heads import BuiltinHead, FlameHead, Head
from .overlay import Caption, ExpressionStrip
from .raster import BACKENDS, make_rasterizer
from .scene import Camera, shade, vertex_normals

BACKGROUND = np.array([0.94, 0.94, 0.95], np.float32)


# ----------------------------------------------------------------------------------------------------
# inputs


def as_motion(x, what: str = "motion") -> Motion:
    """A :class:`Motion` from a Motion, a (T, 56) model-order array, or a ``.npz`` / ``.npy`` file path; the
    values checked as a file's are (at least one frame, finite, of a face's range)."""
    if isinstance(x, (str, os.PathLike)):
        return Motion.from_model(load_model_motion(x))
    if isinstance(x, Motion):
        arr = x.to_model()
    elif isinstance(x, np.ndarray):
        arr = x
    else:
        raise DualTalkError(f"the {what} must be a Motion, a (T, 56) array or a file path, got {type(x).__name__}")
    if arr.ndim != 2 or arr.shape[1] != 56 or arr.shape[0] == 0:
        raise DualTalkError(f"the {what} must be (T, 56) in model order with T >= 1, got shape {arr.shape}")
    problem = motion_values_problem(np.asarray(arr, np.float32))
    if problem is not None:
        raise DualTalkError(f"the {what} {problem}")
    return x if isinstance(x, Motion) else Motion.from_model(arr)


def check_video_size(size) -> None:
    """A panel size the encoder takes (a multiple of 16, 64 to 2048 pixels): one error line otherwise."""
    if not (isinstance(size, int) and not isinstance(size, bool) and 64 <= size <= 2048 and size % 16 == 0):
        raise DualTalkError(f"--size must be a multiple of 16 between 64 and 2048, got {size}")


def check_conversation(motion: Motion, others: list[tuple[object, object, str]]) -> None:
    """Everything drawn beside ``motion`` (other people's motion, audio: (the loaded value, what the user gave,
    a name); None values skipped) is of its conversation: within :data:`MAX_LENGTH_MISMATCH_FRAMES` frames of
    its length. One :class:`InputError` naming the file otherwise (another conversation's file is a mistake,
    not something to pad)."""
    for value, given, what in others:
        if value is None:
            continue
        if isinstance(value, Motion):
            frames, unit = len(value), "frames"
        else:
            samples = len(np.asarray(value))
            frames, unit = frames_for(samples), f"frames' worth ({samples / SAMPLE_RATE:.2f} s)"
        if abs(frames - len(motion)) > MAX_LENGTH_MISMATCH_FRAMES:
            raise InputError(
                given if isinstance(given, (str, os.PathLike)) else None,
                f"the {what} has {frames} {unit} but the motion has {len(motion)} frames (more than the "
                f"tolerated {MAX_LENGTH_MISMATCH_FRAMES} frames apart)",
            )


def as_audio(x) -> np.ndarray | None:
    """Mono float32 16 kHz from a path, or a mono (n,) array already at 16 kHz (float, or int16 scaled by
    1/32768 as a file's samples are; checked as a file's are); None stays None."""
    if x is None:
        return None
    if isinstance(x, (str, os.PathLike)):
        return load_audio(x)
    if not isinstance(x, np.ndarray):
        raise DualTalkError(f"audio must be a file path or a mono (n,) array at 16 kHz, got {type(x).__name__}")
    if x.ndim != 1:
        raise DualTalkError(f"audio arrays must be mono, shape (n,); got shape {x.shape} (mix the channels first)")
    if x.dtype != np.int16 and x.dtype.kind != "f":
        raise DualTalkError(f"audio samples must be float or int16, got {x.dtype}")
    wave = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    problem = samples_problem(wave)
    if problem is not None:
        raise DualTalkError(f"the audio {problem}")
    return wave


def smooth_motion(motion: Motion, window: int = 7, order: int = 2) -> Motion:
    """Savitzky-Golay smoothing of expression and global rotation (as the reference demo does before
    rendering); the jaw is left alone. Returns a new Motion; the input is not modified."""
    from scipy.signal import savgol_filter

    T = len(motion)
    window = min(window, T if T % 2 else T - 1)
    if window <= order:
        return Motion(motion.exp.copy(), motion.jaw.copy(), motion.global_rot.copy(), motion.fps)
    return Motion(
        savgol_filter(motion.exp, window, order, axis=0).astype(np.float32),
        motion.jaw.copy(),
        savgol_filter(motion.global_rot, window, order, axis=0).astype(np.float32),
        motion.fps,
    )


def mix_audio(waves: list[np.ndarray], num_samples: int) -> np.ndarray:
    """Sum mono tracks, each cut or zero-padded to ``num_samples``; scaled down only if it would clip."""
    out = np.zeros(num_samples, np.float32)
    for w in waves:
        n = min(len(w), num_samples)
        out[:n] += w[:n]
    peak = float(np.abs(out).max()) if num_samples else 0.0
    return out * (0.99 / peak) if peak > 0.99 else out


# ----------------------------------------------------------------------------------------------------
# frames


@dataclass
class Panel:
    head: Head
    motion: Motion
    name: str
    speaking: np.ndarray | None = None  # (T,) bool, from voice activity on this person's audio
    show_strip: bool = field(default=False)


class FrameRenderer:
    """Renders frame ``i`` of all panels side by side: (size, size * panels, 3) uint8."""

    def __init__(self, panels: list[Panel], size: int = 512, backend: str = "auto"):
        self.panels, self.size = panels, size
        self.raster = make_rasterizer(size, size, backend)
        self.backend = self.raster.name
        self.cameras = [Camera(p.head.center, p.head.radius, size) for p in panels]
        self.captions = [Caption(p.name, size) for p in panels]
        self.strip = ExpressionStrip(size) if any(p.show_strip for p in panels) else None

    def render_panel(self, k: int, i: int) -> np.ndarray:
        p = self.panels[k]
        m = p.motion
        verts = p.head.vertices(m.exp[i : i + 1], m.jaw[i : i + 1], m.global_rot[i : i + 1])[0]  # (V, 3)
        colors = shade(p.head.base_colors, vertex_normals(verts, p.head.faces))
        xy, depth = self.cameras[k].project(verts)
        img = self.raster.draw(xy, depth, colors, p.head.faces, BACKGROUND)
        self.captions[k].draw(img, None if p.speaking is None else bool(p.speaking[i]))
        if p.show_strip:
            assert self.strip is not None  # made when any panel shows it
            self.strip.draw(img, m.exp[i])
        if k > 0:
            img[:, :2] = (img[:, :2] * 0.75).astype(np.uint8)  # a thin divider between panels
        return img

    def render(self, i: int) -> np.ndarray:
        return np.concatenate([self.render_panel(k, i) for k in range(len(self.panels))], axis=1)

    def close(self):
        self.raster.close()


_worker: FrameRenderer | None = None


def _one_blas_thread():
    """Limit BLAS to one thread in this process (idle OpenBLAS threads spin and steal the renderer's CPU).

    Returns the limiter (keep it alive; ``.restore_original_limits()`` undoes it)."""
    return limit_threads(1, "blas")


#: the signals that stop a render: the parent's to handle (the workers end with it)
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _init_worker(panels, size, backend):
    global _worker, _worker_error, _limiter
    # the parent handles Ctrl-C and SIGTERM (stops the pool, removes the unfinished video): a worker ignores
    # the terminal's Ctrl-C and ends at once, without a traceback, when the pool terminates it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by the parent around the fork
    single_thread_env()  # read by Mesa when this worker makes its EGL context
    _limiter = _one_blas_thread()
    try:
        _worker = FrameRenderer(panels, size, backend)
    except Exception as exc:  # reported with the first frame: a failing initializer would respawn forever
        _worker_error = exc


_worker_error: Exception | None = None


def _render_in_worker(i: int) -> tuple[str, np.ndarray]:
    if _worker_error is not None:
        raise _worker_error
    assert _worker is not None  # _init_worker set either _worker or _worker_error
    return _worker.backend, _worker.render(i)


def _frames(panels, size, backend, num_frames, workers, progress):
    """Yield (backend name, frame) in order, rendered in this process or by a pool of worker processes.

    Workers are forked (a spawned worker would re-import the caller's script). A process that already
    made an EGL context must not fork workers that make their own, so :func:`usable_workers` renders
    in-process then.
    """
    import multiprocessing as mp

    if workers <= 1:
        limiter = _one_blas_thread()
        r = FrameRenderer(panels, size, backend)
        bar = progress_bar(total=num_frames, unit="frame", desc="render", enabled=progress, leave=False)
        try:
            for i in range(num_frames):
                yield r.backend, r.render(i)
                bar.update()
        finally:
            r.close()
            bar.close()
            limiter.restore_original_limits()
        return
    # a stop signal that arrived while the pool forks would reach the parent inside an at-fork hook, where
    # Python drops the handler's exception (the run went on): held until the workers are started
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pool = mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(panels, size, backend))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    bar = progress_bar(total=num_frames, unit="frame", desc="render", enabled=progress, leave=False)
    with pool:
        try:
            for item in pool.imap(_render_in_worker, range(num_frames), chunksize=8):
                yield item
                bar.update()
        finally:
            bar.close()


def default_workers(num_frames: int) -> int:
    cores = usable_cpus()
    return 1 if num_frames < 100 or cores < 2 else min(cores, 4)


def usable_workers(workers: int, backend: str) -> int:
    """``workers``, or 1 where worker processes cannot be forked safely (no fork on this platform, or an
    EGL context already exists in this process and the workers may make their own)."""
    import multiprocessing as mp

    from . import raster

    if workers > 1 and (
        "fork" not in mp.get_all_start_methods() or (raster.egl_contexts_made and backend != "software")
    ):
        return 1
    return workers


# ----------------------------------------------------------------------------------------------------
# the video


def build_panels(
    motion: Motion,
    audio=None,
    partner_motion: Motion | None = None,
    partner_audio=None,
    ground_truth: Motion | None = None,
    head: Head | None = None,
    names: dict | None = None,
) -> tuple[list[Panel], list[np.ndarray], int]:
    """Panels (partner, generated, ground truth), the audio tracks to mix, and the frame count."""
    T = len(motion)
    head = head or BuiltinHead()
    strip = head.kind == "builtin"
    two = partner_motion is not None
    default = {
        "self": "B \u00b7 generated" if (two or ground_truth is not None) else "B",
        "partner": "A \u00b7 partner",
        "ground_truth": "B \u00b7 ground truth",
    }
    names = {**default, **(names or {})}
    a_self = as_audio(audio)
    a_partner = as_audio(partner_audio)

    def vad(wave):
        if wave is None:
            return None
        from ..io.vad import voice_activity

        return voice_activity(wave, SAMPLE_RATE, fps=FPS, num_frames=T)

    s_self = vad(a_self)
    panels = []
    if partner_motion is not None:
        panels.append(Panel(head, partner_motion.fit_length(T), names["partner"], vad(a_partner), strip))
    panels.append(Panel(head, motion, names["self"], s_self, strip))
    if ground_truth is not None:
        panels.append(Panel(head, ground_truth.fit_length(T), names["ground_truth"], s_self, strip))
    tracks = [w for w in (a_partner, a_self) if w is not None]
    return panels, tracks, T


def render_video(
    motion,
    out,
    audio=None,
    partner_motion=None,
    partner_audio=None,
    ground_truth=None,
    flame=None,
    size: int = 512,
    smooth: bool = False,
    backend: str = "auto",
    workers: int | None = None,
    names: dict | None = None,
    progress: bool = True,
) -> dict:
    """Render ``motion`` (path, (T, 56) array or Motion) to an H.264 + AAC mp4 at 25 fps.

    ``partner_motion``/``partner_audio``: the other person, drawn on the left; ``ground_truth``: the
    recorded motion of the same person, drawn on the right; ``flame``: a FLAME model file (or a
    loaded :class:`~dualtalk.flame.FlameModel`) for full faces, else the built-in head with the
    expression heat strip. ``smooth`` applies Savitzky-Golay smoothing for display only (the motion
    files are never changed). ``backend``: "auto" (EGL, else software), "egl" or "software".
    Returns {"path", "frames", "seconds", "backend", "workers", "render_seconds"}.
    """
    imageio_ffmpeg = require("imageio_ffmpeg", "render")
    require("PIL", "render")
    require("matplotlib", "render")  # its DejaVu fonts and colour maps draw the captions and the strip
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(out, "the output must be an .mp4 file")
    check_video_size(size)
    if partner_audio is not None and partner_motion is None:
        raise DualTalkError("--partner-audio needs --partner-motion")
    if backend not in BACKENDS:
        raise DualTalkError(f"unknown render backend {backend!r} (choose from {', '.join(BACKENDS)})")
    m = as_motion(motion)
    pm = as_motion(partner_motion) if partner_motion is not None else None
    gt = as_motion(ground_truth) if ground_truth is not None else None
    given_audio, given_partner_audio = audio, partner_audio
    audio, partner_audio = as_audio(audio), as_audio(partner_audio)  # read once, checked, then drawn and mixed
    check_conversation(
        m,
        [
            (pm, partner_motion, "partner motion"),
            (gt, ground_truth, "ground truth"),
            (audio, given_audio, "audio"),
            (partner_audio, given_partner_audio, "partner audio"),
        ],
    )
    if smooth:
        m = smooth_motion(m)
        pm = smooth_motion(pm) if pm is not None else None
        gt = smooth_motion(gt) if gt is not None else None
    head: Head
    if flame is None:
        head = BuiltinHead()
    else:
        from ..flame import FlameModel, load_flame

        head = FlameHead(flame if isinstance(flame, FlameModel) else load_flame(flame))
    panels, tracks, T = build_panels(m, audio, pm, partner_audio, gt, head, names)
    workers = usable_workers(default_workers(T) if workers is None else max(1, int(workers)), backend)
    width, height = size * len(panels), size
    start = time.perf_counter()
    used = None
    with tempfile.TemporaryDirectory(prefix="dualtalk-render-") as tmp:
        audio_path = None
        if tracks:
            import soundfile as sf

            audio_path = os.path.join(tmp, "mix.wav")
            sf.write(audio_path, mix_audio(tracks, int(round(T / FPS * SAMPLE_RATE))), SAMPLE_RATE, subtype="PCM_16")
        with atomic_path(out, suffix=".mp4") as tmp_out:
            writer = imageio_ffmpeg.write_frames(
                str(tmp_out),
                (width, height),
                fps=FPS,
                codec="libx264",
                pix_fmt_out="yuv420p",
                quality=None,
                macro_block_size=16,
                ffmpeg_log_level="error",
                audio_path=audio_path,
                audio_codec="aac" if audio_path else None,
                output_params=["-crf", "20", "-preset", "veryfast", "-movflags", "+faststart"]
                + (["-b:a", "128k", "-t", f"{T / FPS:.6f}"] if audio_path else []),
            )
            frames = _frames(panels, size, backend, T, workers, progress)
            used, first = next(frames)  # start the workers (and render frame 0) before ffmpeg starts
            try:
                writer.send(None)
                writer.send(np.ascontiguousarray(first))
                for _used, frame in frames:
                    writer.send(np.ascontiguousarray(frame))
            except (OSError, RuntimeError) as exc:
                raise DualTalkError(f"video encoding failed ({exc})") from None
            finally:
                frames.close()  # stops the workers if we are leaving early
                writer.close()  # waits for ffmpeg to finish the file (or stops it on error)
    elapsed = time.perf_counter() - start
    return {
        "path": str(out),
        "frames": T,
        "seconds": T / FPS,
        "backend": used,
        "workers": workers,
        "render_seconds": elapsed,
    }
