"""Speed of ``dualtalk evaluate --protocol reference`` against direct per-element implementations.

    .venv/bin/python benchmarks/evaluate.py                                   # 100 conversations x 60 s
    .venv/bin/python benchmarks/evaluate.py --conversations 10 --seconds 20 --baseline-files 2   # quick check

Generates ``--conversations`` two-person conversations of ``--seconds`` seconds (ground truth for both
people, predictions for both people = ground truth + smooth noise, a few frames longer or shorter), then
times per conversation (two prediction files):

- ``dualtalk``: :func:`dualtalk.eval.evaluate` (reference protocol, no per-role breakdown), serially
  (``--workers 1``) and with the automatic number of worker processes;
- ``per_element``: a direct per-element implementation of the same formulas (Python loops over the
  elements for means, covariances, MSE, variance, STS, Pearson, the SID histogram and entropy; the
  k-means and the matrix square root from scikit-learn / SciPy as in the reference), on
  ``--baseline-files`` files;
- ``reference_style``: the reference script's own mix (NumPy for means / covariances / variance /
  correlation, per-element Python loops for STS and the SID histogram), on the same files.

The baselines run with one BLAS / OpenMP thread, like dualtalk's per-file jobs, so that the comparison is
between implementations, not thread contention.

Both baselines are checked to give the same numbers as ``dualtalk``. Results: printed and saved to
``benchmarks/results/evaluate.json``. Timings on a shared machine are noisy; re-run on a quiet one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import linalg, signal
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from dualtalk.eval import evaluate
from dualtalk.eval.data import GROUPS, load_item, pair_files
from dualtalk.eval.metrics import SID_CLUSTERS, kmeans_labels
from dualtalk.io.files import atomic_write_text
from dualtalk.io.motion import Motion, save_model_motion, save_motion

FPS = 25
RESULTS = Path(__file__).resolve().parent / "results" / "evaluate.json"


# ----------------------------------------------------------------------------- data


def smooth(rng, t, scale=1.0):
    return (scale * signal.lfilter([0.3], [1, -0.9], rng.standard_normal((t, 56)), axis=0)).astype(np.float32)


def generate(root: Path, conversations: int, seconds: float, seed: int = 0) -> tuple[Path, Path]:
    gt_dir, pred_dir = root / "gt", root / "pred"
    gt_dir.mkdir(parents=True, exist_ok=True)
    pred_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = int(seconds * FPS)
    for c in tqdm(range(conversations), desc="generate", unit="conv", leave=False):
        for k in (1, 2):
            gt = smooth(rng, t)  # (T, 56)
            save_motion(gt_dir / f"conv{c:03d}_speaker{k}.npz", Motion.from_model(gt))
            tp = t + int(rng.integers(-3, 4))  # predictions a few frames longer or shorter
            pred = np.concatenate([gt, gt[-3:]])[:tp] + smooth(rng, tp, 0.5)
            save_model_motion(pred_dir / f"conv{c:03d}_speaker{k}.npy", pred)
    return pred_dir, gt_dir


# ----------------------------------------------------------------------------- baselines


def _mean_cols(rows):  # rows: list of lists (T x D)
    n, d = len(rows), len(rows[0])
    out = [0.0] * d
    for r in rows:
        for j in range(d):
            out[j] += r[j]
    return [v / n for v in out]


def _cov(rows, mu):  # ddof 1, symmetric: upper triangle then mirror
    n, d = len(rows), len(mu)
    c = [[0.0] * d for _ in range(d)]
    for r in rows:
        dev = [r[j] - mu[j] for j in range(d)]
        for i in range(d):
            di = dev[i]
            ci = c[i]
            for j in range(i, d):
                ci[j] += di * dev[j]
    for i in range(d):
        for j in range(i, d):
            c[i][j] /= n - 1
            c[j][i] = c[i][j]
    return c


def _fd_loops(a, b):
    mu1, mu2 = _mean_cols(a), _mean_cols(b)
    s1, s2 = np.array(_cov(a, mu1)), np.array(_cov(b, mu2))
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        off = np.eye(len(mu1)) * 1e-6
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = covmean.real
    diff = sum((x - y) ** 2 for x, y in zip(mu1, mu2))
    return diff + sum(s1[i][i] + s2[i][i] for i in range(len(mu1))) - 2 * sum(covmean[i][i] for i in range(len(mu1)))


def _sts_loops(x, y):
    ans = 0.0
    for d in range(len(x[0])):
        for i in range(1, len(x)):
            ans += ((x[i][d] - x[i - 1][d]) - (y[i][d] - y[i - 1][d])) ** 2 / 0.1
    return ans**0.5


def _entropy_loops(labels, k):
    hist = [0] * k
    for lab in labels:
        hist[lab] += 1
    total = sum(hist)
    ent = 0.0
    for h in hist:
        p = h / total
        ent += p * np.log2(p + 1e-6)
    return -ent


def _pearson_loops(a, b):
    fa = [v for r in a for v in r]
    fb = [v for r in b for v in r]
    n = len(fa)
    ma, mb = sum(fa) / n, sum(fb) / n
    sab = saa = sbb = 0.0
    for x, y in zip(fa, fb):
        sab += (x - ma) * (y - mb)
        saa += (x - ma) ** 2
        sbb += (y - mb) ** 2
    return sab / (saa * sbb) ** 0.5


def per_element_file(a) -> dict:
    """Every reference number of one item with per-element Python loops (k-means / sqrtm from libraries)."""
    out = {}
    for g in GROUPS:
        P, G, Q = (a.group(w, g) for w in ("pred", "gt", "partner"))
        p, t, q = P.tolist(), G.tolist(), Q.tolist()  # Python floats: faster than numpy scalar indexing
        n, d = len(p), len(p[0])
        out[f"fid_{g}"] = _fd_loops(p, t)
        out[f"p_fid_{g}"] = _fd_loops([qq + tt for qq, tt in zip(q, t)], [qq + pp for qq, pp in zip(q, p)])
        out[f"mse_{g}"] = sum((p[i][j] - t[i][j]) ** 2 for i in range(n) for j in range(d)) / (n * d)
        out[f"sid_{g}"] = _entropy_loops(kmeans_labels(P, G, SID_CLUSTERS[g]).tolist(), SID_CLUSTERS[g])
        out[f"sts_{g}"] = _sts_loops(p, t)
        mu = _mean_cols(p)
        out[f"variance_pre_{g}"] = sum(sum((r[j] - mu[j]) ** 2 for r in p) / n for j in range(d)) / d
        out[f"rpcc_{g}"] = abs(_pearson_loops(t, q) - _pearson_loops(p, q))
    return out


def reference_style_file(a) -> dict:
    """The reference script's mix: NumPy statistics, per-element loops for STS and the SID histogram."""

    def fd(x, y):
        s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        covmean = linalg.sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            off = np.eye(s1.shape[0]) * 1e-6
            covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
        diff = x.mean(0) - y.mean(0)
        return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)

    def sts_loop(x, y):
        ans = 0
        for d in range(x.shape[1]):
            for i in range(1, x.shape[0]):
                ans += ((x[i][d] - x[i - 1][d]) - (y[i][d] - y[i - 1][d])) ** 2 / 0.1
        return np.sqrt(ans)

    out = {}
    for g in GROUPS:
        p, t, q = (a.group(w, g) for w in ("pred", "gt", "partner"))
        k = SID_CLUSTERS[g]
        out[f"fid_{g}"] = fd(p, t)
        out[f"p_fid_{g}"] = fd(np.concatenate([q, t], -1), np.concatenate([q, p], -1))
        out[f"mse_{g}"] = np.mean((p - t) ** 2)
        labels = kmeans_labels(p, t, k)
        hist = [0] * k
        for i in range(len(labels)):
            hist[labels[i]] += 1
        h = np.array(hist) / np.sum(hist)
        ent = 0
        for i in range(k):
            ent += h[i] * np.log2(h[i] + 1e-6)
        out[f"sid_{g}"] = -ent
        out[f"sts_{g}"] = sts_loop(p, t)
        out[f"variance_pre_{g}"] = np.mean(np.var(p, axis=0))
        out[f"rpcc_{g}"] = abs(
            np.corrcoef(t.reshape(-1), q.reshape(-1))[0, 1] - np.corrcoef(p.reshape(-1), q.reshape(-1))[0, 1]
        )
    return out


