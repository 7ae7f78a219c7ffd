"""Training speed and memory on CPU: model steps per config, and the data loader alone.

    .venv/bin/python benchmarks/train.py                         # all configs, JSON to benchmarks/results/train.json
    .venv/bin/python benchmarks/train.py --configs tiny,small --steps 5

Writes a generated corpus (``dualtalk.train.toy``: ``--conversations`` conversations of ``--seconds`` s),
then, each in a fresh process so that peak memory (max RSS) is per config:

- ``loader``: examples per second of the training data loader alone (lazy reads of 200-frame windows,
  both directions, shuffled), with 0 and ``--workers`` worker processes;
- one entry per model config: Adam training steps (forward, released loss, backward, optimizer step) on
  batches taken from that loader, examples per second after one warm-up step, and peak memory. The
  released-size model (647 M parameters, random weights: speed does not depend on them) runs at batch 1
  on short windows because a CPU cannot do more in reasonable time; ``released`` fine-tunes the wav2vec2
  transformers as the released recipe does (CNN feature extractor frozen), ``released-frozen`` freezes
  both audio encoders (the feature-cache setting).

The loader is "not the bottleneck" when its examples/s exceed every config's training examples/s
(``loader_headroom`` = loader examples/s with workers / training examples/s).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (preset, model overrides, window frames, batch size)
CONFIGS = {
    "tiny": ("tiny", [], 200, 8),
    "tiny-mel": ("tiny-mel", [], 200, 8),
    "small": ("small", [], 200, 8),
    "released": ("released", [], 50, 1),
    "released-frozen": ("released", ["audio_encoder.freeze=true"], 50, 1),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_loader(data: Path, window: int, batch: int, workers: int, seed: int = 0):
    from dualtalk.train.data import ConversationWindows, PlanBatchSampler, index_split, make_loader

    index, _ = index_split(data, "train")
    sampler = PlanBatchSampler(index.frames, window, batch, seed=seed)
    return make_loader(ConversationWindows(index, window), sampler, workers), sampler


def bench_loader(data: Path, workers: int, batches: int) -> dict:
    """Examples/s over ``batches`` batches, timed from the iterator's creation (worker start-up included)."""
    loader, sampler = make_loader(data, 200, 8, workers)
    n, examples, epoch, first = 0, 0, 0, None
    t0 = time.perf_counter()
    while n < batches:
        sampler.set_epoch(epoch)
        for batch in loader:
            n += 1
            examples += len(batch["key"])
            if first is None:
                first = time.perf_counter() - t0
            if n >= batches:
                break
        epoch += 1
    dt = time.perf_counter() - t0
    return {
        "workers": workers,
        "batch_size": 8,
        "window_frames": 200,
        "batches": batches,
        "examples_per_sec": examples / dt,
        "first_batch_seconds": first,
        "peak_rss_mb": peak_rss_mb(),
    }


def bench_config(data: Path, name: str, steps: int, threads: int) -> dict:
    import torch

    from dualtalk.config import LossConfig
    from dualtalk.model.dualtalk import DualTalk
    from dualtalk.model.presets import get_preset
    from dualtalk.train.engine import run_model
    from dualtalk.train.loss import combine, motion_errors, weights

    torch.set_num_threads(threads)
    preset, overrides, window, batch_size = CONFIGS[name]
    cfg = get_preset(preset, overrides)
    model = DualTalk(cfg).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    loader, _ = make_loader(data, window, batch_size, 0)
    it = iter(loader)
    batches = [next(it) for _ in range(min(steps + 1, 4))]
    w = weights(LossConfig())
    times = []  # (forward, backward, optimizer) seconds per step
    for i in range(steps + 1):
        batch = batches[i % len(batches)]
        t0 = time.perf_counter()
        pred = run_model(model, model, batch, torch.device("cpu"), cached=False)  # (B, W, 56)
        loss, _ = combine(*motion_errors(pred, batch["target"], batch["mask"]), w)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        times.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
    parts = [sum(t[j] for t in times[1:]) / steps for j in range(3)]
    step = sum(parts)
    return {
        "config": name,
        "preset": preset,
        "overrides": overrides,
        "parameters": model.num_parameters(),
        "trainable_parameters": sum(p.numel() for p in params),
        "batch_size": batch_size,
        "window_frames": window,
        "window_seconds": window / 25,
        "steps_timed": steps,
        "threads": threads,
        "seconds_per_step": step,
        "forward_s": parts[0],
        "backward_s": parts[1],
        "optimizer_s": parts[2],
        "examples_per_sec": batch_size / step,
        "first_step_seconds": sum(times[0]),
        "peak_rss_mb": peak_rss_mb(),
    }


def child(args) -> None:
    data = Path(args.data)
    if args.child == "loader":
        out = [bench_loader(data, w, args.loader_batches) for w in sorted({0, args.workers})]
    else:
        out = bench_config(data, args.child, args.steps, args.threads)
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="tiny,small,released,released-frozen")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per config (after 1 warm-up)")
    ap.add_argument("--conversations", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--loader-batches", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    from dualtalk.train.toy import write_toy_corpus

    tmp = tempfile.TemporaryDirectory()
    data = write_toy_corpus(tmp.name, {"train": args.conversations}, seconds=(args.seconds, args.seconds))
    previous = json.loads(Path(args.out).read_text()).get("configs", {}) if Path(args.out).exists() else {}
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "corpus": {"conversations": args.conversations, "seconds_each": args.seconds},
        "note": "CPU only; released-size configs at batch 1 on 2 s windows (the released recipe uses "
        "batch 32 on 8 s windows on a GPU); timings on a shared machine are noisy",
        "configs": previous,
    }  # configs not run this time keep their last figures

    def run_child(what: str):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            what,
            "--data",
            str(data),
            "--steps",
            str(args.steps),
            "--workers",
            str(args.workers),
            "--loader-batches",
            str(args.loader_batches),
            "--threads",
            str(args.threads),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{what}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
        return json.loads(lines[-1][len("RESULT ") :])

    results["loader"] = run_child("loader")
    for r in results["loader"] if isinstance(results["loader"], list) else []:
        print(
            f"loader  workers={r['workers']}: {r['examples_per_sec']:8.1f} examples/s "
            f"(200-frame windows, batch 8), peak {r['peak_rss_mb']:.0f} MB"
        )
    best_loader = (
        max((r["examples_per_sec"] for r in results["loader"]), default=0.0)
        if isinstance(results["loader"], list)
        else 0.0
    )
    for name in [c for c in args.configs.split(",") if c]:
        if name not in CONFIGS:
            raise SystemExit(f"unknown config {name!r} (known: {', '.join(CONFIGS)})")
        r = run_child(name)
        if "error" not in r:
            r["loader_headroom"] = best_loader / r["examples_per_sec"]
            print(
                f"{name:16s} {r['parameters'] / 1e6:7.1f} M params ({r['trainable_parameters'] / 1e6:.1f} M trained), "
                f"batch {r['batch_size']} x {r['window_seconds']:.0f} s: {r['examples_per_sec']:7.2f} examples/s, "
                f"{r['seconds_per_step']:.3f} s/step (fwd {r['forward_s']:.2f} bwd {r['backward_s']:.2f} "
                f"adam {r['optimizer_s']:.2f}), peak {r['peak_rss_mb']:.0f} MB, "
                f"loader headroom x{r['loader_headroom']:.1f}"
            )
        results["configs"][name] = r
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
