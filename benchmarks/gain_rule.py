"""The output gain's fitting rules, compared after the fact on the trained runs of ``benchmarks/listening.py``.

    .venv/bin/python benchmarks/gain_rule.py --work data/listening2 --seeds 109,110,111,112,113 \
        --rules z0,z0+gate1 --out benchmarks/results/gain_rule.json

For every corpus SEED of ``--work`` (``corpus_SEED`` and the benchmark's ``report_SEED/runs/<method>/best``,
as ``listening.py`` leaves them), each learned method's kept model has its gain refitted on the validation
split by each rule of ``--rules``, with training's own code (``dualtalk.train.engine.evaluate`` over the
validation windows of the run's config): ``zZ`` the per-coefficient gain from the covariance's lower
confidence bound Z standard errors below it (``output_gain_z``; 0: least squares), ``sZ`` the same with the
covariance's own noise taken off (``fit_output_gain(shrink=True)``), ``+gateT`` the group gate
(``output_group_gate``: a group not beating the mean by T standard errors over 10 cross-fitted folds
outputs the mean). The test split is then predicted and scored as ``dualtalk benchmark`` scores it
(``dualtalk.eval.evaluate``, reference protocol): each group's MSE (exp / jaw / pose) relative to the
training mean's (``dualtalk.baselines``; negative: better) and, for ``dualtalk_paper``, the capture of each
listening cause (``dualtalk.synth.scoring``). The checkpoint is the one its training kept under its own
rule; only the gain differs (the gate does not choose the step in training either). Where a rule is the run's
own, the gain refitted here is compared with the one its training stored (``stored_gain_max_difference``).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from dualtalk.baselines import predict_baseline
from dualtalk.eval import evaluate as score
from dualtalk.inference.pipeline import InferenceOptions, predict
from dualtalk.model.checkpoint import load_model
from dualtalk.synth.scoring import score_corpus
from dualtalk.train.configure import load_train_config
from dualtalk.train.data import index_split, validation_loader
from dualtalk.train.engine import Dist, evaluate
from dualtalk.train.loss import weights

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = ("exp", "jaw", "pose")


def parse_rule(rule: str) -> tuple[float, float, str, bool]:
    """``z0`` / ``z2+gate1`` / ``z0+gate1/conversation`` / ``s0+gate1`` -> (output_gain_z, output_group_gate,
    gate folds, shrink: ``sZ`` is ``zZ`` with the covariance's noise taken off, ``fit_output_gain(shrink=True)``)."""
    m = re.fullmatch(r"([zs])([0-9.]+)(?:\+gate([0-9.]+)(?:/(window|conversation))?)?", rule)
    if not m:
        raise SystemExit(
            f"--rules: {rule!r} is not zZ, sZ, zZ+gateT or zZ+gateT/FOLDS (e.g. z0, s0+gate1, z0+gate1/conversation)"
        )
    return float(m[2]), float(m[3] or 0.0), m[4] or "window", m[1] == "s"


def group_mse(pred_dir: Path, test_dir: Path) -> dict[str, float]:
    mean = score(pred_dir, test_dir, protocol="reference", roles="on")["mean"]
    return {g: mean[f"mse_{g}"] for g in GROUPS}


def corpus(work: Path, seed: int, methods: list[str], rules: list[str], tmp: Path) -> dict:
    data, report = work / f"corpus_{seed}", work / f"report_{seed}"
    predict_baseline("mean", data / "train", data / "test", tmp / str(seed) / "mean")
    mean = group_mse(tmp / str(seed) / "mean", data / "test")
    preds: dict[str, str] = {}
    out: dict = {"seed": seed, "methods": {}}
    for m in methods:
        run = report / "runs" / m
        model = load_model(str(run / "best"))
        stored = np.array(model.extra["output_gain"])  # the gain its training fitted (its own rule)
        cfg = load_train_config(run / "config.yaml")
        index, _ = index_split(data, cfg.data.val_split, "val")
        loader = validation_loader(index, cfg.data)
        w = weights(cfg.loss)
        rows = {}
        for rule in rules:
            z, gate, folds, shrink = parse_rule(rule)
            model.output_gain.fill_(1.0)
            std = model.motion_std if cfg.loss.normalized else None
            stats = (model.motion_mean, model.motion_std)
            val = evaluate(
                model,
                loader,
                Dist(),
                std,
                w,
                None,
                False,
                stats,
                gain_z=z,
                group_gate=gate,
                gate_folds=folds,
                gain_shrink=shrink,
            )
            model.output_gain.copy_(torch.from_numpy(val["gain"]))
            pred = tmp / str(seed) / m / rule.replace("/", "_")
            predict(model, data / "test", pred, options=InferenceOptions(progress=False))
            preds[f"{m}:{rule}"] = str(pred)
            mse = group_mse(pred, data / "test")
            own = (cfg.output_gain_z, cfg.output_group_gate, "window", False)  # training's folds are by window
            if (z, gate, folds, shrink) == own:  # training's own rule: the same gain
                out.setdefault("stored_gain_max_difference", {})[m] = float(np.abs(val["gain"] - stored).max())
            rows[rule] = {
                "mse_vs_mean": {g: mse[g] / mean[g] - 1 for g in GROUPS},
                "groups_at_mean": [g for g, k in val["kept"].items() if not k],
                "gate_margins": {g: round(v, 2) for g, v in val["margins"].items()},
                "coefficients_at_mean": int((val["gain"] == 0).sum()),
            }
        out["methods"][m] = rows
    scores = score_corpus(data, preds, with_probe=True)
    for m in methods:
        for rule in rules:
            caps = scores["methods"][f"{m}:{rule}"]
            out["methods"][m][rule]["capture"] = {c: v["capture"] for c, v in caps.items() if v["role"] == "listening"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="listening.py's --work (corpora and reports)")
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--methods", default="dualtalk_paper,speaker_only,listener_only")
    ap.add_argument("--rules", default="z0,z0+gate1", help="the rules compared: zZ or zZ+gateT, comma-separated")
    ap.add_argument("--out", type=Path, default=RESULTS / "gain_rule.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods, rules = args.methods.split(","), args.rules.split(",")
    for rule in rules:
        parse_rule(rule)
    with tempfile.TemporaryDirectory() as tmp:
        corpora = []
        for s in seeds:
            corpora.append(corpus(args.work, s, methods, rules, Path(tmp)))
            for m, rows in corpora[-1]["methods"].items():
                for rule, r in rows.items():
                    groups = " ".join(f"{g} {v:+.2%}" for g, v in r["mse_vs_mean"].items())
                    caps = " ".join(f"{k} {v:.2f}" for k, v in r["capture"].items() if v is not None)
                    at_mean = f" (at the mean: {', '.join(r['groups_at_mean'])})" if r["groups_at_mean"] else ""
                    at_mean += " margins " + " ".join(f"{g} {v:+.1f}" for g, v in r["gate_margins"].items())
                    print(f"{s} {m:15s} {rule:9s}: vs mean {groups}{at_mean}; capture {caps}", flush=True)
    worse = {
        rule: [f"{c['seed']} {m}:{g}" for c in corpora for m, rows in c["methods"].items()
               for g, v in rows[rule]["mse_vs_mean"].items() if v > 0]
        for rule in rules
    }  # fmt: skip
    for rule, w in worse.items():
        print(f"{rule}: learned method x group worse than the mean: {len(w)} {w}")
    result = {
        "command": f"python benchmarks/gain_rule.py --work {args.work} --seeds {args.seeds} --rules {args.rules}",
        "worse_than_mean": worse,
        "corpora": corpora,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