def _max_rel_err(a: dict, b: dict) -> float:
    return max(abs(float(a[k]) - float(b[k])) / max(abs(float(b[k])), 1e-12) for k in b)


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conversations", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--baseline-files", type=int, default=2, help="files timed with the per-element baselines")
    ap.add_argument("--data", help="keep the generated data here (default: a temporary directory)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else Path(tmp)
        pred_dir, gt_dir = generate(root, args.conversations, args.seconds)
        files = 2 * args.conversations

        # warm-up (imports, first k-means / sqrtm calls) on one conversation, untimed
        warm = root / "warm_pred"
        warm.mkdir(exist_ok=True)
        for k in (1, 2):
            name = f"conv000_speaker{k}.npy"
            (warm / name).write_bytes((pred_dir / name).read_bytes())
        evaluate(warm, gt_dir, roles="off", workers=1)

        timings = {}
        results = {}
        for label, workers in (("dualtalk_serial", 1), ("dualtalk_parallel", None)):
            t0 = time.perf_counter()
            results[label] = evaluate(
                pred_dir, gt_dir, protocol="reference", roles="off", workers=workers, progress=True
            )
            timings[label] = (time.perf_counter() - t0) / args.conversations
            print(
                f"{label:<20} {timings[label] * 1000:9.1f} ms / conversation "
                f"({results[label]['info']['workers']} worker(s))"
            )
        assert results["dualtalk_serial"]["per_file"] == results["dualtalk_parallel"]["per_file"]

        items = pair_files(pred_dir, gt_dir)[: args.baseline_files]
        arrays = [load_item(it) for it in items]
        reference_style_file(arrays[0])  # warm-up, untimed
        errors = {}
        for label, fn in (("reference_style", reference_style_file), ("per_element", per_element_file)):
            t0 = time.perf_counter()
            with threadpool_limits(1):  # as dualtalk's file jobs: compare implementations, not thread contention
                outs = [fn(a) for a in tqdm(arrays, desc=label, unit="file", leave=False)]
            timings[label] = (time.perf_counter() - t0) / len(arrays) * 2  # two files per conversation
            errors[label] = max(
                _max_rel_err(o, results["dualtalk_serial"]["per_file"][it.key]) for o, it in zip(outs, items)
            )
            print(
                f"{label:<20} {timings[label] * 1000:9.1f} ms / conversation "
                f"(on {len(arrays)} files; max rel. difference from dualtalk {errors[label]:.1e})"
            )
            assert errors[label] < 1e-5, f"{label} disagrees with dualtalk: {errors[label]}"

    best = min(timings["dualtalk_serial"], timings["dualtalk_parallel"])
    speedups = {
        "vs_per_element_serial": timings["per_element"] / timings["dualtalk_serial"],
        "vs_per_element_best": timings["per_element"] / best,
        "vs_reference_style_serial": timings["reference_style"] / timings["dualtalk_serial"],
        "vs_reference_style_best": timings["reference_style"] / best,
    }
    for k, v in speedups.items():
        print(f"speed-up {k:<28} {v:7.1f}x")
    report = {
        "benchmark": "evaluate",
        "command": "python benchmarks/evaluate.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "conversations": args.conversations,
            "seconds": args.seconds,
            "files": files,
            "baseline_files": len(arrays),
            "protocol": "reference",
        },
        "seconds_per_conversation": timings,
        "speedup": speedups,
        "baseline_max_rel_difference": errors,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": load,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
