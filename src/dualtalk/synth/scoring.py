"""Scoring by cause on a synthetic corpus: how much of each cause a method captures, against a probe.

For every listening cause of the corpus's scenario (:mod:`.causes`), the frames where the person listens
(listening weight L >= 0.5) and the cause's target coefficients; for speech, the frames where the person
speaks and the coefficients speech moves (``speech``: exp 0-2, 4-19 and jaw_x). On those frames of the test
split: the MSE of the method, of the training split's mean frame, and the *error reduction*
``1 - MSE / MSE(mean)``.

The probe is what a linear model with access to the true cause input achieves: a ridge regression on
lagged features (0-2.4 s of the past) of the partner's signal that carries the cause (the partner's motion
on the cause's coefficients for ``motion``; log-mel energies of the partner's voice for speech drivers, of
the partner's laughs alone for audio-carried events; both for ``both``), each also multiplied by the
person's true listening weight so that it can gate, fitted on train with the regularisation chosen on val.
The probe reads the laughs apart from the speech they are mixed with, which a model must learn to do. A
method's *capture* of a cause is its reduction divided by the probe's; ``capture_se`` is its jackknife
standard error over the test split's sides (each person of each conversation left out in turn): with causes
near the idle noise both reductions are a few per cent and a capture's noise is of the order of the bar.

    from dualtalk.synth.scoring import score_corpus
    table = score_corpus("data/synth", {"dualtalk_paper": "reports/x/pred/dualtalk_paper"})
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.motion import load_model_motion, load_motion
from ..layout import SAMPLE_RATE, SAMPLES_PER_FRAME, frames_for
from .corpus import load_manifest, manifest_scenario
from .motion import JAW_OPEN

#: coefficients speech moves (model order): lips (exp 0-2), secondary (exp 4-19), jaw_x (50)
SPEECH_TARGETS = list(range(0, 3)) + list(range(4, 20)) + [JAW_OPEN]
PROBE_LAGS = tuple(range(0, 61, 2))  # frames: 0-2.4 s of the past
PROBE_ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)
LISTENING = 0.5  # a frame is a listening frame when L >= 0.5
#: a method captures a cause when its reduction is at least this fraction of the probe's (issue 10's bar)
CAPTURE_BAR = 0.6


def worse_text(row: dict, key: str) -> str:
    """A "method:group" of a listening check row (``benchmarks/listening.py``'s ``checks.per_corpus``) ->
    "method:group +1.2% (SE 2.3%)" where the difference from the training mean is known."""
    by = row.get("worse_than_mean_by", {}).get(key)
    return f"{key} {by[0]:+.1%} (SE {by[1]:.1%})" if by else key


@dataclass
class Side:
    """One person of one conversation of a split, with what the scoring needs."""

    name: str  # NAME_speakerK
    target: np.ndarray  # (T, 56) observed motion of the person
    partner: np.ndarray  # (T, 56) observed motion of the partner
    partner_audio: np.ndarray  # (S,) 16 kHz
    listening: np.ndarray  # (T,) listening weight L
    partner_laughs: np.ndarray | None = None  # (S,) the partner's laughs alone (only read for the probe)


def _sides(root: Path, manifest: dict, split: str, laughs: bool = False) -> list[Side]:
    """The split's files, with each person's listening weight from the manifest's turn segments;
    ``laughs``: also the partner's laugh track (the conversation is generated again from its seed)."""
    from ..io.audio import load_audio
    from .corpus import make_conversation
    from .motion import frame_times, listening
    from .timeline import Segment

    scenario = manifest_scenario(manifest) if laughs else None
    out = []
    for item in manifest["items"]:
        if item["split"] != split:
            continue
        folder = root / split
        motion = {k: load_motion(folder / f"{item['name']}_speaker{k}.npz").to_model() for k in (1, 2)}
        segments = [Segment(**s) for s in item["segments"]]
        times = frame_times(len(motion[1]))
        track = make_conversation(manifest["seconds"], item["seed"], scenario).laugh_audio if laughs else None
        for k in (1, 2):
            out.append(
                Side(
                    f"{item['name']}_speaker{k}",
                    motion[k],
                    motion[3 - k],
                    load_audio(folder / f"{item['name']}_speaker{3 - k}.wav"),
                    listening(times, segments, k),
                    None if track is None else track[3 - k],
                )
            )
    if not out:
        raise InputError(root / split, "no conversations of this split in the manifest")
    return out


def groups(manifest: dict) -> dict[str, dict]:
    """Scored groups: ``{name: {"targets": [...], "role": "listening"|"speaking", "carrier", "driver"}}``."""
    out = {"speech": {"targets": SPEECH_TARGETS, "role": "speaking", "carrier": "own audio", "driver": "own speech"}}
    for c in manifest_scenario(manifest).causes:
        out[c.name] = {"targets": list(c.targets), "role": "listening", "carrier": c.carrier, "driver": c.driver}
    return out


def _frames(side: Side, role: str) -> np.ndarray:
    return side.listening >= LISTENING if role == "listening" else side.listening < LISTENING


def _load_prediction(pred_dir: Path, name: str, frames: int) -> np.ndarray:
    for path in (pred_dir / f"{name}.npy", pred_dir / f"{name}.npz"):
        if path.exists():
            x = load_model_motion(path) if path.suffix == ".npy" else load_motion(path).to_model()
            if len(x) < frames:
                raise InputError(path, f"has {len(x)} frames, the ground truth {frames}")
            return x[:frames]
    raise InputError(pred_dir / f"{name}.npy", "prediction not found")


def log_mel_frames(wave: np.ndarray, bands: int = 40) -> np.ndarray:
    """(T, bands) log-mel energies per 40 ms motion frame (T = ceil(S / 640))."""
    from scipy import signal

    from ..features.audio_encoder import mel_filterbank

    fb = mel_filterbank(SAMPLE_RATE, 512, bands)  # (bands, 257)
    t = frames_for(len(wave))
    padded = np.zeros(t * SAMPLES_PER_FRAME, dtype=np.float64)
    padded[: len(wave)] = wave
    hop = SAMPLES_PER_FRAME // 2  # 320: two STFT frames per motion frame
    _, _, spec = signal.stft(padded, fs=SAMPLE_RATE, nperseg=512, noverlap=512 - hop, boundary="even", padded=True)
    mel = np.log(fb @ (np.abs(spec) ** 2) + 1e-6).T  # (N, bands) at 50 frames per second
    mel = np.concatenate([mel, np.repeat(mel[-1:], max(0, 2 * t - len(mel)), axis=0)])[: 2 * t]
    return mel.reshape(t, 2, bands).mean(axis=1)  # (T, bands)


def _lagged(x: np.ndarray, lags=PROBE_LAGS) -> np.ndarray:
    """(T, D) -> (T, D * len(lags)): x[t - lag], zero before the start."""
    out = np.zeros((len(x), x.shape[1] * len(lags)), dtype=np.float32)
    for i, lag in enumerate(lags):
        out[lag:, i * x.shape[1] : (i + 1) * x.shape[1]] = x[: len(x) - lag]
    return out


def _probe_features(side: Side, cause: dict, mel: dict[str, np.ndarray]) -> np.ndarray:
    """The true input of a cause, lagged: the partner's motion on the cause's coefficients (``motion``), the
    partner's voice (speech drivers) or laughs (audio-carried events) as log-mel energies (``audio``)."""
    parts = []
    if cause["carrier"] in ("motion", "both"):
        parts.append(side.partner[:, cause["targets"]])
    if cause["carrier"] in ("audio", "both"):
        parts.append(mel["laughs"] if cause["driver"] == "partner_event" else mel["audio"])
    x = _lagged(np.concatenate(parts, axis=1)).astype(np.float64)  # (T, F)
    gate = side.listening[:, None].astype(np.float64)  # (T, 1)
    return np.concatenate([x, x * gate, gate], axis=1)  # (T, 2F + 1): gated too, with the gate's own offset


def probe(root: Path, manifest: dict, splits=("train", "val", "test")) -> dict[str, dict]:
    """Ridge probe per listening cause -> {cause: {"alpha", "mse", "mse_mean", "reduction"}} on test."""
    from sklearn.linear_model import Ridge

    laughs = any(c.driver == "partner_event" and c.carrier != "motion" for c in manifest_scenario(manifest).causes)
    data = {s: _sides(root, manifest, s, laughs) for s in splits}
    mels = {
        s: [
            {
                "audio": log_mel_frames(side.partner_audio)[: len(side.target)],
                "laughs": None
                if side.partner_laughs is None
                else log_mel_frames(side.partner_laughs)[: len(side.target)],
            }
            for side in data[s]
        ]
        for s in splits
    }
    mean = np.concatenate([side.target for side in data[splits[0]]]).mean(0)  # (56,)
    out = {}
    for name, cause in groups(manifest).items():
        if cause["role"] != "listening":
            continue
        tg = cause["targets"]

        def xy(split, only_role=False):  # noqa: B023 - called within this iteration only
            xs, ys = [], []
            for side, mel in zip(data[split], mels[split]):
                x, y = _probe_features(side, cause, mel), side.target[:, tg] - mean[tg]  # noqa: B023
                if only_role:
                    keep = _frames(side, "listening")
                    x, y = x[keep], y[keep]
                xs.append(x)
                ys.append(y)
            return np.concatenate(xs), np.concatenate(ys)

        xtr, ytr = xy(splits[0])
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
        xva, yva = xy(splits[1], True)
        xte, yte = xy(splits[2], True)
        fits = {a: Ridge(alpha=a).fit((xtr - mu) / sd, ytr) for a in PROBE_ALPHAS}

        def err(a, x, y):  # predict() drops the target axis of a one-column y; used in this iteration only
            return float(np.mean((fits[a].predict((x - mu) / sd).reshape(y.shape) - y) ** 2))  # noqa: B023

        best = min(fits, key=lambda a: err(a, xva, yva))
        sq = (fits[best].predict((xte - mu) / sd).reshape(yte.shape) - yte) ** 2  # (N, targets) test frames
        mse = float(np.mean(sq))
        base = float(np.mean(yte**2))
        ends = np.cumsum([int(_frames(side, "listening").sum()) for side in data[splits[2]]])
        side_sse = [float(part.sum()) for part in np.split(sq, ends[:-1])]
        out[name] = {"alpha": best, "mse": mse, "mse_mean": base, "reduction": 1.0 - mse / base, "side_sse": side_sse}
    return out


def score_predictions(
    root: Path, manifest: dict, pred_dir: str | os.PathLike | None, split: str = "test", train_split: str = "train"
) -> dict[str, dict]:
    """Per group (speech and every listening cause): MSE of the predictions and of the training mean on the
    group's frames and coefficients, and the reduction. ``pred_dir=None`` scores the training mean itself."""
    mean = np.concatenate([s.target for s in _sides(root, manifest, train_split)]).mean(0)  # (56,)
    sides = _sides(root, manifest, split)
    preds = {
        s.name: (
            _load_prediction(Path(pred_dir), s.name, len(s.target))
            if pred_dir is not None
            else np.broadcast_to(mean, s.target.shape)
        )
        for s in sides
    }
    out = {}
    for name, g in groups(manifest).items():
        err, base = [], []
        for side in sides:
            keep = _frames(side, g["role"])
            y = side.target[keep][:, g["targets"]]
            err.append((preds[side.name][keep][:, g["targets"]] - y) ** 2)
            base.append((mean[g["targets"]] - y) ** 2)
        mse, mse_mean = float(np.mean(np.concatenate(err))), float(np.mean(np.concatenate(base)))
        out[name] = {
            "role": g["role"],
            "mse": mse,
            "mse_mean": mse_mean,
            "reduction": 1.0 - mse / mse_mean,
            "side_sse": [float(e.sum()) for e in err],  # per side of the split (for the capture's error)
            "side_sse_mean": [float(b.sum()) for b in base],
        }
    return out


def capture_se(row: dict, probe_row: dict) -> float | None:
    """Jackknife standard error of a capture over the test sides (``side_sse`` of the method, the mean and the
    probe); None where a side left out leaves the probe with no reduction or fewer than two sides hold frames."""
    m, b, p = (np.asarray(x, dtype=np.float64) for x in (row["side_sse"], row["side_sse_mean"], probe_row["side_sse"]))
    used = b > 0
    if used.sum() < 2:
        return None
    m, b, p = m[used], b[used], p[used]
    caps = []
    for i in range(len(b)):  # leave side i out
        rest_b = b.sum() - b[i]
        probe_red = 1.0 - (p.sum() - p[i]) / rest_b
        if probe_red <= 0:
            return None
        caps.append((1.0 - (m.sum() - m[i]) / rest_b) / probe_red)
    c = np.asarray(caps)
    return float(np.sqrt((len(c) - 1) / len(c) * np.sum((c - c.mean()) ** 2)))


def score_corpus(
    corpus_dir: str | os.PathLike, predictions: dict[str, str | os.PathLike], with_probe: bool = True
) -> dict:
    """Score every method's predictions of the test split by cause, with the probe -> JSON-able dict."""
    root = Path(corpus_dir)
    manifest = load_manifest(root)
    result = {"groups": groups(manifest), "methods": {}}
    for method, pred_dir in predictions.items():
        result["methods"][method] = score_predictions(root, manifest, pred_dir)
    if with_probe:
        result["probe"] = probe(root, manifest)
        for scores in result["methods"].values():
            for name, row in scores.items():
                p = result["probe"].get(name)
                row["capture"] = None if p is None or p["reduction"] <= 0 else row["reduction"] / p["reduction"]
                row["capture_se"] = None if p is None or row["capture"] is None else capture_se(row, p)
    return result
