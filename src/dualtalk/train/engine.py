"""The training loop: one process, or many with torchrun + DistributedDataParallel.

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
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .. import __version__
from ..config import TrainConfig, to_dict
from ..errors import DualTalkError, InputError
from ..io.motion import MOTION_DIM
from ..model.dualtalk import DualTalk
from . import cache as feature_cache
from . import runs
from .configure import check_train_config, load_train_config, save_train_config
from .data import ConversationWindows, PlanBatchSampler, index_split, make_loader, split_dir
from .loss import NAMES, PARTS, combine, motion_errors, weights


class TrainingInterrupted(DualTalkError):
    """A signal stopped training after a checkpoint was written."""


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


def run_model(module, batch: dict, device: torch.device, cached: bool) -> torch.Tensor:
    """One forward pass of ``module`` (DualTalk, or its DDP/EMA wrapper) on a batch -> (B, W, 56)."""
    partner_motion = batch["partner_motion"].to(device, non_blocking=True)  # (B, W, 56)
    if cached:  # the frozen encoders' outputs, read from the feature cache: (B, W, H) each, or absent
        feats = tuple(batch[k].to(device, non_blocking=True) if k in batch else None
                      for k in ("self_features", "partner_features"))
        return module(None, None, partner_motion, audio_features=feats)
    return module(batch["self_audio"].to(device, non_blocking=True),
                  batch["partner_audio"].to(device, non_blocking=True), partner_motion)


def evaluate(module, loader, ctx: Dist, std, w, amp_dtype, cached: bool, gain_stats=None) -> dict:
    """Validation loss summed over every batch of every process -> {"loss", "exp", ...}.

    ``gain_stats`` (the stored motion mean and std of a model with an output gain): the position errors are those of
    the prediction after the per-coefficient gain that fits this split best, clipped to [0, 1] (what
    training leaves in ``best/``), so that coefficients the model cannot predict beyond the mean do not
    decide which step is kept; the gains are returned under ``"gain"``.
    """
    was_training = module.training
    module.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    counts = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    moments = torch.zeros(3, MOTION_DIM, dtype=torch.float64, device=ctx.device)  # sums of p y, p p, y y
    with torch.inference_mode():
        for batch in loader:
            with torch.autocast(ctx.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                pred = run_model(module, batch, ctx.device, cached)  # (B, W, 56)
            target, mask = batch["target"].to(ctx.device), batch["mask"].to(ctx.device)
            s, c = motion_errors(pred, target, mask, std)
            sums += s.double()
            counts += c.double()
            if gain_stats is not None:
                mu, sd = gain_stats
                p = (pred.float() - mu) / sd  # (B, W, 56) normalised, around the stored mean
                y = (target.float() - mu) / sd
                m = mask[..., None].float()  # (B, W, 1)
                moments += torch.stack([(p * y * m).sum((0, 1)), (p * p * m).sum((0, 1)),
                                        (y * y * m).sum((0, 1))]).double()
    ctx.sum_(sums)
    ctx.sum_(counts)
    module.train(was_training)
    gain = None
    if gain_stats is not None:
        ctx.sum_(moments)
        py, pp, yy = moments
        gain = (py / pp.clamp_min(1e-12)).clamp(0.0, 1.0)  # (56,)
        sse = yy - 2 * gain * py + gain.square() * pp  # (56,) squared error after the gain, normalised
        if std is None:  # the loss is in the data's units
            sse = sse * gain_stats[1].double().square()
        for i, part in enumerate(PARTS.values()):
            sums[i] = sse[part].sum()
    total, mse = combine(sums.float(), counts.float(), w)
    out = {"loss": float(total), **{n: float(v) for n, v in zip(NAMES, mse)}}
    if gain is not None:
        out["gain"] = gain.float().cpu().numpy()
    return out


# ----------------------------------------------------------------------------------------------------
# the run


def train(data_dir: str | os.PathLike | None, out_dir: str | os.PathLike, config: TrainConfig | None = None, *,
          preset: str | None = None, max_steps: int | None = None, overrides=(), resume: bool = False,
          progress: bool = True) -> Path:
    """Train a DualTalk model on ``data_dir/{train,val}`` into the run directory ``out_dir``.

    ``preset``, ``max_steps`` and ``overrides`` (``key=value`` strings) are applied on top of ``config``
    (default :class:`TrainConfig`): ``train(data, out, preset="speaker_only", max_steps=2000)``.

    ``resume=True`` continues the run in ``out_dir`` from its newest checkpoint (``config`` defaults to
    the run's saved config; ``data_dir`` to the run's data directory). Returns ``out_dir/best``, the
    model directory of the lowest validation loss (loadable by ``load_model``/``dualtalk generate``).
    Under torchrun every process calls this function; it joins the process group itself.
    """
    out = Path(out_dir)
    if preset is not None or max_steps is not None or overrides:
        from .configure import load_train_config as _load, make_train_config

        base = config if config is not None else (_load(out / "config.yaml") if resume else TrainConfig())
        config = make_train_config(preset=preset, max_steps=max_steps, overrides=overrides, base=base)
    if resume:
        info = runs.read_run_info(out)
        saved = load_train_config(out / "config.yaml")
        if config is None:
            config = saved
        elif to_dict(check_train_config(config)) != to_dict(check_train_config(saved)):
            raise DualTalkError(f"{out}: the model config differs from the run being resumed "
                                "(only training settings can change on --resume)")
        data_dir = data_dir if data_dir is not None else info["data_dir"]
    config = config if config is not None else TrainConfig()
    if data_dir is None:
        raise DualTalkError("no data directory given")
    check_train_config(config)
    ctx = setup_distributed(config.device)
    try:
        return _train(Path(data_dir), out, config, resume, progress, ctx)
    finally:
        ctx.close()


def _train(data_dir: Path, run: Path, cfg: TrainConfig, resume: bool, progress: bool, ctx: Dist) -> Path:
    from tqdm import tqdm

    model_cfg = check_train_config(cfg)
    show = progress and ctx.main

    def say(msg: str) -> None:
        if ctx.main:
            tqdm.write(msg, file=sys.stderr)

    # --- run directory -----------------------------------------------------------------------------
    if not data_dir.is_dir():
        raise InputError(data_dir, "data directory not found")
    latest = None
    if ctx.main:
        if resume:
            runs.clean_partial_writes(run)
        latest = runs.latest_checkpoint(run)
        if resume and latest is None:
            raise InputError(run, "no checkpoint to resume from (checkpoints/step_* missing)")
        if not resume and latest is not None:
            raise InputError(run, "already holds a training run: continue it with --resume, or choose a new --out")
        if not resume and (run / "config.yaml").exists():  # a run that stopped before its first checkpoint
            import shutil

            say(f"{run}: the previous run there has no checkpoint; starting it afresh")
            for name in ("metrics.csv", "run.json"):
                (run / name).unlink(missing_ok=True)
            for name in ("tensorboard", "best", "debug"):
                shutil.rmtree(run / name, ignore_errors=True)
        run.mkdir(parents=True, exist_ok=True)
        save_train_config(cfg, run / "config.yaml")
        runs.write_run_info(run, {"data_dir": str(data_dir.resolve()), "world_size": ctx.world,
                                  "dualtalk_version": __version__,
                                  "event": {"event": "resume" if resume else "start", "time": time.time(),
                                            "from": latest.name if latest else None, "world_size": ctx.world}})
    latest = ctx.broadcast_object(latest)

    # --- data: index (rank 0) and motion statistics of the training split --------------------------
    d = cfg.data
    split_dir(data_dir, d.train_split, "train")  # both splits exist before anything slow starts
    split_dir(data_dir, d.val_split, "val")
    if ctx.main:
        train_index, stats = index_split(data_dir, d.train_split, "train", with_stats=True, progress=show)
        val_index, _ = index_split(data_dir, d.val_split, "val", progress=show)
        say(f"data: {len(train_index.clips)} training conversations ({int(train_index.frames.sum()) / 25 / 3600:.2f} h), "
            f"{len(val_index.clips)} validation conversations")
    else:
        train_index = stats = val_index = None
    train_index, stats, val_index = ctx.broadcast_object((train_index, stats, val_index))

    # --- model -------------------------------------------------------------------------------------
    seed_everything(cfg.seed)
    model = DualTalk(model_cfg)
    if model_cfg.normalize_motion:
        model.set_motion_statistics(stats.mean, stats.std)
    model.to(ctx.device)
    if ctx.world > 1:  # identical starting point everywhere (also for the feature cache's key)
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)
    torch.manual_seed(cfg.seed + 1000 * ctx.rank)  # different dropout per process
    std = model.motion_std if (model_cfg.normalize_motion and cfg.loss.normalized) else None
    loss_w = weights(cfg.loss, ctx.device)

    features = {"train": None, "val": None}
    if d.feature_cache:
        root = Path(d.cache_dir) if d.cache_dir else run / "feature_cache"
        features = feature_cache.build_cache(model, root, {"train": train_index, "val": val_index},
                                             d.cache_chunk_seconds, ctx.rank, ctx.world, ctx.device, show)
        ctx.barrier()
    cached = d.feature_cache

    window, val_window = d.window_frames, d.val_window_frames or d.window_frames
    train_sampler = PlanBatchSampler(train_index.frames, window, d.batch_size, cfg.seed, ctx.rank, ctx.world)
    val_sampler = PlanBatchSampler(val_index.frames, val_window, d.batch_size, rank=ctx.rank, world=ctx.world,
                                   shuffle=False, max_batches=d.max_val_batches)
    pin = ctx.device.type == "cuda"
    train_loader = make_loader(ConversationWindows(train_index, window, features["train"]), train_sampler,
                               d.num_workers, pin)
    val_loader = make_loader(ConversationWindows(val_index, val_window, features["val"]), val_sampler,
                             d.num_workers, pin, persistent=False)
    batches_per_epoch = len(train_sampler)
    accum = cfg.optim.grad_accum_steps
    steps_per_epoch = max(1, batches_per_epoch // accum)

    # --- optimisation ------------------------------------------------------------------------------
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(o, steps_per_epoch))
    ema = None
    if cfg.ema_decay:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    amp_dtype = None
    if cfg.precision == "bf16" or (cfg.precision == "auto" and ctx.device.type == "cuda"
                                   and torch.cuda.is_bf16_supported()):
        amp_dtype = torch.bfloat16

    progress_state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val": math.inf, "best_step": -1}
    if latest is not None:
        weights_sd, state, rng = runs.read_checkpoint(latest, ctx.rank)
        model.load_state_dict(weights_sd)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        progress_state.update(state["progress"])
        old_world = int(state.get("world_size", ctx.world))
        if rng is not None and old_world == ctx.world:
            runs.set_rng_state(rng)
        elif old_world != ctx.world:  # same examples consumed, counted in batches of the new world size
            done = progress_state["batch_in_epoch"] * old_world
            progress_state["batch_in_epoch"] = done // ctx.world
            say(f"resuming with {ctx.world} processes instead of {old_world}: same data position, fresh random states")
        say(f"resumed from {latest} (step {progress_state['step']}, epoch {progress_state['epoch']}, "
            f"batch {progress_state['batch_in_epoch']} of the epoch)")

    module = model
    if ctx.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        unused = model_cfg.audio_encoder.type == "wav2vec2" and not model_cfg.audio_encoder.freeze and not cached
        module = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                     find_unused_parameters=unused)
    model.train()

    metrics = runs.Metrics(run, ctx.main, cfg.tensorboard, progress_state["step"] if latest is not None else None)
    record: list[str] = []
    best_gain: list[float] = []  # the output gain of best/ (models with output_gain)
    run_cfg = to_dict(cfg)
    last_saved = progress_state["step"] if latest is not None else -1

    def export_extra(step: int, val: dict | None) -> dict:
        return {"step": step, "val": val, "train_config": run_cfg, "data_dir": str(data_dir.resolve()),
                "motion_stats": {"mean": stats.mean.tolist(), "std": stats.std.tolist(), "frames": stats.frames},
                "ema": bool(ema)}

    def validate(step: int) -> dict:
        target = ema.module if ema is not None else model
        val = evaluate(target, val_loader, ctx, std, loss_w, amp_dtype, cached,
                       (target.motion_mean, target.motion_std) if model_cfg.output_gain else None)
        gain = val.pop("gain", None)  # (56,) the output gain that fits the validation split best
        improved = val["loss"] < progress_state["best_val"]
        if improved:
            progress_state["best_val"], progress_state["best_step"] = val["loss"], step
            if ctx.main and gain is None:
                runs.save_best(run, target, export_extra(step, val))
            elif ctx.main:  # best/ predicts with the gains; training goes on without them
                target.output_gain.copy_(torch.from_numpy(gain))
                runs.save_best(run, target, {**export_extra(step, val), "output_gain": [round(float(g), 4) for g in gain]})
                target.output_gain.fill_(1.0)
                best_gain[:] = gain.tolist()
        metrics.log("val", step, {"epoch": progress_state["epoch"], **val})
        if ctx.main:  # the learning curve so far, for a person to look at (skipped without matplotlib)
            from ..render.curves import plot_learning_curves

            plot_learning_curves({run.name: run}, run / "learning_curves.png", title=f"{run}")
        say(f"step {step}: val loss {val['loss']:.4f} (exp {val['exp']:.4f} jaw {val['jaw']:.4f} "
            f"pose {val['pose']:.4f} vel {val['velocity']:.4f}){'  best' if improved else ''}")
        return val

    def checkpoint(step: int) -> None:
        nonlocal last_saved
        if step == last_saved:
            return
        root = run / "checkpoints"
        name = f"step_{step:08d}"
        tmp = root / f".{name}.tmp"
        if ctx.main:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        ctx.barrier()
        torch.save(runs.rng_state(), tmp / f"rng_rank{ctx.rank}.pt")
        ctx.barrier()
        if ctx.main:
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "ema": ema.state_dict() if ema is not None else None, "progress": dict(progress_state),
                     "world_size": ctx.world}
            runs.write_checkpoint(tmp, root / name, model, state, export_extra(step, None), cfg.keep_checkpoints)
        ctx.barrier()
        last_saved = step

    # --- loop --------------------------------------------------------------------------------------
    step = progress_state["step"]
    last_val = None
    with stop_on_signals() as stop:
        if latest is None and cfg.val_at_start:
            validate(0)
            last_val = 0
        bar = tqdm(total=cfg.max_steps, initial=step, disable=not show, unit="step", dynamic_ncols=True,
                   file=sys.stderr)
        window_sums = torch.zeros(4, device=ctx.device)
        window_counts = torch.zeros(4, device=ctx.device)
        window_loss, window_examples, window_start = 0.0, 0, time.perf_counter()
        started = time.perf_counter()
        micro = 0
        postfix = {"loss": "?", "ex/s": "?"}
        grad_norm = float("nan")
        optimizer.zero_grad(set_to_none=True)
        while step < cfg.max_steps:
            train_sampler.set_epoch(progress_state["epoch"], skip=progress_state["batch_in_epoch"])
            for batch in train_loader:
                micro += 1
                boundary = micro % accum == 0
                sync = contextlib.nullcontext() if boundary or ctx.world == 1 else module.no_sync()
                with sync:
                    with torch.autocast(ctx.device.type, dtype=amp_dtype or torch.float32,
                                        enabled=amp_dtype is not None):
                        pred = run_model(module, batch, ctx.device, cached)  # (B, W, 56)
                    s, c = motion_errors(pred, batch["target"].to(ctx.device), batch["mask"].to(ctx.device), std)
                    loss, _ = combine(s, c, loss_w)
                    (loss / accum).backward()
                window_sums += s.detach()
                window_counts += c.detach()
                window_examples += int((batch["mask"].any(dim=1)).sum()) * ctx.world
                progress_state["batch_in_epoch"] += 1
                if cfg.debug_record:
                    record.extend(batch["key"])
                if not boundary:
                    continue
                if o.grad_clip > 0:
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, o.grad_clip))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
                progress_state["step"] = step
                window_loss = float(loss.detach())
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.max_steps:
                    ctx.sum_(window_sums)
                    ctx.sum_(window_counts)
                    total, mse = combine(window_sums, window_counts, loss_w)
                    elapsed = time.perf_counter() - window_start
                    speed = window_examples / max(elapsed, 1e-9)
                    metrics.log("train", step, {"epoch": progress_state["epoch"], "loss": float(total),
                                                **{n: float(v) for n, v in zip(NAMES, mse)},
                                                "lr": scheduler.get_last_lr()[0], "grad_norm": grad_norm,
                                                "examples_per_sec": speed,
                                                "elapsed_s": time.perf_counter() - started})
                    postfix["ex/s"] = f"{speed:.1f}"
                    window_sums.zero_()
                    window_counts.zero_()
                    window_examples, window_start = 0, time.perf_counter()
                postfix["loss"] = f"{window_loss:.4f}"
                bar.set_postfix(postfix, refresh=False)
                paused = time.perf_counter()  # validation and checkpoints do not count against the speed
                if step % cfg.val_every == 0:
                    validate(step)
                    last_val = step
                if step % cfg.checkpoint_every == 0:
                    checkpoint(step)
                window_start += time.perf_counter() - paused
                signalled = torch.tensor([0 if stop["signal"] is None else int(stop["signal"])], device=ctx.device)
                if ctx.world > 1:
                    dist.all_reduce(signalled, op=dist.ReduceOp.MAX)
                if int(signalled):
                    checkpoint(step)
                    bar.close()
                    metrics.close()
                    name = signal.Signals(int(signalled)).name
                    raise TrainingInterrupted(f"{name} at step {step}: checkpoint saved; continue with "
                                              f"dualtalk train --resume {run}")
                if step >= cfg.max_steps:
                    break
            else:  # the epoch is exhausted
                progress_state["epoch"] += 1
                progress_state["batch_in_epoch"] = 0
        bar.close()
        if last_val != step:
            validate(step)
        checkpoint(step)
    metrics.close()
    if best_gain:
        say(f"best step {progress_state['best_step']}: output gain fitted on the validation split, mean "
            f"{np.mean(best_gain):.2f}; {sum(g < 0.05 for g in best_gain)} of {len(best_gain)} coefficients fall "
            "back to the training mean")
    if cfg.debug_record:
        (run / "debug").mkdir(parents=True, exist_ok=True)
        import json

        (run / "debug" / f"rank{ctx.rank}.json").write_text(json.dumps(
            {"rank": ctx.rank, "world": ctx.world, "samples": record, "weights_sha256": weights_digest(model)}))
    ctx.barrier()
    return run / "best"
