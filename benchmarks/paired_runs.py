"""``dualtalk benchmark`` of one method under several sets of training overrides, side by side.

Used by ``faceformer_training.py`` (teacher-forced against autoregressive) and ``selftalk_recognizer.py``
(SelfTalk's animator alone against its full objective): each label trains ``METHOD,mean`` into WORK/LABEL
with its overrides, one process and one thread per label (``parallel`` 1: one after the other in this
process), a finished report kept (``--reuse``); ``summary`` takes the numbers these comparisons quote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dualtalk.benchmark import DEFAULT_CONFIG, run_benchmark

GROUPS = ("exp", "jaw", "pose")


def check_splits(data: Path) -> None:
    for split in ("train", "val", "test"):
        if not (data / split).is_dir():
            raise SystemExit(f"{data / split}: split directory not found (--data needs train, val and test)")


def one_run(
    label: str,
    method: str,
    overrides: list[str],
    data: Path,
    work: Path,
    config: str,
    steps: int | None,
    threads: int | None,
) -> dict:
    """``dualtalk benchmark --methods METHOD,mean`` with ``overrides`` into WORK/LABEL -> its report."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return run_benchmark(
        data,
        work / label,
        methods=[method, "mean"],
        overrides=overrides,
        config_file=config,
        steps=steps,
        reuse=True,
        progress=False,
    )


def _job(label: str, method: str, overrides: list[str], data: Path, work: Path, config: str, steps) -> None:
    work.mkdir(parents=True, exist_ok=True)
    log = open(work / f"{label}.log", "w", buffering=1)
    sys.stdout = sys.stderr = log
    one_run(label, method, overrides, data, work, config, steps, threads=1)


def run_all(
    runs: dict[str, list[str]], method: str, data: Path, work: Path, config: str, steps: int | None, parallel: int
) -> dict[str, dict] | None:
    """Every label of ``runs`` (label -> overrides) -> {label: report}; None (said on stderr) if one failed."""
    if parallel <= 1:
        return {lb: one_run(lb, method, ov, data, work, config, steps, None) for lb, ov in runs.items()}
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_job, args=(lb, method, ov, data, work, config, steps)) for lb, ov in runs.items()]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [lb for lb, p in zip(runs, procs) if p.exitcode != 0]
    if failed:
        print(f"error: the {', '.join(failed)} run failed (log: {work}/LABEL.log)", file=sys.stderr)
        return None
    return {lb: json.loads((work / lb / "report.json").read_text()) for lb in runs}


def summary(report: dict, method: str) -> dict:
    """The numbers compared, from a benchmark report: training seconds, test MSE per group (all frames and per
    role) of the method and the training mean, each cause's error reduction and capture, the probe's."""
    res = report["results"]
    return {
        "train_seconds": report["seconds"][method],
        "mse": {m: {g: res[m]["mean"][f"mse_{g}"] for g in GROUPS} for m in (method, "mean")},
        "mse_by_role": {
            m: {role: {g: res[m]["by_role"][role]["mean"][f"mse_{g}"] for g in GROUPS} for role in res[m]["by_role"]}
            for m in (method, "mean")
        },
        "causes": {
            c: {k: v[k] for k in ("role", "reduction", "capture")}
            for c, v in report["causes"]["methods"][method].items()
        },
        "probe": {c: v["reduction"] for c, v in report["causes"]["probe"].items()},
    }


def print_runs(runs: dict[str, dict], method: str) -> None:
    for lb, s in runs.items():
        rel = ", ".join(f"{g} {s['mse'][method][g]:.3g} (mean {s['mse']['mean'][g]:.3g})" for g in GROUPS)
        causes = ", ".join(f"{c} {v['reduction']:+.3f}" for c, v in s["causes"].items())
        print(f"{lb}: test MSE {rel}; causes {causes}; trained {s['train_seconds']:.0f} s")


def add_arguments(ap: argparse.ArgumentParser, out: Path) -> None:
    """The options every paired comparison takes (``out``: its default JSON)."""
    ap.add_argument("--data", type=Path, default=Path("data/synth"), help="corpus with train, val and test splits")
    ap.add_argument("--work", type=Path, required=True, help="the benchmark reports (kept: reused when run again)")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="training recipe (default: the recommended one)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's max_steps")
    ap.add_argument("--parallel", type=int, default=2, help="1: the trainings one after the other")
    ap.add_argument("--out", type=Path, default=out)


def compare(args: argparse.Namespace, runs: dict[str, list[str]], method: str, script: str, extra=None) -> int:
    """Run every label of ``runs``, print and write the comparison (``extra``: more fields of the JSON) -> exit
    status."""
    check_splits(args.data)
    reports = run_all(runs, method, args.data, args.work, args.config, args.steps, args.parallel)
    if reports is None:
        return 1
    summaries = {lb: summary(r, method) for lb, r in reports.items()}
    print_runs(summaries, method)
    result = {
        "command": f"python benchmarks/{script} --data {args.data} --work WORK --parallel {args.parallel}",
        "data": str(args.data),
        "config": args.config,
        "steps": next(iter(reports.values()))["steps"],
        "parallel": args.parallel,
        **(extra or {}),
        "runs": summaries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0
