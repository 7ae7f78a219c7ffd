"""Synthetic corpus: generation speed and the non-learned baselines' errors against the noise floor.

    .venv/bin/python benchmarks/synth.py                                  # 20 x 60 s conversations
    .venv/bin/python benchmarks/synth.py --conversations 6 --seconds 20   # quick check

Prints the figures and writes benchmarks/results/synth.json: seconds to generate one conversation (mean
of the corpus), and the MSE per group (exp / jaw / pose) of the baselines ``mean``, ``mirror`` and
``random_segment`` on the test split, next to the corpus's noise floor (the error of an oracle that knows
every rule) and the "clean oracle" computed from the generator itself as a check.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from dualtalk.baselines import BASELINES, predict_baseline
from dualtalk.io.motion import load_model_motion, load_motion
from dualtalk.synth import make_conversation, make_corpus

GROUPS = {"exp": slice(0, 50), "jaw": slice(50, 53), "pose": slice(53, 56)}
RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def group_mse(pred_dir: Path, gt_dir: Path) -> dict:
    err = {g: [] for g in GROUPS}
    for p in sorted(pred_dir.glob("*.npy")):
        pred = load_model_motion(p)
        gt = load_motion(gt_dir / f"{p.stem}.npz").to_model()
        for g, s in GROUPS.items():
            err[g].append((pred[:, s] - gt[:, s]) ** 2)
    return {g: float(np.mean(np.concatenate(v))) for g, v in err.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    make_conversation(args.seconds, 12345)  # warm-up (imports, FFT plans)
    times = []
    for i in range(5):
        t0 = time.perf_counter()
        make_conversation(args.seconds, i)
        times.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        n_test = max(1, args.conversations // 5)
        t0 = time.perf_counter()
        manifest = make_corpus(root, args.conversations, args.seconds, args.seed,
                               splits={"train": args.conversations - n_test, "test": n_test}, progress=False)
        corpus_s = time.perf_counter() - t0
        results = {}
        for method in BASELINES:
            pred = Path(tmp) / "pred" / method
            predict_baseline(method, root / "train", root / "test", pred, seed=args.seed)
            results[method] = group_mse(pred, root / "test")
    floor = manifest["noise_floor_by_split"]["test"]
    report = {
        "conversations": args.conversations,
        "seconds": args.seconds,
        "seconds_per_conversation_generate": float(np.median(times)),
        "seconds_per_conversation_write_corpus": corpus_s / args.conversations,
        "mse": results,
        "noise_floor_test": {g: floor[g] for g in GROUPS},
    }
    print(f"generate one {args.seconds:g} s conversation: {report['seconds_per_conversation_generate']:.3f} s "
          f"(median of 5); with writing the files: {report['seconds_per_conversation_write_corpus']:.3f} s")
    print(f"{'method':16s}" + "".join(f"{g:>12s}" for g in GROUPS))
    for method, row in results.items():
        print(f"{method:16s}" + "".join(f"{row[g]:12.5f}" for g in GROUPS))
    print(f"{'noise floor':16s}" + "".join(f"{floor[g]:12.5f}" for g in GROUPS))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
