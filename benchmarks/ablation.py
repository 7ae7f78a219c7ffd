"""Why listening was not learned: the recommended recipe with one factor changed at a time.

    .venv/bin/python benchmarks/ablation.py                          # every factor, tuning corpora seeds 1, 2
    .venv/bin/python benchmarks/ablation.py --factors recipe,no_motion_skip --seeds 1

Each factor is the recommended CPU recipe (``dualtalk/assets/configs/recipe-cpu.yaml``) with the overrides
below; ``before`` is the paper variant as it was before the recipe (no new information paths, no output
gain: what issue 10 measured). Every variant trains ``dualtalk_paper`` on corpora from ``dualtalk synth
--causes random`` (40 x 45 s; the seeds the recipe was tuned on, 1 and 2, by default), predicts the test
split and scores every cause against the ridge probe (``dualtalk.synth.scoring``). Two variants train at
once, one thread each (``dualtalk.benchmark.train_in_parallel``); WORK/seedN/{runs,pred,logs}/VARIANT keep
everything, and a re-run skips the variants already predicted.

Writes ``benchmarks/results/ablation.json`` and ``ablation.png`` (error reduction per cause and variant,
relative to the probe's).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
PATHS_OFF = [
    "model.enhancer_residual=false",
    "model.motion_skip=false",
    "model.temporal_kernel=0",
    "model.lstm_residual=false",
    "model.interaction_residual=false",
    "model.mirror_kernel=0",
]
#: factor -> overrides of the recipe (the issue's list: information path, loss weighting, normalisation,
#: window length, capacity, optimisation, steps)
FACTORS = {
    "recipe": [],
    "before": PATHS_OFF + ["model.output_gain=false"],
    "no_partner_audio_residual": ["model.enhancer_residual=false"],
    "no_motion_skip": ["model.motion_skip=false"],
    "no_temporal_conv": ["model.temporal_kernel=0"],
    "no_mirror_path": ["model.mirror_kernel=0"],
    "no_interaction_residual": ["model.interaction_residual=false"],
    "no_output_gain": ["model.output_gain=false"],
    "loss_exp_3": ["loss.exp=3"],
    "loss_released_1111": ["loss.exp=1"],
    "no_normalization": ["model.normalize_motion=false", "model.output_gain=false", "loss.normalized=false"],
    "window_8s": ["data.window_frames=200", "data.batch_size=8"],
    "d32": ["model.feature_dim=32"],
    "d128": ["model.feature_dim=128"],
    "lr_3e-4": ["optim.lr=3e-4"],
    "steps_600": ["max_steps=600"],
    "steps_2400": ["max_steps=2400", "optim.step_size=1000"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--factors", default=",".join(FACTORS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="override every variant's max_steps (smoke tests)")
    ap.add_argument("--conversations", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--work", type=Path, default=Path("data/ablation"))
    ap.add_argument("--out", type=Path, default=RESULTS / "ablation.json")
    args = ap.parse_args()
    from dualtalk.synth import make_corpus
    from dualtalk.synth.corpus import load_manifest
    from dualtalk.synth.scoring import score_corpus

    seeds = [int(s) for s in args.seeds.split(",")]
    factors = [f for f in args.factors.split(",") if f]
    unknown = [f for f in factors if f not in FACTORS]
    if unknown:
        ap.error(f"unknown factor(s) {unknown}; known: {', '.join(FACTORS)}")
    corpora = {}
    for seed in seeds:
        data = args.work / f"corpus_{seed}"
        if not (data / "manifest.json").exists():
            shutil.rmtree(data, ignore_errors=True)
            n = max(1, args.conversations // 10)
            make_corpus(
                data,
                args.conversations,
                args.seconds,
                seed=seed,
                causes="random",
                progress=False,
                splits={"train": args.conversations - 2 * n, "val": n, "test": n},
            )
        corpora[seed] = data
    from dualtalk.benchmark import DEFAULT_CONFIG, LEARNED, train_in_parallel
    from dualtalk.train import compose_train_config

    done = {}
    for seed, data in corpora.items():
        work = args.work / f"seed{seed}"
        todo = [f for f in factors if not (work / "pred" / f).is_dir()]  # a re-run keeps finished variants
        configs = [
            (
                f,
                compose_train_config(
                    config_file=DEFAULT_CONFIG,
                    overrides=LEARNED["dualtalk_paper"]
                    + FACTORS[f]
                    + ([f"max_steps={args.steps}"] if args.steps else []),
                ),
            )
            for f in todo
        ]
        seconds = train_in_parallel(configs, data, work, args.jobs, progress=True) if configs else {}
        for f in factors:
            done[(seed, f)] = seconds.get(f)
    out = {"seeds": seeds, "factors": {f: FACTORS[f] for f in factors}, "corpora": {}}
    for seed, data in corpora.items():
        scored = score_corpus(data, {f: args.work / f"seed{seed}" / "pred" / f for f in factors if (seed, f) in done})
        pr = scored["probe"]
        rows = {f: {"train_seconds": done[(seed, f)], "scores": scores} for f, scores in scored["methods"].items()}
        out["corpora"][str(seed)] = {"scenario": load_manifest(data)["scenario"], "probe": pr, "variants": rows}
        print(f"seed {seed}: probe " + ", ".join(f"{k} {v['reduction']:+.3f}" for k, v in pr.items()))
        for f, row in rows.items():
            print(f"  {f:28s} " + ", ".join(f"{k} {v['reduction']:+.3f}" for k, v in row["scores"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    plot(out, args.out.with_suffix(".png"))
    print(f"saved {args.out} and {args.out.with_suffix('.png')}")
    return 0


def plot(out: dict, path: Path) -> None:
    """Heat map: variants x (corpus, cause), cell = error reduction / probe's (speech: reduction)."""
    from matplotlib.figure import Figure

    cols, labels = [], []
    for seed, c in out["corpora"].items():
        for name in next(iter(c["variants"].values()))["scores"] if c["variants"] else []:
            cols.append((seed, name))
            labels.append(f"{seed}:{name.replace('partner_', '')}")
    factors = list(out["factors"])
    grid = np.full((len(factors), len(cols)), np.nan)
    for i, f in enumerate(factors):
        for j, (seed, name) in enumerate(cols):
            row = out["corpora"][seed]["variants"].get(f)
            if row:
                s = row["scores"][name]
                grid[i, j] = s["capture"] if s.get("capture") is not None else s["reduction"]
    fig = Figure(figsize=(max(6.0, 1.6 + 0.6 * len(cols)), 1.6 + 0.32 * len(factors)), dpi=110)
    ax = fig.subplots()
    im = ax.imshow(np.clip(grid, -0.5, 1.5), cmap="RdYlGn", vmin=-0.5, vmax=1.5, aspect="auto")
    for i in range(len(factors)):
        for j in range(len(cols)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_yticks(range(len(factors)), factors, fontsize=7)
    ax.set_xticks(range(len(cols)), labels, rotation=60, ha="right", fontsize=6)
    ax.set_title("capture of the probe's error reduction per cause (speech: the reduction itself)", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
