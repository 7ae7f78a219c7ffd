"""Rendering speed: frames per second at 512x512, one head and the two-head layout, per backend.

    .venv/bin/python benchmarks/render.py                      # full run (~ a few minutes on 2 cores)
    .venv/bin/python benchmarks/render.py --frames 20 --video-seconds 4   # quick check

Uses a FLAME-sized synthetic model (5,023 vertices, 9,976 faces, written by
``dualtalk.flame.write_synthetic_flame``) and random motion. Two kinds of figures per backend:

- ``frames_per_second``: FrameRenderer.render in this process (forward pass + lighting +
  rasterisation + overlays), for ``one_head`` and ``two_heads``;
- ``video``: ``render_video`` end to end (H.264 + AAC encoding included) of a two-head conversation
  of ``--video-seconds`` (default 30 s), with the default worker processes and with 1 (rendering in
  this process; llvmpipe then uses its own threads): wall time and the real-time factor (video
  seconds / wall seconds; > 1 is faster than real time). The issue's goal: a 30 s two-head video in
  under 30 s on 2 cores.

Prints the figures and writes benchmarks/results/render.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dualtalk.flame import load_flame, write_synthetic_flame
from dualtalk.io.motion import Motion
from dualtalk.render import render_video
from dualtalk.render.heads import FlameHead
from dualtalk.render.video import FrameRenderer, _one_blas_thread, build_panels


def random_motion(T: int, seed: int) -> Motion:
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None] / 25
    exp = np.sin(2 * np.pi * t * rng.uniform(0.2, 2, 50) + rng.uniform(0, 6, 50)).astype(np.float32)  # (T, 50)
    jaw = np.zeros((T, 3), np.float32)
    jaw[:, 0] = 0.12 + 0.1 * np.sin(2 * np.pi * 3 * t[:, 0])
    rot = (0.15 * np.sin(2 * np.pi * t * rng.uniform(0.1, 0.5, 3))).astype(np.float32)  # (T, 3)
    return Motion(exp, jaw, rot)


def fps(head, backend: str, two: bool, frames: int, size: int) -> float:
    m = random_motion(frames, 0)
    panels, _, _ = build_panels(m, partner_motion=random_motion(frames, 1) if two else None, head=head)
    limiter = _one_blas_thread()  # as render_video does
    r = FrameRenderer(panels, size, backend)
    try:
        r.render(0)  # warm-up (shader compile, caches)
        start = time.perf_counter()
        for i in range(frames):
            r.render(i)
        return frames / (time.perf_counter() - start)
    finally:
        r.close()
        if limiter is not None:
            limiter.restore_original_limits()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100, help="frames per fps measurement")
    ap.add_argument("--video-seconds", type=float, default=30.0, help="length of the end-to-end video")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--backends", default="egl,software")
    ap.add_argument("--workers", type=int, default=None, help="render_video workers (default: automatic)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "render.json"))
    args = ap.parse_args(argv)

    # asked in a child process: a process that made an EGL context renders in-process, without workers
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dualtalk.render.raster import egl_available as a; ok, info = a(); print(int(ok), info)",
        ],
        capture_output=True,
        text=True,
    )
    first, _, egl_info = probe.stdout.strip().partition(" ")
    egl_ok = first == "1"
    egl_info = egl_info or probe.stderr.strip().splitlines()[-1:]
    results = {
        "size": args.size,
        "frames": args.frames,
        "video_seconds": args.video_seconds,
        "mesh": {},
        "egl": egl_info,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        model = load_flame(write_synthetic_flame(Path(tmp) / "generic_model.pkl"))
        results["mesh"] = {"vertices": int(model.num_vertices), "faces": int(len(model.faces))}
        head = FlameHead(model)
        T = int(round(args.video_seconds * 25))
        audio = [0.1 * np.sin(2 * np.pi * 200 * np.arange(T * 640) / 16000).astype(np.float32)] * 2
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        if "egl" in backends and not egl_ok:
            print(f"egl: skipped ({egl_info})")
            results["backends"]["egl"] = {"skipped": egl_info}
            backends.remove("egl")
        # videos first: forked workers are used only while this process has made no EGL context
        for backend in backends:
            row = results["backends"].setdefault(backend, {"video": {}})
            for workers in [args.workers] if args.workers else [None, 1]:
                out = Path(tmp) / f"{backend}.mp4"
                r = render_video(
                    random_motion(T, 0),
                    out,
                    audio=audio[0],
                    partner_motion=random_motion(T, 1),
                    partner_audio=audio[1],
                    flame=model,
                    size=args.size,
                    backend=backend,
                    workers=workers,
                    progress=True,
                )
                key = f"{r['workers']}_workers"
                row["video"][key] = {
                    "seconds": r["seconds"],
                    "wall_seconds": r["render_seconds"],
                    "realtime_factor": r["seconds"] / r["render_seconds"],
                }
                print(
                    f"{backend:9s} {r['seconds']:.0f} s two-head video in {r['render_seconds']:.1f} s "
                    f"({r['seconds'] / r['render_seconds']:.2f}x real time, {r['workers']} worker process(es))"
                )
        for backend in backends:
            row = results["backends"][backend]
            row["frames_per_second"] = {
                "one_head": fps(head, backend, False, args.frames, args.size),
                "two_heads": fps(head, backend, True, args.frames, args.size),
            }
            f = row["frames_per_second"]
            print(
                f"{backend:9s} in one process: one head {f['one_head']:6.1f} fps | two heads {f['two_heads']:6.1f} fps"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
