"""Inference speed of the released architecture at full size on CPU.

    python benchmarks/generate.py                    # 60 s conversation, all modes, JSON to benchmarks/results/
    python benchmarks/generate.py --seconds 30 --modes exact
    python benchmarks/generate.py --seconds 600 --modes exact --window 120 --tag long   # a 10-minute conversation

Builds the released model (two wav2vec2-large-lv60 encoders, d=256, 647 M parameters) from its config
with random weights (timing does not depend on the weights), and times ``run_model`` on a generated
conversation of ``--seconds`` per mode, each in a fresh process so that peak memory is per mode:

- ``exact``: the default path (time-major chunked wav2vec2 CNN, SDPA attention), fp32;
- ``transformers``: the same model with transformers' own CNN path (the reference arithmetic), fp32,
  to show the default path's output equals it (max abs difference reported);
- ``int8``: int8 dynamic quantisation of the linear layers; its error against ``exact`` is reported.

Real-time factor = wall time / audio duration (lower is better; < 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(mode: str, seconds: float, out_npy: str, window: float = 0.0) -> dict:
    import torch

    from dualtalk.config import DualTalkConfig
    from dualtalk.features.audio_encoder import Wav2Vec2Encoder
    from dualtalk.inference.pipeline import InferenceOptions, quantize_int8, run_model
    from dualtalk.model.dualtalk import DualTalk

    torch.manual_seed(0)
    t_build = time.perf_counter()
    model = DualTalk(DualTalkConfig()).eval()
    build_s = time.perf_counter() - t_build
    if mode == "transformers":
        Wav2Vec2Encoder.time_major_cnn = False
    if mode == "int8":
        model = quantize_int8(model)
    rng = np.random.default_rng(0)
    t = int(seconds * 25)
    a = (0.1 * rng.normal(size=t * 640)).astype(np.float32)
    b = (0.1 * rng.normal(size=t * 640)).astype(np.float32)
    m = (0.3 * rng.normal(size=(t, 56))).astype(np.float32)
    opts = InferenceOptions(window=window, progress=False)
    run_model(model, a[: 5 * 16000], b[: 5 * 16000], m[:125], opts)  # warm-up (allocator, kernels)
    t0 = time.perf_counter()
    y = run_model(model, a, b, m, opts)
    wall = time.perf_counter() - t0
    np.save(out_npy, y)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "seconds": seconds,
        "window_s": window,
        "wall_s": wall,
        "rtf": wall / seconds,
        "peak_rss_mb": peak_mb,
        "build_s": build_s,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--modes", default="exact,transformers,int8")
    ap.add_argument("--window", type=float, default=0.0, help="seconds per window (0 = one sequence, exact)")
    ap.add_argument("--tag", default="", help="suffix of the result file name (generate_TAG.json)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out-npy", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.seconds, args.out_npy, args.window)))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows, outputs = [], {}
    for mode in args.modes.split(","):
        npy = RESULTS / f".generate_{mode}.npy"
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--seconds",
                str(args.seconds),
                "--window",
                str(args.window),
                "--out-npy",
                str(npy),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        outputs[mode] = np.load(npy)
        npy.unlink()
        rows.append(row)
        print(
            f"{mode:>13}: {row['wall_s']:7.2f} s for {args.seconds:g} s of audio  RTF {row['rtf']:.3f}  "
            f"peak RSS {row['peak_rss_mb']:,.0f} MB",
            flush=True,
        )
    if "exact" in outputs:
        for row in rows:
            if row["mode"] != "exact":
                row["max_abs_diff_vs_exact"] = float(np.abs(outputs[row["mode"]] - outputs["exact"]).max())
                print(f"{row['mode']:>13}: max |output - exact| = {row['max_abs_diff_vs_exact']:.2e}")
    result = {
        "benchmark": "generate",
        "model": "released architecture, random weights (2 x wav2vec2-large-lv60, d=256, 647 M parameters)",
        "command": "python benchmarks/generate.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "rows": rows,
    }
    out = RESULTS / (f"generate_{args.tag}.json" if args.tag else "generate.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
