"""FaceFormer trained teacher-forced (the preset's default) against autoregressively (FaceFormer's own loop).

    .venv/bin/python benchmarks/faceformer_training.py --data data/synth --work /tmp/ff   # about 10 min

``dualtalk benchmark --methods faceformer,mean`` twice on the same corpus and recipe (the recommended CPU
recipe unless ``--config``): once as the preset trains (teacher-forced: the true previous frames as the
decoder's inputs, one parallel pass per window) and once with ``model.baseline.teacher_forcing=false`` (each
frame's output fed back, the loss's gradient through the loop, as ``teacher_forcing=False`` in FaceFormer's
public ``main.py``). The two trainings run side by side, one process and one thread each (``--parallel 1``:
one after the other). Both are scored as the benchmark scores every method: test-split MSE per group
(exp / jaw / pose, reference protocol) with the training mean's beside it, speaking / listening frames, the
error reduction on each of the corpus's causes, and the training seconds. A finished report in ``--work``
is kept (``dualtalk benchmark --reuse``). JSON in ``benchmarks/results/faceformer_training.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paired_runs import check_splits, print_runs, run_all, summary

from dualtalk.benchmark import DEFAULT_CONFIG

RESULTS = Path(__file__).resolve().parent / "results"
#: label -> the training overrides of that run
RUNS = {"teacher_forced": [], "autoregressive": ["model.baseline.teacher_forcing=false"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/synth"), help="corpus with train, val and test splits")
    ap.add_argument("--work", type=Path, required=True, help="the two benchmark reports (kept: reused when run again)")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="training recipe (default: the recommended one)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's max_steps")
    ap.add_argument("--parallel", type=int, default=2, help="1: the two trainings one after the other")
    ap.add_argument("--out", type=Path, default=RESULTS / "faceformer_training.json")
    args = ap.parse_args()
    check_splits(args.data)
    reports = run_all(RUNS, "faceformer", args.data, args.work, args.config, args.steps, args.parallel)
    if reports is None:
        return 1
    runs = {lb: summary(r, "faceformer") for lb, r in reports.items()}
    print_runs(runs, "faceformer")
    result = {
        "command": f"python benchmarks/faceformer_training.py --data {args.data} --work WORK "
        f"--parallel {args.parallel}",
        "data": str(args.data),
        "config": args.config,
        "steps": reports["teacher_forced"]["steps"],
        "parallel": args.parallel,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
