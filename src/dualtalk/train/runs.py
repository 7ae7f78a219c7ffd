"""The run directory: config, checkpoints (atomic), the best model, metrics (CSV + TensorBoard).

    RUN_DIR/
      config.yaml                 the full TrainConfig of the run (what ``--resume`` reads back)
      run.json                    data directory, world size, dualtalk version, start/resume history
      best/                       model directory (config.json + model.safetensors) of the lowest
                                  validation loss: ``dualtalk generate --model RUN_DIR/best``
      checkpoints/step_00001000/  model/ (a model directory), state.pt (optimizer, scheduler, EMA,
                                  step, epoch, data position, best loss), rng_rank{R}.pt (random states)
      metrics.csv                 one row per log interval (train) and per validation (val)
      learning_curves.png         validation loss per group against steps (redrawn at every validation)
      tensorboard/                the same scalars for TensorBoard
      feature_cache/              cached frozen-encoder outputs (data.feature_cache, no data.cache_dir)

A checkpoint is written into ``checkpoints/.step_N.tmp`` and renamed when complete; ``best/`` is replaced
by renaming a complete ``.best.tmp`` over it. An interrupted write leaves only a ``.tmp`` directory, which
the next start removes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import cast

import numpy as np
import torch

from ..errors import InputError
from ..io.files import atomic_write_text
from ..model.checkpoint import WEIGHTS_NAME, save_model

STEP_RE = re.compile(r"^step_(\d{8,})$")


def metric_fields(parts: tuple[str, ...] = ("exp", "jaw", "pose", "velocity")) -> list[str]:
    """The columns of metrics.csv for the loss's parts (FLAME's: :data:`METRIC_FIELDS`; ARKit's mouth, upper,
    pose, velocity)."""
    return ["step", "epoch", "split", "loss", *parts, "lr", "grad_norm", "examples_per_sec", "elapsed_s"]


#: the columns of a FLAME run's metrics.csv
METRIC_FIELDS = metric_fields()


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    root = Path(run) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m[1]), p) for p in root.iterdir() if p.is_dir() and (m := STEP_RE.match(p.name))]
    return sorted(found)


def latest_checkpoint(run: Path) -> Path | None:
    found = checkpoints(run)
    return found[-1][1] if found else None


def clean_partial_writes(run: Path) -> None:
    """Remove what an interrupted write left behind; put back ``best/`` if it was being replaced."""
    run = Path(run)
    for tmp in list((run / "checkpoints").glob(".step_*.tmp")) if (run / "checkpoints").is_dir() else []:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(run / ".best.tmp", ignore_errors=True)
    old = run / ".best.old"
    if old.exists():
        if (run / "best").exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(old, run / "best")


def rng_state() -> dict:
    numpy_state = cast(tuple, np.random.get_state())  # ("MT19937", keys, pos, has_gauss, cached_gaussian)
    state: dict = {
        "python": random.getstate(),
        "numpy": torch.from_numpy(numpy_state[1].astype(np.int64)),
        "numpy_rest": list(numpy_state[2:]),  # pos, has_gauss, cached_gaussian
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    pos, has_gauss, gauss = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_best(run: Path, model, extra: dict) -> Path:
    """Replace RUN_DIR/best by a complete new model directory."""
    run = Path(run)
    tmp, best, old = run / ".best.tmp", run / "best", run / ".best.old"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, extra=extra)
    if best.exists():
        os.rename(best, old)
    os.rename(tmp, best)
    shutil.rmtree(old, ignore_errors=True)
    return best


def write_checkpoint(tmp: Path, final: Path, model, state: dict, extra: dict, keep: int) -> None:
    """Rank 0's part: model + state into ``tmp`` (which already holds every rank's rng file), rename, prune."""
    save_model(model, tmp / "model", extra=extra)
    torch.save(state, tmp / "state.pt")
    os.rename(tmp, final)
    # final is RUN/checkpoints/step_N: checkpoints() takes the run directory
    for _, old in checkpoints(final.parent.parent)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def lock_run(run: Path):
    """An exclusive lock on ``run`` (``run/.lock``, released when the returned file is closed or the process
    ends): a second training started into the same directory is one error line, not two runs interleaving
    their checkpoints and metrics. None where the platform has no ``fcntl`` (nothing is locked there)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    fh = open(Path(run) / ".lock", "a+")
    try:  # a POSIX record lock: not inherited by forked data-loader workers, gone with this process
        fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise InputError(
            run, "another training is writing to this run directory now: wait for it, or choose another --out"
        ) from None
    return fh


