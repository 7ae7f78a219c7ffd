"""Training: the :class:`Trainer` (one run, stage by stage), in one process or many with torchrun + DDP.

    dualtalk train --data DATA --out RUN                                     # one process (CPU or GPU)
    torchrun --nproc_per_node 4 -m dualtalk train --data DATA --out RUN      # 4 GPUs, one node
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        -m dualtalk train --data DATA --out RUN                              # 2 nodes (RUN on shared storage)

Every process builds the same model (same seed; DDP broadcasts rank 0's weights), reads its own shard of
each epoch's plan (``data.PlanBatchSampler``), and DDP averages the gradients, so all processes hold the
same weights after every step. Rank 0 writes checkpoints, the best model and the logs; every rank writes
its own random state into each checkpoint.

Interruption: SIGINT/SIGTERM finish the current step, write a checkpoint and stop; ``--resume RUN`` (or
``train(..., resume=True)``) continues from the newest checkpoint with the same model, optimizer,
scheduler, EMA, step, epoch, position within the epoch and random states. A hard kill loses at most
``checkpoint_every`` steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist

from .. import __version__
from ..config import TrainConfig, to_dict
from ..errors import DualTalkError, InputError
from ..io.motion import load_any_motion
from ..io.progress import progress, write
from ..layout import FLAME, FPS, MotionLayout, get_layout
from ..model.dualtalk import DualTalk, build_model
from . import cache as feature_cache
from . import runs
from .configure import check_train_config, compose_train_config, load_train_config, save_train_config
from .data import ConversationWindows, PlanBatchSampler, index_split, make_loader, split_dir, validation_loader
from .loss import combine, loss_names, motion_errors, weights


class TrainingInterrupted(DualTalkError):
    """A signal stopped training after a checkpoint was written."""


class OtherRankError(DualTalkError):
    """Rank 0 stopped on an error (which it prints); this process stops with it without printing it again."""

    quiet = True


class TrainingDiverged(DualTalkError):
    """The validation loss is NaN or infinite: going on would only waste the steps."""


# ----------------------------------------------------------------------------------------------------
# processes


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def broadcast_object(self, obj):
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def main_only(self, fn):
        """``fn()`` on rank 0, its result on every process. A :class:`DualTalkError` of rank 0 stops them all:
        rank 0 raises it, the others :class:`OtherRankError` (not a collective left waiting for rank 0)."""
        if self.world == 1:
            return fn()
        result, error = None, None
        if self.main:
            try:
                result = fn()
            except DualTalkError as exc:
                error = exc
        result, message = self.broadcast_object((result, None if error is None else str(error)))
        if error is not None:
            raise error
        if message is not None:
            raise OtherRankError(message)
        return result

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str) -> Dist:
    """Read torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK) and join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        dev = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    elif device == "cuda":
        dev = torch.device(f"cuda:{local}")
    else:
        dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DualTalkError(f"device {device!r} asked for but CUDA is not available")
        torch.cuda.set_device(dev)
    owns = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return Dist(rank, world, local, dev, owns)


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT/SIGTERM set ``flag["signal"]`` (the loop stops after the step); a second one interrupts."""
    flag = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signal"] is not None:
            raise KeyboardInterrupt
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------
# steps


def lr_lambda(cfg, steps_per_epoch: int):
    """Multiplier of the base learning rate after ``step`` optimizer steps."""

    def factor(step: int) -> float:
        f = 1.0
        if cfg.warmup_steps and step < cfg.warmup_steps:
            f = (step + 1) / cfg.warmup_steps
        if cfg.scheduler == "step":
            unit = step // steps_per_epoch if cfg.step_unit == "epoch" else step
            f *= cfg.gamma ** (unit // cfg.step_size)
        return f

    return factor


def run_model(module, batch: dict, device: torch.device, cached: bool, step: int | None = None):
    """One forward pass of ``module`` (DualTalk, or its DDP/EMA wrapper) on a batch -> (B, W, 56).

    ``step`` (models that learn from the target: the comparison baselines' teacher forcing and codebook
    stages, :class:`~dualtalk.model.baselines.BaselineModel`): the target and the step are passed too, and the
    result is (prediction (B, W, 56), extra loss or None)."""
    partner_motion = batch["partner_motion"].to(device, non_blocking=True)  # (B, W, 56)
    if step is not None:
        return module(
            batch["self_audio"].to(device, non_blocking=True),
            batch["partner_audio"].to(device, non_blocking=True),
            partner_motion,
            target=batch["target"].to(device, non_blocking=True),
            step=step,
        )
    if cached:  # the frozen encoders' outputs, read from the feature cache: (B, W, H) each, or absent
        feats = tuple(
            batch[k].to(device, non_blocking=True) if k in batch else None
            for k in ("self_features", "partner_features")
        )
        return module(None, None, partner_motion, audio_features=feats)
    return module(
        batch["self_audio"].to(device, non_blocking=True),
        batch["partner_audio"].to(device, non_blocking=True),
        partner_motion,
    )


def fit_output_gain(moments: torch.Tensor, z: float = 0.0, shrink: bool = False) -> torch.Tensor:
    """The per-coefficient output gain in [0, 1] from validation moments (5, D): the sums of p y, p p, y y,
    of (p y summed per window)^2 and the number of windows (p, y: prediction and target around the stored
    mean, normalised). z = 0: the least-squares gain p y / p p; z > 0: the covariance's lower confidence
    bound, z standard errors (sqrt(n) x the spread of the windows' covariance sums) below the sum.

    ``shrink``: the covariance's estimate less its own noise, py - se² / py (se² = n x that spread; 0 where
    that is not positive): the squared estimate overstates the squared covariance by se² on average, so a gain
    fitted to it adds the chance part to new data's error; the correction takes off (se / py)² of the
    covariance, next to nothing where the alignment is clear (1 % at 10 standard errors), most where it is
    not (all of it at 1) — a gentler rule than the bound, which takes off z se whatever the covariance."""
    py, pp, _, py2, n = moments.double()
    if z > 0 or shrink:
        n = n.clamp_min(2.0)
        spread = ((py2 - py.square() / n) / (n - 1)).clamp_min(0.0)  # variance of one window's p y sum
        se2 = n * spread  # (D,) the variance of the covariance sum py
        if z > 0:
            py = py - z * se2.sqrt()
        if shrink:
            py = torch.where(py > 0, py - se2 / py.clamp_min(1e-12), torch.zeros_like(py))
    return (py / pp.clamp_min(1e-12)).clamp(0.0, 1.0)


#: the folds of validation windows over which ``output_group_gate`` cross-fits the gains
GATE_FOLDS = 10


def gate_output_groups(
    fold_moments: torch.Tensor,
    sd: torch.Tensor,
    groups: Mapping[str, slice | list[int]],
    z: float = 0.0,
    shrink: bool = False,
) -> dict[str, float]:
    """By how much each group of coefficients beats the mean on validation, cross-fitted -> {group: margin}.

    ``fold_moments`` (K, 5, D): the moments of ``fit_output_gain`` summed per fold of windows (p, y around the
    stored mean, normalised); ``sd`` (D,): the stored std (errors are compared in the data's units). For each
    fold the gains are fitted on the other folds and its squared error after them is set against the mean's
    (y y); a group's margin is the summed difference (the mean's error minus the model's) in standard errors
    (the spread of the folds' differences x sqrt(K)). ``output_group_gate`` = t keeps a group whose margin
    exceeds t: t = 1 is the one-standard-error rule of cross-validation (the simpler model, here the mean,
    unless the other is better by more than its error's noise). With fewer than two folds holding windows
    every margin is +inf (nothing to judge by: every group kept)."""
    m = fold_moments.double()
    used = m[:, 4].amax(1) > 0  # (K,) folds with windows
    if int(used.sum()) < 2:
        return {g: math.inf for g in groups}
    m = m[used]  # (K', 5, D)
    total = m.sum(0)
    w = sd.double().square()  # (D,) the data's units
    gain = torch.stack([fit_output_gain(total - f, z, shrink) for f in m])  # (K', D) gains fitted without each fold
    diff = (gain.square() * m[:, 1] - 2 * gain * m[:, 0]) * w  # (K', D) fold's error after them minus the mean's
    margins = {}
    for g, part in groups.items():
        d = diff[:, part].sum(1)  # (K',)
        se = float(d.std()) * math.sqrt(len(d))
        margins[g] = -float(d.sum()) / se if se > 0 else (math.inf if float(d.sum()) < 0 else -math.inf)
    return margins


def evaluate(
    module,
    loader,
    ctx: Dist,
    std,
    w,
    amp_dtype,
    cached: bool,
    gain_stats=None,
    layout: MotionLayout = FLAME,
    step: int | None = None,
    gain_z: float = 0.0,
    group_gate: float = 0.0,
    gate_folds: str = "window",
    gain_shrink: bool = False,
) -> dict:
    """Validation loss summed over every batch of every process -> {"loss", "exp", ...} (the groups of
    ``layout``, then ``velocity``).

    ``gain_stats`` (the stored motion mean and std of a model with an output gain): the position errors are those of
    the prediction after the per-coefficient gain that fits this split best, clipped to [0, 1] (what
    training leaves in ``best/``), so that coefficients the model cannot predict beyond the mean do not
    decide which step is kept; the gains are returned under ``"gain"``. ``gain_z`` > 0 fits each gain from
    the lower confidence bound of the prediction-target covariance, ``gain_z`` standard errors below its
    estimate (the standard error from the spread of the validation windows' own covariances, windows being
    nearly independent): a coefficient whose movement is not clearly aligned with the truth on validation
    stays at the mean instead of adding its chance alignment's error on new data. ``group_gate`` > 0: a
    group that does not beat the mean on validation by that many standard errors, cross-fitted
    (``gate_output_groups``), gets gain 0 in the returned gains (the model outputs the mean there); the loss
    stays that of the least-squares gains (the gate does not choose the step), the kept groups and each
    group's margin are returned under ``"kept"`` and ``"margins"``. ``gate_folds``: how the validation windows
    are dealt into the gate's folds: ``"conversation"`` (every window of a conversation in one fold, conversation
    i in fold i mod 10) or ``"window"`` (window i in fold i mod 10, neighbours of one conversation in
    different folds). ``gain_shrink``: the returned gains (and the gate's cross-fitted ones) take off the
    covariance's own noise (``fit_output_gain(shrink=True)``); like the gate, it does not change the loss.

    ``step``: a staged model (a baseline's codebook stage) is validated on the computation of its stage then.
    """
    staged = step is not None and getattr(module, "validation_needs_target", lambda s: False)(step)
    was_training = module.training
    module.eval()
    groups = layout.groups
    sums = torch.zeros(len(groups) + 1, dtype=torch.float64, device=ctx.device)
    counts = torch.zeros(len(groups) + 1, dtype=torch.float64, device=ctx.device)
    # per fold of windows: sums of p y, p p, y y, (p y per window)^2, and the number of windows (every column)
    moments = torch.zeros(GATE_FOLDS, 5, layout.dim, dtype=torch.float64, device=ctx.device)  # (K, 5, D)
    windows = 0  # windows seen by this process; window i of process r is in fold (i * world + r) % K
    with torch.inference_mode():
        for batch in loader:
            with torch.autocast(ctx.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                pred = run_model(module, batch, ctx.device, cached, step if staged else None)  # (B, W, 56)
                if staged:
                    pred = pred[0]
            target, mask = batch["target"].to(ctx.device), batch["mask"].to(ctx.device)
            s, c = motion_errors(pred, target, mask, std, groups)
            sums += s.double()
            counts += c.double()
            if gain_stats is not None:
                mu, sd = gain_stats
                p = (pred.float() - mu) / sd  # (B, W, 56) normalised, around the stored mean
                y = (target.float() - mu) / sd
                m = mask[..., None].float()  # (B, W, 1)
                window_py = (p * y * m).sum(1).double()  # (B, 56) each window's covariance sum
                used = (mask.sum(1) > 0).double()[:, None]  # (B, 1) windows with frames in the loss
                per_window = torch.stack(
                    [
                        window_py,
                        (p * p * m).sum(1).double(),
                        (y * y * m).sum(1).double(),
                        window_py.square(),
                        used.expand_as(window_py),
                    ],
                    1,
                )  # (B, 5, 56)
                if gate_folds == "conversation":
                    fold = batch["clip"].to(ctx.device) % GATE_FOLDS  # (B,)
                else:
                    index = torch.arange(windows, windows + len(pred), device=ctx.device)
                    fold = (index * ctx.world + ctx.rank) % GATE_FOLDS  # (B,)
                moments.index_add_(0, fold, per_window)
                windows += len(pred)
    ctx.sum_(sums)
    ctx.sum_(counts)
    module.train(was_training)
    gain = None
    if gain_stats is not None:
        ctx.sum_(moments)
        gain = fit_output_gain(moments.sum(0), gain_z)  # (56,)
        py, pp, yy = moments.sum(0)[:3]
        sse = yy - 2 * gain * py + gain.square() * pp  # (56,) squared error after the gain, normalised
        if std is None:  # the loss is in the data's units
            sse = sse * gain_stats[1].double().square()
        for i, part in enumerate(groups.values()):
            sums[i] = sse[part].sum()
        # the shrinkage and the gate decide what best/ outputs; the step is chosen by the loss above, without them
        if gain_shrink:
            gain = fit_output_gain(moments.sum(0), gain_z, shrink=True)
        margins = gate_output_groups(moments, gain_stats[1], groups, gain_z, gain_shrink)
        kept = {g: group_gate <= 0 or margins[g] > group_gate for g in groups}
        for g, part in groups.items():
            if not kept[g]:
                gain[part] = 0.0
    total, mse = combine(sums.float(), counts.float(), w)
    out: dict[str, Any] = {"loss": float(total), **{n: float(v) for n, v in zip(loss_names(groups), mse)}}
    if gain is not None:
        out["gain"] = gain.float().cpu().numpy()
        out["kept"] = kept
        out["margins"] = margins
    return out


def gain_extra(gain, kept: dict[str, bool], margins: dict[str, float]) -> dict:
    """What ``best/config.json`` records of the output gain (``extra``): the gains, the groups the gate sent to
    the mean, each group's margin (rounded; None where there was nothing to judge by, not JSON's Infinity)."""
    return {
        "output_gain": [round(float(g), 4) for g in gain],
        "output_groups_at_mean": [g for g, k in kept.items() if not k],
        "output_group_margins": {g: round(v, 2) if math.isfinite(v) else None for g, v in margins.items()},
    }


def refit_output_gain(run_dir: str | os.PathLike, data_dir: str | os.PathLike, cfg: TrainConfig) -> Path:
    """Fit the output gain of a finished run's ``best/`` again under ``cfg``'s gain rule -> ``run/best``.

    The fields that decide only the gain fitted at the kept step (``output_group_gate``,
    ``output_gain_shrink``) can change after training without training again: the kept weights are validated
    on ``data_dir``'s validation split as training does (the gains reset to 1 first, the run's windows), the
    gains and the gate of ``cfg`` are fitted, and ``best/`` is rewritten with them (``extra`` updated as
    training writes it); the run's ``config.yaml`` becomes ``cfg``. A model without an output gain is left as
    it is."""
    from ..model.checkpoint import load_model

    run = Path(run_dir)
    model = load_model(str(run / "best"))
    if not model.config.output_gain:
        return run / "best"
    layout = get_layout(model.config.motion_layout)
    index, _ = index_split(data_dir, cfg.data.val_split, "val", layout=layout)
    loader = validation_loader(index, cfg.data, layout)
    std = model.motion_std if (model.config.normalize_motion and cfg.loss.normalized) else None
    model.output_gain.fill_(1.0)
    val = evaluate(
        model,
        loader,
        Dist(),
        std,
        weights(cfg.loss, groups=layout.groups),
        None,
        False,
        (model.motion_mean, model.motion_std),
        layout,
        None,
        cfg.output_gain_z,
        cfg.output_group_gate,
        gain_shrink=cfg.output_gain_shrink,
    )
    gain, kept, margins = val.pop("gain"), val.pop("kept"), val.pop("margins")
    model.output_gain.copy_(torch.from_numpy(gain))
    best = runs.save_best(run, model, {**model.extra, "train_config": to_dict(cfg), **gain_extra(gain, kept, margins)})
    save_train_config(cfg, run / "config.yaml")
    return best


# ----------------------------------------------------------------------------------------------------
# the trainer


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint (``state.pt["progress"]``) and restored from it."""

    step: int = 0
    epoch: int = 0
    #: batches of the current epoch already consumed by each process
    batch_in_epoch: int = 0
    best_val: float = math.inf
    best_step: int = -1

    def to_dict(self) -> dict:
        return dict(vars(self))

    def load(self, data: dict) -> None:
        for key, value in data.items():
            setattr(self, key, value)


class Trainer:
    """One training run, stage by stage (audiocraft's solver is the model): every stage is a method that
    a test can call on its own, and :meth:`fit` calls them in order.

        trainer = Trainer("DATA", "runs/exp", compose_train_config(preset="small", max_steps=2000))
        best = trainer.fit()          # prepare_run, build_data, build_model, build_loaders,
                                      # build_optimizer, restore, then train_step/validate/save_checkpoint

    Under torchrun every process builds its own Trainer; ``ctx`` (:class:`Dist`) is joined by :func:`train`.
    """

    metrics: runs.Metrics  # set by setup()

    def __init__(
        self,
        data_dir: str | os.PathLike,
        run: str | os.PathLike,
        cfg: TrainConfig,
        *,
        resume: bool = False,
        progress: bool = True,
        ctx: Dist | None = None,
    ):
        self.data_dir, self.run, self.cfg = Path(data_dir), Path(run), cfg
        self.resume = resume
        self.ctx = ctx if ctx is not None else Dist()
        self.show = progress and self.ctx.main
        self.model_cfg = check_train_config(cfg)
        self.layout = get_layout(self.model_cfg.motion_layout)
        self.state = TrainState()
        self.latest: Path | None = None  # the checkpoint to restore (set by prepare_run)
        self.last_saved = -1
        self.best_gain: list[float] = []  # the output gain of best/ (models with output_gain)
        self.best_at_mean: list[str] = []  # the groups best/ outputs as the training mean (output_group_gate)
        self.record: list[str] = []  # example keys this process saw (debug_record)
        self._bar = None

    # --- messages --------------------------------------------------------------------------------------

    def say(self, msg: str) -> None:
        """A line for the user (rank 0 only; above the progress bar on a terminal)."""
        if self.ctx.main:
            write(msg)

    # --- stages ----------------------------------------------------------------------------------------

    def prepare_run(self) -> Path | None:
        """Check the data directory, create (or, resuming, clean) the run directory, write a new run's config
        and run.json (a resumed run's: :meth:`setup`, once its checkpoint is restored); -> the checkpoint to
        restore (None for a new run)."""
        run, ctx = self.run, self.ctx
        if not self.data_dir.is_dir():
            raise InputError(self.data_dir, "data directory not found")

        def on_main() -> Path | None:  # rank 0 alone; its error stops every process
            if run.exists() and not run.is_dir():
                raise InputError(run, "exists and is not a directory: --out names the run directory to create")
            self.check_data_layout()
            others = run.is_dir() and any(p.name != ".lock" for p in run.iterdir())
            if not self.resume and others and not (run / "config.yaml").exists():
                raise InputError(
                    run, "exists and is not a training run directory (it holds other files): choose a new --out"
                )
            run.mkdir(parents=True, exist_ok=True)
            self._lock = runs.lock_run(run)  # held until this process ends: one training writes to a run at a time
            if self.resume:
                runs.clean_partial_writes(run)
            latest = runs.latest_checkpoint(run)
            if self.resume and latest is None:
                raise InputError(run, "no checkpoint to resume from (checkpoints/step_* missing)")
            if not self.resume and latest is not None:
                raise InputError(run, "already holds a training run: continue it with --resume, or choose a new --out")
            if not self.resume and (run / "config.yaml").exists():  # a run that stopped before its first checkpoint
                self.say(f"{run}: the previous run there has no checkpoint; starting it afresh")
                for name in ("metrics.csv", "run.json"):
                    (run / name).unlink(missing_ok=True)
                for name in ("tensorboard", "best", "debug"):
                    shutil.rmtree(run / name, ignore_errors=True)
            run.mkdir(parents=True, exist_ok=True)
            if not self.resume:  # resuming: written once the checkpoint is restored (a failed resume changes nothing)
                self.record_run(latest)
            return latest

        self.latest = ctx.main_only(on_main)
        return self.latest

    def record_run(self, latest: Path | None) -> None:
        """Rank 0: the run's ``config.yaml`` (this training's settings) and its ``run.json`` entry."""
        save_train_config(self.cfg, self.run / "config.yaml")
        runs.write_run_info(
            self.run,
            {
                "data_dir": str(self.data_dir.resolve()),
                "world_size": self.ctx.world,
                "dualtalk_version": __version__,
                "event": {
                    "event": "resume" if self.resume else "start",
                    "time": time.time(),
                    "from": latest.name if latest else None,
                    "world_size": self.ctx.world,
                },
            },
        )

    def check_data_layout(self) -> None:
        """The first motion file of the training split is in the model's motion layout (before the run is
        created: data of the other layout is one error line naming the file; every file is checked later)."""
        split = self.data_dir / self.cfg.data.train_split
        first = next(iter(sorted(split.glob("*.npz"))), None) if split.is_dir() else None
        if first is not None:
            load_any_motion(first, self.layout, f"the model (motion_layout {self.layout.name!r})")

    def build_data(self) -> None:
        """Index both splits (rank 0; shared with the others) and the training split's motion statistics."""
        d, ctx = self.cfg.data, self.ctx
        split_dir(self.data_dir, d.train_split, "train")  # both splits exist before anything slow starts
        split_dir(self.data_dir, d.val_split, "val")

        def index_both():
            train_index, stats = index_split(
                self.data_dir, d.train_split, "train", with_stats=True, progress=self.show, layout=self.layout
            )
            val_index, _ = index_split(self.data_dir, d.val_split, "val", progress=self.show, layout=self.layout)
            self.say(
                f"data: {len(train_index.clips)} training conversations "
                f"({int(train_index.frames.sum()) / FPS / 3600:.2f} h), "
                f"{len(val_index.clips)} validation conversations"
            )
            return train_index, stats, val_index

        self.train_index, self.stats, self.val_index = ctx.main_only(index_both)

    def build_model(self) -> DualTalk:
        """The model (same seed everywhere; rank 0's weights broadcast), motion statistics, loss weights."""
        cfg, ctx, model_cfg = self.cfg, self.ctx, self.model_cfg
        seed_everything(cfg.seed)
        model = cast(DualTalk, build_model(model_cfg))  # or CausalDualTalk, a baseline: the same interface
        if getattr(model, "learns_from_target", False):  # a baseline: a trained stage 1 from another run
            from ..model.baselines import prepare_training

            prepare_training(model, self.say)
        if model_cfg.normalize_motion:
            model.set_motion_statistics(self.stats.mean, self.stats.std)
        model.to(ctx.device)
        if ctx.world > 1:  # identical starting point everywhere (also for the feature cache's key)
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, 0)
        torch.manual_seed(cfg.seed + 1000 * ctx.rank)  # different dropout per process
        self.model = model
        self.module: torch.nn.Module = model  # what the loop calls: the model, or its DDP wrapper (wrap())
        self.std = model.motion_std if (model_cfg.normalize_motion and cfg.loss.normalized) else None
        self.loss_w = weights(cfg.loss, ctx.device, self.layout.groups)
        return model

    def build_loaders(self) -> None:
        """The feature cache (if asked for), the epoch-plan samplers and the loaders of both splits."""
        d, ctx = self.cfg.data, self.ctx
        features: dict[str, Any] = {"train": None, "val": None}
        if d.feature_cache:
            root = Path(d.cache_dir) if d.cache_dir else self.run / "feature_cache"
            features = feature_cache.build_cache(
                self.model,
                root,
                {"train": self.train_index, "val": self.val_index},
                d.cache_chunk_seconds,
                ctx.rank,
                ctx.world,
                ctx.device,
                self.show,
            )
            ctx.barrier()
        self.cached = d.feature_cache
        window = d.window_frames
        self.train_sampler = PlanBatchSampler(
            self.train_index.frames, window, d.batch_size, self.cfg.seed, ctx.rank, ctx.world
        )
        pin = ctx.device.type == "cuda"
        self.train_loader = make_loader(
            ConversationWindows(self.train_index, window, features["train"], self.layout),
            self.train_sampler,
            d.num_workers,
            pin,
        )
        self.val_loader = validation_loader(
            self.val_index, d, self.layout, features["val"], ctx.rank, ctx.world, d.num_workers, pin
        )
        self.steps_per_epoch = max(1, len(self.train_sampler) // self.cfg.optim.grad_accum_steps)

    def build_optimizer(self) -> None:
        """Optimiser, learning-rate schedule, EMA and mixed precision."""
        cfg, o = self.cfg, self.cfg.optim
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(self.params, lr=o.lr, betas=(o.betas[0], o.betas[1]), weight_decay=o.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(o, self.steps_per_epoch))
        self.ema = None
        if cfg.ema_decay:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
        self.amp_dtype = None
        if cfg.precision == "bf16" or (
            cfg.precision == "auto" and self.ctx.device.type == "cuda" and torch.cuda.is_bf16_supported()
        ):
            self.amp_dtype = torch.bfloat16

    def restore(self, checkpoint: Path) -> None:
        """Model, optimiser, schedule, EMA, train state and random states from ``checkpoint``. With another
        number of processes the data position is kept (counted in the new world size), not the random states."""
        ctx = self.ctx
        weights_sd, state, rng = runs.read_checkpoint(checkpoint, ctx.rank)
        try:
            self.model.load_state_dict(weights_sd)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            self.state.load(state["progress"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:  # the run's config.yaml changed since
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            detail = next(
                (ln for ln in lines if "size mismatch" in ln or "Missing key" in ln), lines[0] if lines else exc
            )
            raise InputError(
                checkpoint,
                f"does not fit the model and optimiser of the run's config.yaml (edited since it was written?): "
                f"{str(detail)[:200]}",
            ) from None
        old_world = int(state.get("world_size", ctx.world))
        if rng is not None and old_world == ctx.world:
            runs.set_rng_state(rng)
        elif old_world == ctx.world:
            self.say(
                f"warning: {checkpoint} has no random state for rank {ctx.rank} (rng_rank{ctx.rank}.pt): "
                "same data position, but the run goes on with fresh random states (not exactly as uninterrupted)"
            )
        elif old_world != ctx.world:  # same examples consumed, counted in batches of the new world size
            self.state.batch_in_epoch = self.state.batch_in_epoch * old_world // ctx.world
            self.say(
                f"resuming with {ctx.world} process{'es' if ctx.world > 1 else ''} instead of {old_world}: "
                "same data position, fresh random states"
            )
        self.last_saved = self.state.step
        self.say(
            f"resumed from {checkpoint} (step {self.state.step}, epoch {self.state.epoch}, "
            f"batch {self.state.batch_in_epoch} of the epoch)"
        )
        if self.state.step >= self.cfg.max_steps:
            self.say(f"the run is at step {self.state.step}, max_steps is {self.cfg.max_steps}: nothing to train")

    def wrap(self) -> None:
        """DistributedDataParallel around the model when there are several processes."""
        ctx, model_cfg = self.ctx, self.model_cfg
        if ctx.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            unused = (
                model_cfg.audio_encoder.type == "wav2vec2" and not model_cfg.audio_encoder.freeze and not self.cached
            ) or getattr(self.model, "learns_from_target", False)  # baselines: stages leave parts unused
            self.module = DDP(
                self.model,
                device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                find_unused_parameters=unused,
            )
        self.model.train()

    def setup(self) -> None:
        """Every stage before the loop, in order (the order fixes the random states: keep it)."""
        self.prepare_run()
        self.build_data()
        self.build_model()
        self.build_loaders()
        self.build_optimizer()
        if self.latest is not None:
            self.restore(self.latest)
        if self.resume:
            self.ctx.main_only(lambda: self.record_run(self.latest))
        self.wrap()
        self.metrics = runs.Metrics(
            self.run,
            self.ctx.main,
            self.cfg.tensorboard,
            self.state.step if self.latest is not None else None,
            fields=runs.metric_fields(loss_names(self.layout.groups)),
        )

    # --- steps -----------------------------------------------------------------------------------------

    def train_step(self, batch: dict, sync: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward and backward of one micro-batch (gradients summed into ``.grad``, scaled by 1/accum);
        ``sync=False`` skips DDP's gradient all-reduce (not the last micro-batch of a step).
        -> (loss, per-part error sums (G+1,), counts (G+1,))."""
        ctx, accum = self.ctx, self.cfg.optim.grad_accum_steps
        no_sync = contextlib.nullcontext() if sync or ctx.world == 1 else self.module.no_sync()  # type: ignore[operator]
        with no_sync:
            with torch.autocast(
                ctx.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
            ):
                learns = getattr(self.model, "learns_from_target", False)  # the baselines
                pred = run_model(self.module, batch, ctx.device, self.cached, self.state.step if learns else None)
                extra = None
                if learns:
                    pred, extra = pred  # (B, W, 56), the model's own loss terms (codebook, consistency) or None
            s, c = motion_errors(
                pred, batch["target"].to(ctx.device), batch["mask"].to(ctx.device), self.std, self.layout.groups
            )
            loss, _ = combine(s, c, self.loss_w)
            if extra is not None:
                loss = loss + extra
            (loss / accum).backward()
        return loss, s, c

    def optimizer_step(self) -> float:
        """Clip, step optimiser + schedule, update the EMA, count the step; -> the gradient norm (before clipping)."""
        if self.cfg.optim.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip))
        else:  # measured all the same (metrics.csv's grad_norm), nothing changed
            grads = [p.grad for p in self.params if p.grad is not None]
            grad_norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.state.step += 1
        return grad_norm

    def _export_extra(self, step: int, val: dict | None) -> dict:
        stats = self.stats
        return {
            "step": step,
            "val": val,
            "train_config": to_dict(self.cfg),
            "data_dir": str(self.data_dir.resolve()),
            "motion_stats": {"mean": stats.mean.tolist(), "std": stats.std.tolist(), "frames": stats.frames},
            "ema": bool(self.ema),
        }

    def validate(self, step: int) -> dict:
        """Validation loss (the EMA's when there is one); a new best is saved to ``best/`` (with the output
        gain fitted on validation, for models that have one); logs, learning-curve plot, one line."""
        ctx, run = self.ctx, self.run
        target = cast(DualTalk, self.ema.module) if self.ema is not None else self.model
        val = evaluate(
            target,
            self.val_loader,
            ctx,
            self.std,
            self.loss_w,
            self.amp_dtype,
            self.cached,
            (target.motion_mean, target.motion_std) if self.model_cfg.output_gain else None,
            self.layout,
            step,
            self.cfg.output_gain_z,
            self.cfg.output_group_gate,
            gain_shrink=self.cfg.output_gain_shrink,
        )
        kept = val.pop("kept", {})  # groups the gate keeps (the others output the mean)
        margins = val.pop("margins", {})  # standard errors by which each group beats the mean, cross-fitted
        gain = val.pop("gain", None)  # (56,) the output gain that fits the validation split best
        final = getattr(target, "final_stage", lambda s: True)(step)  # an earlier stage's model is not kept
        improved = final and val["loss"] < self.state.best_val
        if improved:
            self.state.best_val, self.state.best_step = val["loss"], step
            if ctx.main and gain is None:
                runs.save_best(run, target, self._export_extra(step, val))
            elif ctx.main:  # best/ predicts with the gains; training goes on without them
                target.output_gain.copy_(torch.from_numpy(gain))
                extra = gain_extra(gain, kept, margins)
                runs.save_best(run, target, {**self._export_extra(step, val), **extra})
                target.output_gain.fill_(1.0)
                self.best_gain[:] = gain.tolist()
                self.best_at_mean[:] = extra["output_groups_at_mean"]  # groups the gate sends to the mean
        self.metrics.log("val", step, {"epoch": self.state.epoch, **val})
        if ctx.main:  # the learning curve so far, for a person to look at (skipped without matplotlib)
            from ..render.curves import plot_learning_curves

            plot_learning_curves({run.name: run}, run / "learning_curves.png", title=f"{run}")
        parts = " ".join(f"{'vel' if n == 'velocity' else n} {val[n]:.4f}" for n in loss_names(self.layout.groups))
        self.say(f"step {step}: val loss {val['loss']:.4f} ({parts}){'  best' if improved else ''}")
        if not math.isfinite(val["loss"]):  # the same on every process (reduced): all stop here together
            self.metrics.close()
            raise TrainingDiverged(
                f"step {step}: the validation loss is {val['loss']}: training diverged (try a smaller optim.lr, or "
                f"optim.grad_clip); {run / 'best'} is the model of step {self.state.best_step}"
            )
        return val

    def save_checkpoint(self, step: int) -> None:
        """An atomic checkpoint ``checkpoints/step_N`` (every rank adds its random state); once per step."""
        if step == self.last_saved:
            return
        ctx = self.ctx
        root = self.run / "checkpoints"
        name = f"step_{step:08d}"
        tmp = root / f".{name}.tmp"
        if ctx.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        ctx.barrier()
        torch.save(runs.rng_state(), tmp / f"rng_rank{ctx.rank}.pt")
        ctx.barrier()
        if ctx.main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "progress": self.state.to_dict(),
                "world_size": ctx.world,
            }
            runs.write_checkpoint(
                tmp, root / name, self.model, state, self._export_extra(step, None), self.cfg.keep_checkpoints
            )
        ctx.barrier()
        self.last_saved = step

    # --- the loop --------------------------------------------------------------------------------------

    def fit(self) -> Path:
        """Set up, train to ``max_steps`` (validating and checkpointing on schedule), finish; -> ``run/best``.
        A signal finishes the step, saves a checkpoint and raises :class:`TrainingInterrupted`."""
        created = self.ctx.main and not self.run.exists()
        try:
            self.setup()
        except (DualTalkError, KeyboardInterrupt):  # bad data found while setting up: no run was started
            if created and runs.latest_checkpoint(self.run) is None:
                if getattr(self, "_lock", None) is not None:
                    self._lock.close()
                shutil.rmtree(self.run, ignore_errors=True)
            raise
        cfg, ctx, state = self.cfg, self.ctx, self.state
        accum = cfg.optim.grad_accum_steps
        last_val = None
        with stop_on_signals() as stop:
            if self.latest is None and cfg.val_at_start:
                self.validate(0)
                last_val = 0
            bar = progress(
                total=cfg.max_steps,
                initial=state.step,
                enabled=self.show,
                unit="step",
                dynamic_ncols=True,
                stream=sys.stderr,
            )
            window = _LogWindow(ctx.device, len(self.loss_w))
            started = time.perf_counter()
            micro = 0
            postfix = {"loss": "?", "ex/s": "?"}
            grad_norm = float("nan")
            self.optimizer.zero_grad(set_to_none=True)
            while state.step < cfg.max_steps:
                self.train_sampler.set_epoch(state.epoch, skip=state.batch_in_epoch)
                for batch in self.train_loader:
                    micro += 1
                    boundary = micro % accum == 0
                    loss, s, c = self.train_step(batch, sync=boundary)
                    window.add(s, c, int((batch["mask"].any(dim=1)).sum()) * ctx.world)
                    state.batch_in_epoch += 1
                    if cfg.debug_record:
                        self.record.extend(batch["key"])
                    if not boundary:
                        continue
                    grad_norm = self.optimizer_step()
                    step = state.step
                    bar.update(1)
                    if step % cfg.log_every == 0 or step == cfg.max_steps:
                        speed = self._log_train(step, window, grad_norm, started)
                        postfix["ex/s"] = f"{speed:.1f}"
                    postfix["loss"] = f"{float(loss.detach()):.4f}"
                    bar.set_postfix(postfix, refresh=False)
                    paused = time.perf_counter()  # validation and checkpoints do not count against the speed
                    if step % cfg.val_every == 0:
                        self.validate(step)
                        last_val = step
                    if step % cfg.checkpoint_every == 0:
                        self.save_checkpoint(step)
                    window.start += time.perf_counter() - paused
                    signalled = torch.tensor([0 if stop["signal"] is None else int(stop["signal"])], device=ctx.device)
                    if ctx.world > 1:
                        dist.all_reduce(signalled, op=dist.ReduceOp.MAX)
                    if int(signalled):
                        self.save_checkpoint(step)
                        bar.close()
                        self.metrics.close()
                        name = signal.Signals(int(signalled)).name
                        raise TrainingInterrupted(
                            f"{name} at step {step}: checkpoint saved; continue with dualtalk train --resume {self.run}"
                        )
                    if step >= cfg.max_steps:
                        break
                else:  # the epoch is exhausted
                    state.epoch += 1
                    state.batch_in_epoch = 0
            bar.close()
            if last_val != state.step:
                self.validate(state.step)
            self.save_checkpoint(state.step)
        return self.finish()

    def _log_train(self, step: int, window: _LogWindow, grad_norm: float, started: float) -> float:
        """Training losses of the log window (summed over processes) to metrics; -> examples per second."""
        self.ctx.sum_(window.sums)
        self.ctx.sum_(window.counts)
        total, mse = combine(window.sums, window.counts, self.loss_w)
        speed = window.examples / max(time.perf_counter() - window.start, 1e-9)
        self.metrics.log(
            "train",
            step,
            {
                "epoch": self.state.epoch,
                "loss": float(total),
                **{n: float(v) for n, v in zip(loss_names(self.layout.groups), mse)},
                "lr": self.scheduler.get_last_lr()[0],
                "grad_norm": grad_norm,
                "examples_per_sec": speed,
                "elapsed_s": time.perf_counter() - started,
            },
        )
        window.reset()
        return speed

    def finish(self) -> Path:
        """Close the logs, report the output gain, write the debug record; -> ``run/best``."""
        self.metrics.close()
        if self.best_gain:
            g = self.best_gain
            self.say(
                f"best step {self.state.best_step}: output gain fitted on the validation split, mean "
                f"{np.mean(g):.2f}; {sum(x < 0.05 for x in g)} of {len(g)} coefficients fall back to the "
                "training mean"
                + (
                    f" (groups not predicted beyond the mean on validation: {', '.join(self.best_at_mean)})"
                    if self.best_at_mean
                    else ""
                )
            )
        if self.cfg.debug_record:
            (self.run / "debug").mkdir(parents=True, exist_ok=True)
            (self.run / "debug" / f"rank{self.ctx.rank}.json").write_text(
                json.dumps(
                    {
                        "rank": self.ctx.rank,
                        "world": self.ctx.world,
                        "samples": self.record,
                        "weights_sha256": weights_digest(self.model),
                    }
                )
            )
        self.ctx.barrier()
        best = self.run / "best"
        if best.is_dir():
            return best
        # no validation kept a model: a baseline whose run ended within its first stage (the codebook's VQ-VAE
        # trains alone there and nothing predicts yet); its stage-1 weights are the last checkpoint's
        latest = runs.latest_checkpoint(self.run)
        assert latest is not None  # fit() writes a checkpoint at max_steps
        stage1 = self.model_cfg.baseline.stage1_steps
        self.say(
            f"training ended at step {self.state.step}, within {self.model_cfg.variant}'s first stage "
            f"(baseline.stage1_steps {stage1}): no model that predicts was kept (no {best.name}/); the stage-1 "
            f"model is {latest / 'model'} (for baseline.stage1_from); continue with "
            f"dualtalk train --resume {self.run} --max-steps N (N > {stage1})"
        )
        return latest / "model"


class _LogWindow:
    """Error sums, counts and examples since the last training log line (and when the window started)."""

    def __init__(self, device: torch.device, parts: int = 4):
        self.sums = torch.zeros(parts, device=device)
        self.counts = torch.zeros(parts, device=device)
        self.reset()

    def add(self, sums: torch.Tensor, counts: torch.Tensor, examples: int) -> None:
        self.sums += sums.detach()
        self.counts += counts.detach()
        self.examples += examples

    def reset(self) -> None:
        self.sums.zero_()
        self.counts.zero_()
        self.examples, self.start = 0, time.perf_counter()


def train(
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    preset: str | None = None,
    max_steps: int | None = None,
    overrides=(),
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train a DualTalk model on ``data_dir/{train,val}`` into the run directory ``out_dir``.

    ``preset``, ``max_steps`` and ``overrides`` (``key=value`` strings) are applied on top of ``config``
    (default :class:`TrainConfig`) by :func:`~dualtalk.train.configure.compose_train_config`:
    ``train(data, out, preset="speaker_only", max_steps=2000)``.

    ``resume=True`` continues the run in ``out_dir`` from its newest checkpoint (``config`` defaults to
    the run's saved config; ``data_dir`` to the run's data directory). Returns ``out_dir/best``, the
    model directory of the lowest validation loss (loadable by ``load_model``/``dualtalk generate``); for a
    baseline whose run ends within its first stage (``baseline.stage1_steps``, where nothing predicts yet),
    the last checkpoint's model directory, said in one line. A resume that fails changes nothing of the run.
    Under torchrun every process calls this function; it joins the process group itself.
    """
    out = Path(out_dir)
    if preset is not None or max_steps is not None or overrides:
        base = config if config is not None else (load_train_config(out / "config.yaml") if resume else None)
        config = compose_train_config(preset=preset, max_steps=max_steps, overrides=overrides, base=base)
    if resume:
        info = runs.read_run_info(out)
        saved = load_train_config(out / "config.yaml")
        if config is None:
            config = saved
        elif to_dict(check_train_config(config)) != to_dict(check_train_config(saved)):
            raise DualTalkError(
                f"{out}: the model config differs from the run being resumed "
                "(only training settings can change on --resume)"
            )
        data_dir = data_dir if data_dir is not None else info["data_dir"]
    config = config if config is not None else compose_train_config()
    if data_dir is None:
        raise DualTalkError("no data directory given")
    check_train_config(config)
    ctx = setup_distributed(config.device)
    try:
        return Trainer(Path(data_dir), out, config, resume=resume, progress=progress, ctx=ctx).fit()
    finally:
        ctx.close()
