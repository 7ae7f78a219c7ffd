"""Throughput of ``dualtalk predict`` over a split: conversations per minute, one process vs a process per core.

    python benchmarks/predict.py                                  # 4 conversations of 30 s, --workers 1 and 2
    python benchmarks/predict.py --distinct-cnns                  # the two encoders' CNNs differ (no shared features)
    python benchmarks/predict.py --conversations 8 --seconds 60 --workers 1,2 --dtype float32

Writes a split of generated conversations (noise voices, random motion for both people, so each conversation
is two generations), a full-size model directory of the released architecture (random weights; its two CNNs the
same, as the released model's), then times the whole command (``python -m dualtalk predict ... --workers N``:
start-up, loading and all generations) per ``--workers`` value, the fastest of ``--repeats`` runs. JSON in
``benchmarks/results/predict.json`` (``--tag T``: ``predict_T.json``), with the machine it ran on (CPU model,
matrix-relevant flags, native bfloat16: what ``--dtype auto`` picks) as ``generate.py`` records it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def write_split(directory: Path, conversations: int, seconds: float) -> None:
    import soundfile as sf

    from dualtalk.io.motion import Motion, save_motion

    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = int(seconds * 25)
    for i in range(conversations):
        for k in (1, 2):
            sf.write(directory / f"conv{i:03d}_speaker{k}.wav", 0.1 * rng.normal(size=t * 640), 16000)
            save_motion(directory / f"conv{i:03d}_speaker{k}.npz", Motion.from_model(0.3 * rng.normal(size=(t, 56))))


def same_cnns(model) -> None:
    """Give a random model what the released one has: both wav2vec2 encoders' CNNs the same weights (the
    reference loads both encoders from one pretrained checkpoint and freezes their CNNs), so ``predict`` computes
    each voice's CNN features once for the two people of a conversation. In place."""
    import torch

    enc = model.joint_encoder
    with torch.no_grad():
        for mine, theirs in zip(
            enc.audio_encoder1.model.feature_extractor.parameters(),
            enc.audio_encoder2.model.feature_extractor.parameters(),
        ):
            theirs.copy_(mine)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", default="1,2", help="comma-separated --workers values to time")
    ap.add_argument("--dtype", default="auto", help="--dtype of predict (auto, float32, bfloat16)")
    ap.add_argument("--model", help="model directory (default: a full-size one with random weights, written to tmp)")
    ap.add_argument(
        "--distinct-cnns",
        action="store_true",
        help="the random model's two wav2vec2 CNNs differ (default: the same weights, as in the released model)",
    )
    ap.add_argument(
        "--repeats", type=int, default=3, help="runs of the command per --workers value; the fastest counts"
    )
    ap.add_argument("--out", help="result JSON (default benchmarks/results/predict.json)")
    ap.add_argument("--tag", default="", help="suffix of the result file name (predict_TAG.json)")
    args = ap.parse_args(argv)
    from dualtalk.inference.pipeline import machine_record

    tmp = Path(tempfile.mkdtemp(prefix="dualtalk-predict-"))
    rows = []
    try:
        split = tmp / "split"
        write_split(split, args.conversations, args.seconds)
        model = args.model
        if model is None:
            import torch

            from dualtalk.config import DualTalkConfig
            from dualtalk.model.checkpoint import save_model
            from dualtalk.model.dualtalk import DualTalk

            torch.manual_seed(0)
            net = DualTalk(DualTalkConfig()).eval()
            if not args.distinct_cnns:
                same_cnns(net)
            model = str(save_model(net, tmp / "model"))
        for workers in (int(w) for w in args.workers.split(",")):
            out = tmp / f"pred_{workers}"
            cmd = [sys.executable, "-m", "dualtalk", "predict", "--model", model, "--data", str(split)]
            cmd += ["--out", str(out), "--workers", str(workers), "--dtype", args.dtype, "--quiet"]
            walls = []
            for _ in range(max(1, args.repeats)):  # the fastest whole command counts (runs vary by ~10 % here)
                shutil.rmtree(out, ignore_errors=True)
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                walls.append(time.perf_counter() - t0)
            wall = min(walls)
            files = len(list(out.glob("*.npy")))
            row = {
                "workers": workers,
                "dtype": args.dtype,
                "conversations": args.conversations,
                "files": files,
                "seconds_each": args.seconds,
                "wall_s": wall,
                "walls_s": walls,
                "conversations_per_minute": args.conversations / wall * 60,
                "audio_hours_per_hour": files * args.seconds / wall,
            }
            rows.append(row)
            print(
                f"--workers {workers}: {wall:6.1f} s for {args.conversations} conversations ({files} files) of "
                f"{args.seconds:g} s -> {row['conversations_per_minute']:.2f} conversations/min",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "predict",
        "model": "released architecture, random weights (2 x wav2vec2-large-lv60, d=256, 647 M parameters)"
        + ("" if args.model else ", the two CNNs " + ("different" if args.distinct_cnns else "the same, as released")),
        "command": "python benchmarks/predict.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_record(),
        "repeats": max(1, args.repeats),
        "max_child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rows": rows,
    }
    out_path = Path(args.out) if args.out else RESULTS / (f"predict_{args.tag}.json" if args.tag else "predict.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out_path}")


if __name__ == "__main__":
    main()