def read_checkpoint(path: Path, rank: int) -> tuple[dict, dict, dict | None]:
    """-> (model state dict, training state, this rank's random state or None)."""
    from safetensors.torch import load_file

    path = Path(path)

    def read(file: Path, how, by_torch: bool = False):
        try:
            return how(file)
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint, whatever the cause
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]  # an empty file: no message
            if file.is_file() and file.stat().st_size == 0:
                why = "empty file"
            elif by_torch:  # torch.load of other bytes fails in many ways (unpickling, EOF, magic number, zip...)
                why = "not what torch.save writes: damaged or another file"
            raise InputError(file, f"unreadable checkpoint file ({why})") from None

    weights = read(path / "model" / WEIGHTS_NAME, lambda f: load_file(str(f)))
    state = read(path / "state.pt", lambda f: torch.load(f, map_location="cpu", weights_only=True), by_torch=True)
    if not isinstance(state, dict):
        raise InputError(path / "state.pt", f"unreadable checkpoint file (holds a {type(state).__name__}, not a dict)")
    rng_file = path / f"rng_rank{rank}.pt"
    rng = read(rng_file, lambda f: torch.load(f, weights_only=True), by_torch=True) if rng_file.exists() else None
    return weights, state, rng


class Metrics:
    """metrics.csv + TensorBoard (rank 0 only). On resume, rows after the resumed step are dropped."""

    def __init__(
        self, run: Path, enabled: bool, tensorboard: bool, resume_step: int | None, fields: list[str] | None = None
    ):
        self.enabled = enabled
        self.fields = fields or METRIC_FIELDS
        self.tb = None
        if not enabled:
            return
        path = Path(run) / "metrics.csv"
        if resume_step is not None and path.exists():
            with open(path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, self.fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(path, buf.getvalue())
        new = not path.exists()
        self.fh = open(path, "a", newline="", encoding="utf-8")
        self.csv = csv.DictWriter(self.fh, self.fields, extrasaction="ignore")
        if new:
            self.csv.writeheader()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # pragma: no cover - tensorboard is in the train extra
                print(
                    "warning: tensorboard is not installed (pip install 'dualtalk[train]'); "
                    "metrics go to metrics.csv only"
                )
            else:
                purge = None if resume_step is None else resume_step + 1
                self.tb = SummaryWriter(str(Path(run) / "tensorboard"), purge_step=purge)

    def log(self, split: str, step: int, values: dict) -> None:
        if not self.enabled:
            return
        row = {"step": step, "split": split}
        row.update({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in values.items()})
        self.csv.writerow(row)
        self.fh.flush()
        if self.tb is not None:
            for key, value in values.items():
                if key not in ("epoch",) and isinstance(value, (int, float)):
                    self.tb.add_scalar(f"{split}/{key}", value, step)
            self.tb.flush()

    def close(self) -> None:
        if self.enabled:
            self.fh.close()
            if self.tb is not None:
                self.tb.close()


def write_run_info(run: Path, info: dict) -> None:
    path = Path(run) / "run.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    history = old.get("history", []) + [info.pop("event")]
    old.update(info)
    old["history"] = history
    atomic_write_text(path, json.dumps(old, indent=2) + "\n")


def read_run_info(run: Path) -> dict:
    path = Path(run) / "run.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "not a training run directory (run.json missing)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not readable ({exc})") from None
