"""The output gain's fitting rule, compared after the fact on the trained runs of ``benchmarks/listening.py``.

    .venv/bin/python benchmarks/gain_rule.py --work data/listening4 --seeds 114,115 \
        --out benchmarks/results/gain_rule.json

For every corpus SEED of ``--work`` (``corpus_SEED`` and the benchmark's ``report_SEED/runs/<method>/best``,
as ``listening.py`` leaves them), each learned method's kept model is run with its output gain set to 1 on
the validation and test splits; the per-coefficient gain is then fitted on validation with each rule of
``--z`` (0: least squares, ``p y / p p``; z > 0: the covariance's lower confidence bound, z standard errors
below it, the standard error from the spread of 100-frame windows, as ``dualtalk.train.engine.fit_output_gain``
does in training) and applied to the test predictions. Reported per rule: the test MSE of each group
(exp / jaw / pose) relative to the training mean's (negative: better than the mean) and, for
``dualtalk_paper``, the capture of each listening cause (``dualtalk.synth.scoring``). The checkpoint is the
one training kept under its own rule; only the gain differs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from dualtalk.inference.pipeline import InferenceOptions, predict
from dualtalk.io import load_motion
from dualtalk.layout import GROUPS
from dualtalk.model.checkpoint import load_model
from dualtalk.synth.scoring import score_corpus
from dualtalk.train.engine import fit_output_gain

RESULTS = Path(__file__).resolve().parent / "results"
WINDOW = 100  # frames per validation window, as training's


def pairs(pred_dir: Path, split_dir: Path):
    for f in sorted(pred_dir.glob("*.npy")):
        p, y = np.load(f).astype(np.float64), load_motion(split_dir / f"{f.stem}.npz").to_model().astype(np.float64)
        k = min(len(p), len(y))
        yield f, p[:k], y[:k]


def group_mse(pred_dir: Path, split_dir: Path) -> dict[str, float]:
    se, n = np.zeros(56), 0
    for _, p, y in pairs(pred_dir, split_dir):
        se += ((p - y) ** 2).sum(0)
        n += len(p)
    e = se / n
    return {group: float(e[part].mean()) for group, part in GROUPS.items()}


def corpus(work: Path, seed: int, methods: list[str], zs: list[float], tmp: Path) -> dict:
    data, report = work / f"corpus_{seed}", work / f"report_{seed}"
    mean = group_mse(report / "pred" / "mean", data / "test")
    preds: dict[str, str] = {}
    out: dict = {"seed": seed, "methods": {}}
    for m in methods:
        model = load_model(str(report / "runs" / m / "best"))
        mu, sd = model.motion_mean.double().numpy(), model.motion_std.double().numpy()
        model.output_gain.fill_(1.0)
        raw = {s: tmp / str(seed) / m / s for s in ("val", "test")}
        for split, d in raw.items():
            predict(model, data / split, d, options=InferenceOptions(progress=False))
        moments = np.zeros((5, 56))  # as training's: p y, p p, y y, (window p y)^2, windows
        for _, p, y in pairs(raw["val"], data / "val"):
            p, y = (p - mu) / sd, (y - mu) / sd
            for i in range(0, len(p), WINDOW):
                wpy = (p[i : i + WINDOW] * y[i : i + WINDOW]).sum(0)
                pw, yw = p[i : i + WINDOW], y[i : i + WINDOW]
                moments += np.stack([wpy, (pw**2).sum(0), (yw**2).sum(0), wpy**2, np.ones(56)])
        rows = {}
        for z in zs:
            gain = fit_output_gain(torch.from_numpy(moments), z).numpy()
            d = tmp / str(seed) / "gain" / f"{m}_z{z:g}"
            d.mkdir(parents=True, exist_ok=True)
            for f, p, _ in pairs(raw["test"], data / "test"):
                np.save(d / f.name, (mu + gain * (p - mu)).astype(np.float32))
            preds[f"{m}_z{z:g}"] = str(d)
            mse = group_mse(d, data / "test")
            rows[f"{z:g}"] = {
                "mse_vs_mean": {g: mse[g] / mean[g] - 1 for g in mse},
                "gain_pose": [round(float(x), 4) for x in gain[GROUPS["pose"]]],
                "coefficients_at_mean": int((gain == 0).sum()),
            }
        out["methods"][m] = rows
    scores = score_corpus(data, preds, with_probe=True)
    for m in methods:
        for z in zs:
            rows = scores["methods"][f"{m}_z{z:g}"]
            out["methods"][m][f"{z:g}"]["capture"] = {
                c: v["capture"] for c, v in rows.items() if v["role"] == "listening"
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="listening.py's --work (corpora and reports)")
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--methods", default="dualtalk_paper,speaker_only,listener_only")
    ap.add_argument("--z", default="0,1,2", help="the rules compared (standard errors below the covariance)")
    ap.add_argument("--out", type=Path, default=RESULTS / "gain_rule.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    zs = [float(z) for z in args.z.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        corpora = [corpus(args.work, s, methods, zs, Path(tmp)) for s in seeds]
    for c in corpora:
        for m, rows in c["methods"].items():
            for z, r in rows.items():
                groups = " ".join(f"{g} {v:+.2%}" for g, v in r["mse_vs_mean"].items())
                caps = " ".join(f"{k} {v:.2f}" for k, v in r["capture"].items() if v is not None)
                print(f"{c['seed']} {m:15s} z={z}: vs mean {groups}; capture {caps}")
    result = {"command": "python benchmarks/gain_rule.py " + " ".join(
        f"--{k} {v}" for k, v in (("work", args.work), ("seeds", args.seeds), ("z", args.z))),
        "corpora": corpora}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
