"""Teacher-forced against autoregressive: what an autoregressive baseline has learned, and what it keeps at inference.

    .venv/bin/python benchmarks/teacher_forcing.py --data data/synth \
        --run faceformer=DIR/runs/faceformer --run codetalker=DIR/runs/codetalker \
        --run faceformer_teacher_forced=OTHER/runs/faceformer

For each trained run (``--run LABEL=RUN_DIR``; ``dualtalk benchmark --out DIR`` leaves
``DIR/runs/<method>``), its kept model (``best/``) predicts the validation windows of its config twice:
teacher-forced (given the ground truth's previous frames, as a teacher-forced model trains) and
autoregressively (its own previous frames, as ``predict`` runs it), with the output gain set to 1 (the gain
fitted on validation would hide the difference by pulling both to the mean). Reported per group (exp / jaw /
pose): the mean squared error in units of the training std, with the training mean's beside it (about 1). A
teacher-forced error well below the mean's and an autoregressive one at or above it is exposure bias: the
model learned to continue the true motion, not to produce it from audio; more steps of the same objective do
not close that gap. JSON in ``benchmarks/results/teacher_forcing.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dualtalk.layout import GROUPS
from dualtalk.model.checkpoint import load_model
from dualtalk.train.configure import load_train_config
from dualtalk.train.data import index_split, validation_loader

RESULTS = Path(__file__).resolve().parent / "results"


def compare(run: Path, data: Path, max_batches: int) -> dict:
    model = load_model(str(run / "best")).eval()
    if hasattr(model, "output_gain"):
        model.output_gain.fill_(1.0)
    cfg = load_train_config(run / "config.yaml")
    index, _ = index_split(data, cfg.data.val_split, "val")
    loader = validation_loader(index, cfg.data, max_batches=max_batches)
    sums = {
        k: torch.zeros(model.config.motion_dim, dtype=torch.float64)
        for k in ("teacher_forced", "autoregressive", "mean")
    }
    frames = 0
    with torch.inference_mode():
        for batch in loader:
            y, mask = batch["target"], batch["mask"][..., None].float()  # (B, W, D), (B, W, 1)
            args = (batch["self_audio"], batch["partner_audio"], batch["partner_motion"])
            preds = {
                "teacher_forced": model(*args, target=y, step=10**9)[0],  # the final stage, teacher-forced
                "autoregressive": model(*args),
                "mean": model.motion_mean.expand_as(y),
            }
            for k, p in preds.items():
                sums[k] += ((((p - y) / model.motion_std) ** 2) * mask).sum((0, 1)).double()
            frames += int(mask.sum())
    return {k: {g: round(float(v[part].mean() / frames), 4) for g, part in GROUPS.items()} for k, v in sums.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, help="LABEL=RUN_DIR (a training run), repeated")
    ap.add_argument("--data", type=Path, required=True, help="the corpus the runs were trained on")
    ap.add_argument("--max-batches", type=int, default=0, help="validation batches (0 = all)")
    ap.add_argument("--out", type=Path, default=RESULTS / "teacher_forcing.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = {}
    for item in args.run:
        label, sep, run = item.partition("=")
        if not sep or not label or not run:
            raise SystemExit(f"--run {item!r}: expected LABEL=RUN_DIR")
        rows[label] = compare(Path(run), args.data, args.max_batches)
        r = rows[label]
        print(label, "  ".join(f"{k}: " + " ".join(f"{g} {v:.3f}" for g, v in x.items()) for k, x in r.items()))
    labels = " ".join(f"--run {item.partition('=')[0]}=RUN_DIR" for item in args.run)
    cmd = f"python benchmarks/teacher_forcing.py --data {args.data} {labels}"
    args.out.write_text(json.dumps({"command": cmd, "units": "MSE / training std^2", "methods": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
