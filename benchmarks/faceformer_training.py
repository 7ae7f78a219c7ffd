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

from dualtalk.benchmark import DEFAULT_CONFIG, run_benchmark

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = ("exp", "jaw", "pose")
#: label -> the training overrides of that run
RUNS = {"teacher_forced": [], "autoregressive": ["model.baseline.teacher_forcing=false"]}


def one_run(label: str, data: Path, work: Path, config: str, steps: int | None, threads: int | None) -> dict:
    """``dualtalk benchmark`` for one label into WORK/LABEL -> its report.json."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return run_benchmark(
        data,
        work / label,
        methods=["faceformer", "mean"],
        overrides=RUNS[label],
        config_file=config,
        steps=steps,
        reuse=True,
        progress=False,
    )


def _job(label: str, data: Path, work: Path, config: str, steps: int | None) -> None:
    work.mkdir(parents=True, exist_ok=True)
    log = open(work / f"{label}.log", "w", buffering=1)
    sys.stdout = sys.stderr = log
    one_run(label, data, work, config, steps, threads=1)


def summary(report: dict) -> dict:
    """The numbers compared, from a benchmark report."""
    res = report["results"]
    out = {
        "train_seconds": report["seconds"]["faceformer"],
        "mse": {m: {g: res[m]["mean"][f"mse_{g}"] for g in GROUPS} for m in ("faceformer", "mean")},
        "mse_by_role": {
            m: {role: {g: res[m]["by_role"][role]["mean"][f"mse_{g}"] for g in GROUPS} for role in res[m]["by_role"]}
            for m in ("faceformer", "mean")
        },
        "causes": {
            c: {k: v[k] for k in ("role", "reduction", "capture")}
            for c, v in report["causes"]["methods"]["faceformer"].items()
        },
        "probe": {c: v["reduction"] for c, v in report["causes"]["probe"].items()},
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/synth"), help="corpus with train, val and test splits")
    ap.add_argument("--work", type=Path, required=True, help="the two benchmark reports (kept: reused when run again)")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="training recipe (default: the recommended one)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's max_steps")
    ap.add_argument("--parallel", type=int, default=2, help="1: the two trainings one after the other")
    ap.add_argument("--out", type=Path, default=RESULTS / "faceformer_training.json")
    args = ap.parse_args()
    for split in ("train", "val", "test"):
        if not (args.data / split).is_dir():
            raise SystemExit(f"{args.data / split}: split directory not found (--data needs train, val and test)")
    if args.parallel > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_job, args=(lb, args.data, args.work, args.config, args.steps)) for lb in RUNS]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        failed = [lb for lb, p in zip(RUNS, procs) if p.exitcode != 0]
        if failed:
            print(f"error: the {', '.join(failed)} run failed (log: {args.work}/LABEL.log)", file=sys.stderr)
            return 1
        reports = {lb: json.loads((args.work / lb / "report.json").read_text()) for lb in RUNS}
    else:
        reports = {lb: one_run(lb, args.data, args.work, args.config, args.steps, None) for lb in RUNS}
    runs = {lb: summary(r) for lb, r in reports.items()}
    for lb, s in runs.items():
        rel = ", ".join(f"{g} {s['mse']['faceformer'][g]:.3g} (mean {s['mse']['mean'][g]:.3g})" for g in GROUPS)
        causes = ", ".join(f"{c} {v['reduction']:+.3f}" for c, v in s["causes"].items())
        print(f"{lb}: test MSE {rel}; causes {causes}; trained {s['train_seconds']:.0f} s")
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
