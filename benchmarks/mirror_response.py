"""How strongly a trained model mirrors the partner's face, against what the data asks for.

    .venv/bin/python benchmarks/mirror_response.py --work data/listening8 --seeds 123
    .venv/bin/python benchmarks/mirror_response.py --work WORK --seeds 124,125 --out benchmarks/results/x.json

For every corpus SEED of ``--work`` (``corpus_SEED`` and ``report_SEED/runs/dualtalk_paper/best`` as
``benchmarks/listening.py`` leaves them) and every cause carried by the partner's face alone on one
coefficient i (a mirror), in normalised units (the model's stored mean and std):

- ``data``: the sum over lags 0..k-1 of a ridge filter from the partner's coefficient i to the person's, fitted
  on the training split's listening frames (what a linear mirror should add per unit of the partner's motion);
- ``model``: the same sum for the whole trained model, measured by moving the partner's coefficient i by one
  std at frames of test listening stretches and reading the output's coefficient i over the next k frames
  (output gain set to 1);
- ``path``: the mimicry path's share: its filter's sum times its gate's mean on those listening frames;
- ``gate``: the gate's mean on the test split's listening and speaking frames;
- ``path_refit``: the filter's sum after a least-squares refit on the training split with the gate as trained
  (the filter is linear given the gate: what more steps of the same objective could reach).

Prints one line per cause; JSON in ``--out`` (default: none).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from dualtalk.io.audio import load_audio
from dualtalk.model.checkpoint import load_model
from dualtalk.synth.corpus import load_manifest
from dualtalk.synth.scoring import _lagged, _sides
from dualtalk.train.configure import load_train_config
from dualtalk.train.data import index_split, validation_loader
from dualtalk.train.engine import run_model


def ridge_sum(sides, coef: int, k: int, mu: float, sd: float, alpha: float = 10.0) -> float:
    """The sum of a ridge filter partner[i] (lags 0..k-1) -> person[i], listening frames, normalised units."""
    xs, ys = [], []
    for s in sides:
        lagged = _lagged(((s.partner[:, coef] - mu) / sd)[:, None], range(k)).astype(np.float64)  # (T, k)
        keep = s.listening > 0.5
        xs.append(lagged[keep])
        ys.append(((s.target[:, coef] - mu) / sd)[keep])
    a, b = np.concatenate(xs), np.concatenate(ys)
    return float(np.linalg.solve(a.T @ a + alpha * np.eye(k), a.T @ b).sum())


def refit_filter_sums(model, loader) -> torch.Tensor:
    """(D,) the mimicry filter's sums after least squares on ``loader``'s windows, the gate fixed."""
    path = model.mirror_path
    seen: dict = {}
    hook = path.register_forward_hook(
        lambda mod, inp, out: seen.update(x=inp[0], g=torch.sigmoid(mod.mirror_gate(inp[1])), o=out)
    )
    k = path.mirror_filter.weight.shape[-1]
    d = model.config.motion_dim
    lhs = torch.zeros(d, k, k, dtype=torch.float64)
    rhs = torch.zeros(d, k, dtype=torch.float64)
    mu, sd = model.motion_mean, model.motion_std
    with torch.inference_mode():
        for batch in loader:
            pred = run_model(model, batch, torch.device("cpu"), False)  # (B, T, D)
            rest = (pred - mu) / sd - seen["o"]  # what the model outputs without the path, normalised
            resid = ((batch["target"].float() - mu) / sd - rest).transpose(1, 2).double()  # (B, D, T)
            lagged = torch.nn.functional.pad(seen["x"].transpose(1, 2), (k - 1, 0)).unfold(2, k, 1)  # (B, D, T, k)
            z = (seen["g"].transpose(1, 2)[..., None] * lagged).double() * batch["mask"][:, None, :, None]
            lhs += torch.einsum("bdtj,bdtl->djl", z, z)
            rhs += torch.einsum("bdtj,bdt->dj", z, resid)
    hook.remove()
    ridge = 1e-3 * torch.diagonal(lhs, dim1=1, dim2=2).mean(1)  # (D,) a little, for coefficients never moved
    return torch.linalg.solve(lhs + ridge[:, None, None] * torch.eye(k, dtype=torch.float64), rhs).sum(1)


def corpus(work: Path, seed: int) -> list[dict]:
    data = work / f"corpus_{seed}"
    run = work / f"report_{seed}" / "runs" / "dualtalk_paper"
    for need in (data / "manifest.json", run / "best"):
        if not need.exists():
            raise SystemExit(f"{need}: not found (--work must be benchmarks/listening.py's, with corpus {seed} run)")
    manifest = load_manifest(data)
    mirrors = [
        c for c in manifest["scenario"]["causes"] if c["carrier"] == "motion" and len(c["targets"]) == 1
    ]  # fmt: skip
    if not mirrors:
        return []
    model = load_model(str(run / "best")).eval()
    if not hasattr(model, "mirror_path"):
        raise SystemExit(f"{run}: the model has no mimicry path (mirror_kernel)")
    model.output_gain.fill_(1.0)
    path = model.mirror_path
    k = path.mirror_filter.weight.shape[-1]
    mu, sd = model.motion_mean.numpy(), model.motion_std.numpy()
    train, test = _sides(data, manifest, "train"), _sides(data, manifest, "test")
    cfg = load_train_config(run / "config.yaml")
    index, _ = index_split(data, cfg.data.train_split, "train")
    refit = refit_filter_sums(model, validation_loader(index, cfg.data))
    seen: dict = {}
    path.register_forward_hook(lambda mod, inp, out: seen.update(g=torch.sigmoid(mod.mirror_gate(inp[1]))))
    out = []
    for cause in mirrors:
        i = cause["targets"][0]
        gates = {"listening": [], "speaking": []}
        responses = []
        for side in test:
            own = torch.from_numpy(load_audio(data / "test" / f"{side.name}.wav")).float()[None]
            partner_audio = torch.from_numpy(side.partner_audio).float()[None]
            motion = torch.from_numpy(side.partner).float()[None]  # (1, T, 56)
            with torch.inference_mode():
                base = model(own, partner_audio, motion)[0, :, i].numpy()
                g = seen["g"][0, :, i].numpy()
                n = min(len(g), len(side.listening))
                listening = side.listening[:n] > 0.5
                gates["listening"].append(g[:n][listening])
                gates["speaking"].append(g[:n][~listening])
                for t0 in range(k, n - k, 3 * k):  # frames inside a listening stretch of k frames
                    if not listening[t0 : t0 + k].all():
                        continue
                    moved = motion.clone()
                    moved[0, t0, i] += float(sd[i])
                    after = model(own, partner_audio, moved)[0, :, i].numpy()
                    responses.append((after - base)[t0 : t0 + k].sum() / sd[i])
        gate_listening = float(np.concatenate(gates["listening"]).mean())
        row = {
            "seed": seed,
            "cause": cause["name"],
            "coefficient": i,
            "delay": cause["delay"],
            "data": ridge_sum(train, i, k, float(mu[i]), float(sd[i])),
            "model": float(np.mean(responses)) if responses else None,
            "path": float(path.mirror_filter.weight[i, 0].detach().sum()) * gate_listening,
            "gate": {"listening": gate_listening, "speaking": float(np.concatenate(gates["speaking"]).mean())},
            "path_refit": float(refit[i]) * gate_listening,
            "impulses": len(responses),
        }
        out.append(row)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="listening.py's --work (corpora and reports)")
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for s in (int(x) for x in args.seeds.split(",")):
        for r in corpus(args.work, s):
            rows.append(r)
            print(
                f"{s} {r['cause']} (coefficient {r['coefficient']}, {r['delay']:.2f} s): response sum "
                f"data {r['data']:+.3f}, "
                f"model {r['model']:+.3f}, path {r['path']:+.3f} (refit {r['path_refit']:+.3f}); gate listening "
                f"{r['gate']['listening']:.2f}, speaking {r['gate']['speaking']:.2f}",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps({"command": " ".join(["python"] + sys.argv), "causes": rows}, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
