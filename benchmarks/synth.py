"""Synthetic corpus: generation speed, the non-learned baselines against the noise floor, a learnability probe.

    .venv/bin/python benchmarks/synth.py                                  # 20 x 60 s conversations
    .venv/bin/python benchmarks/synth.py --conversations 6 --seconds 20   # quick check

Prints the figures and writes benchmarks/results/synth.json:

- seconds to generate one conversation (median of 5) and to generate and write one (corpus mean);
- MSE per group (exp / jaw / pose) of the baselines ``mean``, ``mirror`` and ``random_segment`` on the
  test split, next to the corpus's noise floor (the error of an oracle that knows every rule);
- learnability probe (``--no-probe`` skips it): ridge regressions from log-mel features (40 bands, 25 fps;
  own audio with +-3 frames of context, partner audio with 0-14 frames of history) or the partner's smile
  coefficients (exp 3 and 20-35, 0-24 frames of history) to motion channels, fitted on train, scored on
  test: each channel is predictable from the input the table of causes names, and much less from the other.
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
from dualtalk.synth.causes import standard

GROUPS = {"exp": slice(0, 50), "jaw": slice(50, 53), "pose": slice(53, 56)}
SMILE_DIMS = next(c for c in standard().causes if c.name == "smile").targets  # exp 3, 20-35
RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def group_mse(pred_dir: Path, gt_dir: Path) -> dict:
    err = {g: [] for g in GROUPS}
    for p in sorted(pred_dir.glob("*.npy")):
        pred = load_model_motion(p)
        gt = load_motion(gt_dir / f"{p.stem}.npz").to_model()
        for g, s in GROUPS.items():
            err[g].append((pred[:, s] - gt[:, s]) ** 2)
    return {g: float(np.mean(np.concatenate(v))) for g, v in err.items()}


def log_mel(wave: np.ndarray) -> np.ndarray:
    """(T, 40) log-mel energies per 40 ms motion frame."""
    from scipy import signal
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(
        num_frequency_bins=257, num_mel_filters=40, min_frequency=50, max_frequency=8000, sampling_rate=16000
    )  # (257, 40)
    _, _, spec = signal.stft(wave, fs=16000, nperseg=512, noverlap=512 - 320, boundary=None, padded=True)
    mel = np.log(np.abs(spec.T) ** 2 @ fb + 1e-6)  # (N, 40) at 50 frames per second
    t = len(wave) // 640
    return mel[: 2 * t].reshape(t, 2, 40).mean(axis=1)  # (T, 40)


def lagged(x: np.ndarray, lags) -> np.ndarray:
    return np.concatenate([np.roll(x, lag, axis=0) for lag in lags], axis=1)  # (T, D * len(lags))


def probe(root: Path, manifest: dict) -> dict:
    """Ridge probes: test MSE of each (target, input) pair, with the train-mean prediction and the floor."""
    from sklearn.linear_model import Ridge

    from dualtalk.io.audio import load_audio

    def rows(split: str) -> list[dict]:
        out = []
        for item in [i for i in manifest["items"] if i["split"] == split]:
            conv = make_conversation(manifest["seconds"], item["seed"])  # the truth: clean motion
            wav = {j: load_audio(root / split / f"{item['name']}_speaker{j}.wav") for j in (1, 2)}
            for k in (1, 2):
                own, par = log_mel(wav[k]), log_mel(wav[3 - k])
                t = min(len(own), len(par))
                out.append(
                    {
                        "own audio": lagged(own[:t], range(-3, 4)),
                        "partner audio": lagged(par[:t], range(0, 16, 2)),
                        "partner smile": lagged(conv.model_motion(3 - k)[:t, SMILE_DIMS], range(0, 25, 2)),
                        "y": conv.model_motion(k)[:t],
                        "clean": conv.clean_motion(k)[:t],
                    }
                )
        return out

    train, test = rows("train"), rows("test")
    targets = {
        "jaw_x": ([50], ["own audio", "partner audio"]),
        "exp 0-2": ([0, 1, 2], ["own audio", "partner audio"]),
        "yaw": ([54], ["partner audio", "own audio"]),
        "smile (exp 3, 20-35)": (list(SMILE_DIMS), ["partner smile", "own audio"]),
    }
    out = {}
    for target, (cols, inputs) in targets.items():
        ytr = np.concatenate([r["y"][:, cols] for r in train]).astype(np.float64)  # (N, C)
        yte = np.concatenate([r["y"][:, cols] for r in test]).astype(np.float64)
        clean = np.concatenate([r["clean"][:, cols] for r in test])
        row = {"train mean": float(np.mean((yte - ytr.mean(0)) ** 2)), "floor": float(np.mean((yte - clean) ** 2))}
        for name in inputs:
            xtr = np.concatenate([r[name] for r in train]).astype(np.float64)
            xte = np.concatenate([r[name] for r in test]).astype(np.float64)
            pred = Ridge(alpha=10.0).fit(xtr, ytr).predict(xte).reshape(yte.shape)
            row[f"from {name}"] = float(np.mean((pred - yte) ** 2))
        out[target] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-probe", action="store_true", help="skip the learnability probe")
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
        manifest = make_corpus(
            root,
            args.conversations,
            args.seconds,
            args.seed,
            splits={"train": args.conversations - n_test, "test": n_test},
            progress=False,
        )
        corpus_s = time.perf_counter() - t0
        results = {}
        for method in BASELINES:
            pred = Path(tmp) / "pred" / method
            predict_baseline(method, root / "train", root / "test", pred, seed=args.seed)
            results[method] = group_mse(pred, root / "test")
        probes = None if args.no_probe else probe(root, manifest)
    floor = manifest["noise_floor_by_split"]["test"]
    report = {
        "conversations": args.conversations,
        "seconds": args.seconds,
        "seed": args.seed,
        "seconds_per_conversation_generate": float(np.median(times)),
        "seconds_per_conversation_write_corpus": corpus_s / args.conversations,
        "mse": results,
        "noise_floor_test": {g: floor[g] for g in GROUPS},
        "probe_mse": probes,
    }
    print(
        f"generate one {args.seconds:g} s conversation: {report['seconds_per_conversation_generate']:.3f} s "
        f"(median of 5); with writing the files: {report['seconds_per_conversation_write_corpus']:.3f} s"
    )
    print(f"{'method':16s}" + "".join(f"{g:>12s}" for g in GROUPS))
    for method, row in results.items():
        print(f"{method:16s}" + "".join(f"{row[g]:12.5f}" for g in GROUPS))
    print(f"{'noise floor':16s}" + "".join(f"{floor[g]:12.5f}" for g in GROUPS))
    for target, row in (probes or {}).items():
        print(f"probe {target:11s} " + ", ".join(f"{k} {v:.5f}" for k, v in row.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
