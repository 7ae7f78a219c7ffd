"""``evaluate(pred_dir, gt_dir, ...)``: the paper's metrics under two protocols, plus roles, turns and mesh.

Protocols (side by side in the README):

- ``reference`` (default): exactly the reference evaluation script. Per prediction file: cut prediction,
  ground truth and partner ground truth to the shortest; FD, P-FD, MSE, SID (k-means fitted on the
  prediction), STS, variance of the prediction, rPCC; ``mean`` is the plain mean over files.
- ``pooled``: statistics over the whole test set. FD and P-FD on all frames of all files at once; MSE and
  variances frame-weighted; SID both ways round (``sid``: k-means fitted on all predicted frames, ground
  truth assigned, as the reference; ``sid_gt``: fitted on the ground truth, prediction assigned); rPCC on
  all frames; seeded diversity of prediction and ground truth; STS (a per-sequence quantity) averaged
  over files. ``mean`` holds these test-set values; ``per_file`` the per-file MSE, STS, variance, rPCC.

Extras (separate JSON blocks, so ``mean`` / ``per_file`` stay comparable with published tables):
``by_role`` (every metric on the frames where the person speaks / listens, from voice activity on the
person's own audio in the ground-truth directory), ``transitions`` (smoothness around role changes),
``mesh`` (LVE and FDD in mm with a user-supplied FLAME model and masks).
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DualTalkError
from ..io.conversation import MAX_LENGTH_MISMATCH_FRAMES
from ..io.motion import load_any_motion
from ..io.progress import progress as progress_bar
from ..io.threads import limit_threads, usable_cpus
from ..layout import LAYOUTS
from .data import MIN_FRAMES, ItemArrays, load_item, pair_files
from .metrics import (
    SID_CLUSTERS,
    diversity,
    frechet_distance,
    mse,
    paired_frechet_distance,
    pearson,
    rpcc,
    sid,
    sts,
    variance,
)
from .roles import ROLES, role_mask, role_steps, summarise_transitions, transition_frames

if TYPE_CHECKING:
    from .mesh import MeshEvaluator

PROTOCOLS = ("reference", "pooled")
#: metric names of the reference protocol (JSON keys are NAME_GROUP, e.g. fid_exp)
REFERENCE_METRICS = ("fid", "p_fid", "mse", "sid", "sts", "variance_pre", "rpcc")
POOLED_METRICS = (
    "fid",
    "p_fid",
    "mse",
    "sid",
    "sid_gt",
    "sts",
    "variance_pre",
    "variance_gt",
    "rpcc",
    "diversity_pre",
    "diversity_gt",
)
#: per-file numbers of the pooled protocol (the others only exist for the whole test set)
POOLED_PER_FILE = ("mse", "sts", "variance_pre", "rpcc")
#: random frame pairs of the pooled protocol's diversity
DIVERSITY_PAIRS = 1000


# ----------------------------------------------------------------------------- one file


def reference_metrics(a: ItemArrays, frames: np.ndarray | None = None) -> dict:
    """The reference protocol's 21 numbers for one item (numpy scalars: float32 where the reference's are).

    ``frames`` (n,) bool restricts every metric to those frames (STS to steps inside them).
    """
    out = {}
    steps = None if frames is None else role_steps(frames)
    groups = a.groups
    for g in groups:
        p, t, q = a.group("pred", g), a.group("gt", g), a.group("partner", g)  # (n, D_g)
        out[f"sts_{g}"] = sts(p, t, steps=steps)
        if frames is not None:
            p, t, q = p[frames], t[frames], q[frames]  # (m, D_g)
        out[f"fid_{g}"] = frechet_distance(p, t)
        out[f"p_fid_{g}"] = paired_frechet_distance(p, t, q)
        out[f"mse_{g}"] = mse(p, t)
        out[f"sid_{g}"] = sid(p, t, SID_CLUSTERS[g])
        out[f"variance_pre_{g}"] = variance(p)
        out[f"rpcc_{g}"] = rpcc(p, t, q)
    return {f"{m}_{g}": out[f"{m}_{g}"] for g in groups for m in REFERENCE_METRICS}  # reference key order


def pooled_file_metrics(a: ItemArrays, frames: np.ndarray | None = None) -> dict:
    out = {}
    steps = None if frames is None else role_steps(frames)
    groups = a.groups
    for g in groups:
        p, t, q = a.group("pred", g), a.group("gt", g), a.group("partner", g)
        out[f"sts_{g}"] = sts(p, t, steps=steps)
        if frames is not None:
            p, t, q = p[frames], t[frames], q[frames]
        out[f"mse_{g}"] = mse(p, t)
        out[f"variance_pre_{g}"] = variance(p)
        out[f"rpcc_{g}"] = rpcc(p, t, q)
    return {f"{m}_{g}": out[f"{m}_{g}"] for g in groups for m in POOLED_PER_FILE}


def pooled_metrics(
    items: list[ItemArrays],
    frames: list[np.ndarray] | None = None,
    seed: int = 0,
    diversity_pairs: int = DIVERSITY_PAIRS,
    progress: str | None = None,
) -> dict | None:
    """Test-set statistics over all (selected) frames of all items; None if fewer than MIN_FRAMES frames."""
    sel = frames if frames is not None else [None] * len(items)

    def take(x, f):
        return x if f is None else x[f]

    if sum(len(a.pred) if f is None else int(f.sum()) for a, f in zip(items, sel)) < MIN_FRAMES:
        return None
    out = {}
    groups = items[0].groups
    # a bar when asked: k-means over all frames takes a while on a large test set
    for g in progress_bar(list(groups), desc=progress or "", unit="group", leave=False, enabled=bool(progress)):
        P = np.concatenate([take(a.group("pred", g), f) for a, f in zip(items, sel)])  # (N, D_g)
        G = np.concatenate([take(a.group("gt", g), f) for a, f in zip(items, sel)])  # (N, D_g)
        A = np.concatenate([take(a.group("partner", g), f) for a, f in zip(items, sel)])  # (N, D_g)
        k = SID_CLUSTERS[g]
        file_sts = [
            sts(a.group("pred", g), a.group("gt", g), steps=None if f is None else role_steps(f))
            for a, f in zip(items, sel)
            if (len(a.pred) if f is None else role_steps(f).sum()) > 0
        ]
        out.update(
            {
                f"fid_{g}": frechet_distance(P, G),
                f"p_fid_{g}": paired_frechet_distance(P, G, A),
                f"mse_{g}": mse(P, G),
                f"sid_{g}": sid(P, G, k),
                f"sid_gt_{g}": sid(G, P, k),
                f"sts_{g}": np.mean(file_sts) if file_sts else None,
                f"variance_pre_{g}": variance(P),
                f"variance_gt_{g}": variance(G),
                f"rpcc_{g}": abs(pearson(G, A) - pearson(P, A)),
                # the same seeded pairs for prediction and ground truth: a paired comparison
                f"diversity_pre_{g}": diversity(P, diversity_pairs, np.random.default_rng(seed)),
                f"diversity_gt_{g}": diversity(G, diversity_pairs, np.random.default_rng(seed)),
            }
        )
    return {f"{m}_{g}": out[f"{m}_{g}"] for m in POOLED_METRICS for g in groups}


@dataclass
class _Job:
    key: str
    arrays: ItemArrays
    mask: np.ndarray | None  # (n,) True where the person speaks
    protocol: str
    mesh: MeshEvaluator | None  # when the mesh metrics are asked for


def _single_thread():
    """One BLAS / OpenMP thread: per-file arrays are small, and threads inside a library only add overhead
    (and contention with other processes); parallelism comes from evaluating files side by side."""
    return limit_threads(1)


def _run_job(job: _Job) -> dict:
    """Every per-file number of one item (runs in a worker thread when evaluating in parallel)."""
    try:
        return _file_numbers(job)
    except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. a Fréchet distance with a large imaginary part
        raise DualTalkError(f"{job.key}: cannot compute the metrics ({str(exc).splitlines()[0]})") from None


def _file_numbers(job: _Job) -> dict:
    a = job.arrays
    file_metrics = reference_metrics if job.protocol == "reference" else pooled_file_metrics
    out: dict = {"metrics": file_metrics(a)}
    if job.mask is not None:
        out["roles"] = {}
        if job.protocol == "reference":
            for role, frames in zip(ROLES, (job.mask, ~job.mask)):
                out["roles"][role] = reference_metrics(a, frames) if frames.sum() >= MIN_FRAMES else None
        out["transitions"] = transition_frames(a.pred, a.gt, job.mask, groups=a.groups)
    if job.mesh is not None:
        out["mesh"] = job.mesh.per_file(a.pred, a.gt)
    return out


# ----------------------------------------------------------------------------- the whole test set


def _to_json(x):
    if isinstance(x, dict):
        return {k: _to_json(v) for k, v in x.items()}
    if x is None:
        return None
    if isinstance(x, (int, np.integer)):
        return int(x)
    v = float(x)
    return v if math.isfinite(v) else None


def _mean_over_files(per_file: dict) -> dict:
    """Plain mean over files of every key, skipping files without a value (as numpy: dtypes preserved)."""
    rows = [r for r in per_file.values() if r is not None]
    keys = list(rows[0]) if rows else []
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = np.mean(vals) if vals else None
    return out


def _auto_workers(n_items: int) -> int:
    cpus = usable_cpus()
    return max(1, min(cpus, n_items // 4, 8))


def evaluate(
    pred_dir,
    gt_dir,
    protocol: str = "reference",
    flame=None,
    flame_masks=None,
    roles: str = "auto",
    workers: int | None = None,
    seed: int = 0,
    diversity_pairs: int = DIVERSITY_PAIRS,
    progress: bool = False,
) -> dict:
    """Evaluate every prediction in ``pred_dir`` against ``gt_dir``; returns the JSON structure.

    ``{"protocol", "mean", "per_file", "by_role", "transitions", "mesh", "info"}`` where ``mean`` and
    ``per_file`` use the reference's key names (``fid_exp``, ``p_fid_exp``, ``mse_exp``, ``sid_exp``,
    ``sts_exp``, ``variance_pre_exp``, ``rpcc_exp``, same for ``jaw`` and ``pose``); blocks that do not
    apply are None. ARKit motion (the ground truth's ``.npz`` hold ``arkit`` and ``head``) is evaluated on
    its groups ``mouth``, ``upper``, ``pose`` (``fid_mouth``, ...); ``info["layout"]`` says which. All inputs
    are read and checked before any metric is computed: a bad file raises a
    :class:`~dualtalk.errors.DualTalkError` naming it.
    """
    if protocol not in PROTOCOLS:
        raise DualTalkError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    if roles not in ("auto", "on", "off"):
        raise DualTalkError(f"roles must be auto, on or off, not {roles!r}")
    if flame_masks is not None and flame is None:
        raise DualTalkError("--flame-masks needs --flame (the FLAME model file generic_model.pkl)")
    items = pair_files(pred_dir, gt_dir)
    notes: list[str] = []

    # 1. read and check everything (fails before any work)
    layout = LAYOUTS[load_any_motion(items[0].gt).layout]  # the ground truth's layout: every file must match
    groups = layout.groups
    if flame is not None and layout.name != "flame":
        raise DualTalkError(
            f"--flame: the mesh metrics (LVE, FDD) need FLAME motion; {items[0].gt} is {layout.describe()}"
        )
    mesh_eval = None
    if flame is not None:
        from .mesh import MeshEvaluator

        mesh_eval = MeshEvaluator.load(flame, flame_masks)
    arrays = [load_item(it, layout=layout) for it in items]
    use_roles = roles != "off" and (roles == "on" or all(it.audio is not None for it in items))
    if roles == "on":
        missing = [it for it in items if it.audio is None]
        if missing:
            from ..errors import InputError

            raise InputError(
                missing[0].gt.with_suffix(".wav"),
                "audio not found (the per-role breakdown needs each person's audio beside the ground truth)",
            )
    if roles == "auto" and not use_roles:
        notes.append("per-role breakdown skipped: the ground-truth directory has no audio for every prediction")
    # the audio is checked against its own ground-truth motion, then cut as the arrays are (a short prediction
    # is the prediction's matter, said in the notes below, not the audio's)
    masks = [
        role_mask(it.audio, a.lengths["gt"], motion_path=it.gt)[: len(a.pred)] if use_roles else None
        for it, a in zip(items, arrays)
    ]
    role_masks = [m for m in masks if m is not None]  # all of them when use_roles, else unused
    for it, a in zip(items, arrays):  # the reference cuts silently; say so when it cuts much
        if max(a.lengths.values()) - len(a.pred) > MAX_LENGTH_MISMATCH_FRAMES:
            notes.append(
                f"{it.key}: prediction {a.lengths['pred']}, ground truth {a.lengths['gt']}, partner "
                f"{a.lengths['partner']} frames: all cut to {len(a.pred)}"
            )

    # 2. per-file numbers, in parallel where that helps
    jobs = [_Job(it.key, a, m, protocol, mesh_eval) for it, a, m in zip(items, arrays, masks)]
    n_workers = _auto_workers(len(jobs)) if workers is None else max(1, int(workers))
    bar = progress_bar(total=len(jobs), desc="evaluate", unit="file", leave=False, enabled=bool(progress))
    results = []
    # threads, not processes: k-means (Cython), sqrtm (LAPACK) and NumPy release the GIL, and threads
    # need no start-up, no copies of the arrays and no fork (unsafe after OpenMP has run)
    # warnings: constant sequences give NaN correlations (reported as null); the filters are set once
    # here, around all threads (warnings.catch_warnings is not thread-safe, so the state is restored here)
    with _single_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if n_workers > 1:
            with ThreadPoolExecutor(n_workers) as pool:
                for r in pool.map(_run_job, jobs):
                    results.append(r)
                    bar.update()
        else:
            for job in jobs:
                results.append(_run_job(job))
                bar.update()
    bar.close()
    keys = [it.key for it in items]

    # 3. assemble
    per_file = {k: r["metrics"] for k, r in zip(keys, results)}
    by_role = transitions = mesh = None
    mean: dict | None
    role_mean: dict | None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if protocol == "reference":
            mean = _mean_over_files(per_file)
            mean = {f"{m}_{g}": mean[f"{m}_{g}"] for m in REFERENCE_METRICS for g in groups}  # reference order
        else:
            mean = pooled_metrics(
                arrays, seed=seed, diversity_pairs=diversity_pairs, progress="pooled" if progress else None
            )
        if use_roles:
            by_role = {}
            for i, role in enumerate(ROLES):
                sel = [m if i == 0 else ~m for m in role_masks]
                if protocol == "reference":
                    pf = {k: r["roles"][role] for k, r in zip(keys, results)}
                    role_mean = _mean_over_files(pf)
                else:
                    pf = {
                        k: (pooled_file_metrics(a, f) if f.sum() >= 2 else None) for k, a, f in zip(keys, arrays, sel)
                    }
                    role_mean = pooled_metrics(
                        arrays,
                        sel,
                        seed=seed,
                        diversity_pairs=diversity_pairs,
                        progress=f"pooled {role}" if progress else None,
                    )
                by_role[role] = {
                    "mean": role_mean,
                    "per_file": pf,
                    "files": sum(v is not None for v in pf.values()),
                    "frames": int(sum(int(f.sum()) for f in sel)),
                }
            t_parts = [r["transitions"] for r in results]
            t_per_file = {k: summarise_transitions([p], groups) for k, p in zip(keys, t_parts)}
            if protocol == "reference":
                t_mean = _mean_over_files(t_per_file)
                t_mean["transitions"] = sum(v["transitions"] for v in t_per_file.values())
            else:
                t_mean = summarise_transitions(t_parts, groups)
            transitions = {"mean": t_mean, "per_file": t_per_file}
        if flame is not None:
            m_per_file = {
                k: {"lve_mm": r["mesh"]["lve_mm"], "fdd_mm": r["mesh"]["fdd_mm"]} for k, r in zip(keys, results)
            }
            m_mean = _mean_over_files(m_per_file)
            if protocol == "pooled":  # LVE frame-weighted; FDD is a per-sequence quantity
                m_mean["lve_mm"] = float(np.mean(np.concatenate([r["mesh"]["lip_errors_mm"] for r in results])))
            mesh = {"mean": m_mean, "per_file": m_per_file}

    info = {
        "files": len(items),
        "frames": {k: {"evaluated": len(a.pred), **a.lengths} for k, a in zip(keys, arrays)},
        "speaking_fraction": ({k: float(m.mean()) for k, m in zip(keys, role_masks)} if use_roles else None),
        "workers": n_workers,
        "notes": notes,
        "layout": layout.name,
    }
    if protocol == "pooled":
        info["seed"] = seed
        info["diversity_pairs"] = diversity_pairs
    return {
        "protocol": protocol,
        "mean": _to_json(mean),
        "per_file": _to_json(per_file),
        "by_role": None
        if by_role is None
        else {
            role: {
                "mean": _to_json(b["mean"]),
                "per_file": _to_json(b["per_file"]),
                "files": b["files"],
                "frames": b["frames"],
            }
            for role, b in by_role.items()
        },
        "transitions": None if transitions is None else _to_json(transitions),
        "mesh": None if mesh is None else _to_json(mesh),
        "info": info,
    }


# ----------------------------------------------------------------------------- printing


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def format_table(result: dict) -> str:
    """A readable table: one row per metric, columns exp / jaw / pose (ARKit: mouth / upper / pose; and per
    role when available)."""
    mean = result["mean"] or {}
    groups = LAYOUTS[result["info"].get("layout", "flame")].groups
    metrics = REFERENCE_METRICS if result["protocol"] == "reference" else POOLED_METRICS
    by_role = result.get("by_role")
    head = f"{'metric':<14}" + "".join(f" {g:>10}" for g in groups)
    if by_role:
        head += "  |" + "".join(f" {g + ' spk/lst':>23}" for g in groups)
    lines = [
        f"protocol: {result['protocol']}  ({result['info']['files']} files"
        + (", mean over files)" if result["protocol"] == "reference" else ", pooled over all frames)"),
        head,
        "-" * len(head),
    ]
    for m in metrics:
        row = f"{m:<14}" + "".join(f" {_fmt(mean.get(f'{m}_{g}')):>10}" for g in groups)
        if by_role:
            cells = []
            for g in groups:
                s, li = ((by_role[r]["mean"] or {}).get(f"{m}_{g}") for r in ROLES)
                cells.append(f" {_fmt(s) + ' / ' + _fmt(li):>23}")
            row += "  |" + "".join(cells)
        lines.append(row)
    t = result.get("transitions")
    if t:
        tm = t["mean"]
        lines.append(f"role transitions: {tm['transitions']} (window +-0.5 s)")
        for name in ("trans_vel_err", "trans_jerk", "trans_jerk_gt", "trans_jerk_ratio"):
            lines.append(f"  {name:<18}" + "".join(f" {_fmt(tm.get(f'{name}_{g}')):>10}" for g in groups))
    mesh = result.get("mesh")
    if mesh:
        lines.append(f"mesh: LVE {_fmt(mesh['mean']['lve_mm'])} mm, FDD {_fmt(mesh['mean']['fdd_mm'])} mm")
    for note in result["info"].get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


__all__ = [
    "POOLED_METRICS",
    "PROTOCOLS",
    "REFERENCE_METRICS",
    "evaluate",
    "format_table",
    "pooled_metrics",
    "reference_metrics",
]
