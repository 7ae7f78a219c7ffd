"""``dualtalk benchmark``: train every method on ``train``, select on ``val``, predict ``test``, evaluate,
and write the comparison table.

    dualtalk synth --out data/synth --conversations 40 --seconds 60 --seed 7 --splits train=32,val=4,test=4
    dualtalk benchmark --data data/synth --out reports/synth --jobs 2          # the recommended CPU recipe
    dualtalk benchmark --data DATA --out reports/real --config my_recipe.yaml --steps 20000 --methods dualtalk,mean

Every learned method trains with one recipe: ``--config`` (a YAML file or a packaged config's name), by
default the recommended CPU recipe ``recipe-cpu`` (``dualtalk/assets/configs/recipe-cpu.yaml``).

Methods (all learned ones are trained and run by the same training and inference code, as presets and
overrides of one config, not copies):

    dualtalk         DualTalk, released variant, at ``--preset`` size
    dualtalk_paper   DualTalk, paper variant (alignment-biased attention, gated modulation, positions, and
                     the information paths that let partner-driven behaviour be learned)
    dualtalk_causal  DualTalk, causal variant (live use: 80 ms lookahead, partner's face one frame late),
                     run through its streaming session
    dualtalk_causal_audio_only   the same trained model without the partner's face (audio only)
    speaker_only     FaceFormer-style: the person's own audio only (paper variant, inputs switched off)
    listener_only    Learning2Listen-style: the partner's audio and motion only (paper variant)
    faceformer       FaceFormer, its own architecture (``dualtalk.model.baselines``), at ``--preset`` size
    codetalker       CodeTalker: VQ-VAE stage (the first 40 % of the steps), then code prediction
    selftalk         SelfTalk: its animator; its lip-reading loss with ``model.baseline.recognizer=HUB_ID``
    learning2listen  Learning2Listen: VQ-VAE stage (the first 40 % of the steps), then the code predictor
    mean             the training-set mean motion
    mirror           the partner's motion
    random_segment   a random ground-truth window of another training conversation

Outputs in REPORT_DIR: ``report.md`` (the table in the paper's column order, the speaking/listening
breakdown, the noise floor and, on a ``dualtalk synth`` corpus, the error reduction of every cause next to
a ridge probe's (``dualtalk.synth.scoring``)), ``report.json`` (everything), ``roles.png``
(per-role errors), ``learning_curves.png`` (validation loss per group against steps, every learned
method), ``runs/<method>/`` (training runs) and ``pred/<method>/`` (predictions); with
``--jobs N`` (N learned methods trained at once, each in its own process) also ``logs/<method>.log``.
Running again into the same REPORT_DIR replaces the results of the methods it runs; with ``--reuse`` a
learned method whose finished run is already there (same data, same training config, same predictions
asked for: ``runs/<method>/benchmark.json``) is not trained again, so an interrupted benchmark resumes
where it stopped and methods can be added to a report one run at a time; a run whose config differs only in
how the output gain is fitted at the kept step (``GAIN_ONLY``: ``output_group_gate``, ``output_gain_shrink``) has
its gain refitted and the test split predicted again, which is what training under the new config would have kept.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from . import layout
from .errors import DualTalkError, InputError
from .io.files import atomic_write_text
from .io.threads import usable_cpus
from .model.presets import BASELINES as MODEL_BASELINES
from .model.presets import METHODS as MODEL_METHODS
from .model.presets import method_overrides

#: ``model.*`` training overrides that turn the size preset into each learned method (defined once, in
#: :data:`dualtalk.model.presets.METHODS`)
LEARNED = {name: method_overrides(name) for name in MODEL_METHODS}
#: methods that are a learned method's model run without the partner's motion: name -> the learned method
AUDIO_ONLY = {"dualtalk_causal_audio_only": "dualtalk_causal"}
FIXED = ("mean", "mirror", "random_segment")
#: the recommended CPU recipe (a packaged config, ``dualtalk/assets/configs/recipe-cpu.yaml``): every learned
#: method trains with it unless ``--config`` names another
DEFAULT_CONFIG = "recipe-cpu"
METHODS = tuple(LEARNED) + tuple(AUDIO_ONLY) + FIXED

#: the paper's table: FD, P-FD, MSE, SID, rPCC, each for EXP, JAW, POSE
PAPER_COLUMNS = [("FD", "fid"), ("P-FD", "p_fid"), ("MSE", "mse"), ("SID", "sid"), ("rPCC", "rpcc")]
GROUPS = tuple(layout.GROUPS)  # exp, jaw, pose (= the head rotation)
LOWER_IS_BETTER = {"fid": True, "p_fid": True, "mse": True, "sid": False, "rpcc": True}


#: what runs without ``--methods``: every method but the paper's baselines as their own architectures
#: (``--methods faceformer,codetalker,selftalk,learning2listen,...`` adds them)
DEFAULT_METHODS = tuple(m for m in METHODS if m not in MODEL_BASELINES)


def parse_methods(text: str | list[str] | None) -> list[str]:
    if text is None:
        return list(DEFAULT_METHODS)
    items = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in items if m not in METHODS]
    if unknown or not items:
        raise DualTalkError(f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(items))  # a method named twice is run and reported once


def _check_test_split(test: Path, layout) -> None:
    """Every conversation of the test split read as prediction and evaluation will read it (both people's
    audio decoded, motion of ``layout`` of the audio's length): one error naming the file, before training."""
    from .io.audio import load_audio
    from .train.data import index_split

    index, _ = index_split(test.parent, test.name, "test", layout=layout)
    for clip in index.clips:  # the index read their headers; the samples are read here
        for path in clip.audio:
            load_audio(path)


def _train_and_predict(
    cfg, data: Path, out: Path, name: str, progress: bool, audio_only: tuple[str, ...] = ()
) -> float:
    """Train one learned method into ``out/runs/name``, predict ``data/test`` into ``out/pred/name`` (and,
    for each name in ``audio_only``, without the partner's motion into ``out/pred/<that name>``); -> seconds."""
    from .train import train
    from .train.engine import TrainingInterrupted

    started = time.perf_counter()
    run = out / "runs" / name
    resume = _resumable(cfg, data, out, name)  # (an unfinished run of another config is deleted by now)
    if resume and progress:
        print(f"[benchmark] {name}: resuming its interrupted run from the last checkpoint ({run})", flush=True)
    try:
        best = train(data, run, cfg, progress=progress, resume=resume)
    except TrainingInterrupted as exc:  # the way on is this benchmark again, which resumes the run
        raise TrainingInterrupted(
            f"{name}: {str(exc).split(';')[0]}; run the same dualtalk benchmark command with --reuse to continue"
        ) from None
    return _predict_and_record(best, cfg, data, out, name, audio_only, started)


def _resumable(cfg, data: Path, out: Path, name: str) -> bool:
    """Whether ``out/runs/name`` is an unfinished run of this training config on ``data`` with a checkpoint to
    resume from (a benchmark interrupted while training it)."""
    from .config import to_dict
    from .train.configure import load_train_config
    from .train.runs import checkpoints, read_run_info

    run = out / "runs" / name
    if (run / FINISHED).exists() or not checkpoints(run):
        return False
    try:
        same_data = Path(read_run_info(run)["data_dir"]).resolve() == Path(data).resolve()
        return same_data and to_dict(load_train_config(run / "config.yaml")) == to_dict(cfg)
    except (DualTalkError, KeyError, TypeError):
        return False


def _predict_and_record(best, cfg, data: Path, out: Path, name: str, audio_only: tuple[str, ...], started: float):
    from .inference.pipeline import InferenceOptions, predict

    predict(best, data / "test", out / "pred" / name, options=InferenceOptions(progress=False))
    for other in audio_only:
        predict(
            best, data / "test", out / "pred" / other, options=InferenceOptions(progress=False), partner_motion=False
        )
    seconds = time.perf_counter() - started
    atomic_write_text(out / "runs" / name / FINISHED, json.dumps(_finished_record(cfg, data, audio_only, seconds)))
    return seconds


def _refit_and_predict(cfg, data: Path, out: Path, name: str, audio_only: tuple[str, ...], seconds: float) -> float:
    """A finished run whose training config differs from ``cfg`` only in ``GAIN_ONLY``: its output gain is
    fitted again under ``cfg`` (:func:`dualtalk.train.engine.refit_output_gain`) and the test split predicted
    again -> the run's training seconds plus these."""
    from .train.engine import refit_output_gain

    started = time.perf_counter()
    best = refit_output_gain(out / "runs" / name, data, cfg)
    return _predict_and_record(best, cfg, data, out, name, audio_only, started - seconds)


#: written into ``runs/<method>/`` once a learned method is trained and predicted: what ``--reuse`` checks
FINISHED = "benchmark.json"


def _finished_record(cfg, data: Path, audio_only: tuple[str, ...], seconds: float | None = None) -> dict:
    from .config import to_dict

    record: dict = {"data": str(Path(data).resolve()), "config": to_dict(cfg), "audio_only": list(audio_only)}
    if seconds is not None:
        record["seconds"] = seconds
    return record


#: training-config fields that decide only the output gain fitted at the kept step, not which step is kept: a
#: finished run differing from the asked config only in these is refitted (``--reuse``), not trained again
GAIN_ONLY = ("output_group_gate", "output_gain_shrink")


def _reusable(cfg, data: Path, out: Path, name: str, audio_only: tuple[str, ...]) -> tuple[float, bool] | None:
    """(the seconds of ``name``'s finished run in ``out``, whether its output gain must be refitted) when it
    was made from the same data, training config (up to ``GAIN_ONLY`` and the model's inert fields,
    :meth:`~dualtalk.config.DualTalkConfig.inert_fields`) and predictions as asked now (else None: it is
    trained again)."""
    try:
        record = json.loads((out / "runs" / name / FINISHED).read_text())
    except (OSError, ValueError):
        return None
    want = json.loads(json.dumps(_finished_record(cfg, data, audio_only)))
    if any(record.get(k) != v for k, v in want.items() if k != "config"):
        return None
    from .config import TrainConfig, from_dict, to_dict

    try:  # a run recorded before a field existed has that field's default (the computation it ran)
        have = to_dict(from_dict(TrainConfig, record.get("config") or {}))  # JSON-native (mode="json")
    except DualTalkError:
        return None
    asked = dict(want["config"])
    differs = [k for k in GAIN_ONLY if have.pop(k, None) != asked.pop(k, None)]
    have["model"], asked["model"] = dict(have.get("model") or {}), dict(asked.get("model") or {})
    from .train.configure import resolve_model_config

    for k in resolve_model_config(cfg).inert_fields():  # e.g. the mimicry path of a model without the partner's face
        have["model"].pop(k, None)
        asked["model"].pop(k, None)
    if have != asked or not all((out / "pred" / n).is_dir() for n in (name, *audio_only)):
        return None
    if not _model_readable(out / "runs" / name / "best"):  # damaged since: trained again, not reused
        return None
    return float(record.get("seconds", 0.0)), bool(differs)


def _model_readable(model_dir: Path) -> bool:
    """A model directory whose ``config.json`` parses and whose ``model.safetensors`` holds every byte its
    header promises (safetensors checks that on opening; a truncated or missing file: False)."""
    from safetensors import SafetensorError, safe_open

    try:
        json.loads((model_dir / "config.json").read_text())
        with safe_open(str(model_dir / "model.safetensors"), "pt"):
            return True
    except (OSError, ValueError, SafetensorError):
        return False


#: the baselines with a codebook stage, and the share of the steps it takes in the benchmark
STAGED = ("codetalker", "learning2listen")
STAGE1_SHARE = 0.4


def _stage_overrides(name: str, preset, config_file, steps) -> list[str]:
    """A codebook baseline's stage 1 takes :data:`STAGE1_SHARE` of the run's steps (``model.baseline.
    stage1_steps`` in ``--overrides`` still wins: it comes later)."""
    if name not in STAGED:
        return []
    from .train import compose_train_config

    total = compose_train_config(preset=preset, config_file=config_file, max_steps=steps).max_steps
    return [f"model.baseline.stage1_steps={max(1, int(total * STAGE1_SHARE))}"]


#: the paper's numbers (DualTalk, CVPR 2025, Table 1, its real dataset) for the systems it compares: the
#: reference a run on real data is read against
PAPER_REFERENCE = {
    "faceformer": {"speaking FD-EXP": 34.90, "listening SID-EXP": 0.54},
    "codetalker": {"speaking FD-EXP": 48.57},
    "selftalk": {"speaking FD-EXP": 35.77},
    "learning2listen": {"speaking FD-EXP": 24.61, "listening SID-EXP": 2.86},
    "dualtalk_paper": {"speaking FD-EXP": 11.14, "listening SID-EXP": 3.48},
}


def reference_table(report: dict) -> list[str]:
    """Speaking FD-EXP and listening SID-EXP of this run beside the paper's, for the methods the paper has."""
    names = [m for m in report["methods"] if m in PAPER_REFERENCE]
    if not names:
        return []
    lines = [
        "| Method | speaking FD-EXP | paper | listening SID-EXP | paper |",
        "|---|---|---|---|---|",
    ]
    for m in names:
        by = report["results"][m].get("by_role") or {}
        fd = ((by.get("speaking") or {}).get("mean") or {}).get("fid_exp")
        sid = ((by.get("listening") or {}).get("mean") or {}).get("sid_exp")
        ref = PAPER_REFERENCE[m]
        lines.append(
            f"| {m} | {fmt_metric(fd)} | {fmt_metric(ref.get('speaking FD-EXP'))} | {fmt_metric(sid)} | "
            f"{fmt_metric(ref.get('listening SID-EXP'))} |"
        )
    return lines


def _audio_only_of(name: str, names: list[str]) -> tuple[str, ...]:
    return tuple(a for a, base in AUDIO_ONLY.items() if base == name and a in names)


def _job(
    cfg, data: Path, out: Path, name: str, threads: int, log: Path, result: Path, audio_only: tuple[str, ...] = ()
) -> None:
    """A ``--jobs`` worker process: one learned method with ``threads`` threads, output to ``log``."""
    import sys

    import torch

    fh = open(log, "w", buffering=1)
    os.dup2(fh.fileno(), 1)
    os.dup2(fh.fileno(), 2)
    sys.stdout = sys.stderr = fh
    torch.set_num_threads(threads)
    seconds = _train_and_predict(cfg, data, out, name, progress=False, audio_only=audio_only)
    atomic_write_text(result, json.dumps({"seconds": seconds}))


def train_in_parallel(
    jobs: list[tuple[str, object]],
    data: Path,
    out: Path,
    workers: int,
    progress: bool,
    audio_only: dict[str, tuple[str, ...]] | None = None,
) -> dict:
    """Run ``(name, train config)`` jobs, ``workers`` at a time, each in its own process with an equal
    share of the CPU threads; -> {name: seconds}. A failed job stops the others and names its log."""
    import multiprocessing as mp

    cores = usable_cpus()
    threads = max(1, cores // workers)
    ctx = mp.get_context("spawn")
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pending = list(jobs)
    running: dict[str, tuple] = {}
    seconds: dict[str, float] = {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                name, cfg = pending.pop(0)
                result = logs / f"{name}.json"
                result.unlink(missing_ok=True)
                proc = ctx.Process(
                    target=_job,
                    args=(
                        cfg,
                        data,
                        out,
                        name,
                        threads,
                        logs / f"{name}.log",
                        result,
                        (audio_only or {}).get(name, ()),
                    ),
                )
                proc.start()
                running[name] = (proc, result)
                if progress:
                    print(
                        f"[benchmark] {name}: training in a worker process ({threads} thread(s); log "
                        f"{logs / (name + '.log')})",
                        flush=True,
                    )
            time.sleep(0.5)
            for name, (proc, result) in list(running.items()):
                if proc.is_alive():
                    continue
                proc.join()
                del running[name]
                if proc.exitcode != 0 or not result.exists():
                    raise DualTalkError(
                        f"benchmark: {name} failed (exit code {proc.exitcode}); see {logs / (name + '.log')}"
                    )
                seconds[name] = json.loads(result.read_text())["seconds"]
                if progress:
                    print(f"[benchmark] {name}: trained and predicted in {seconds[name]:.0f} s", flush=True)
    finally:
        for proc, _ in running.values():
            proc.terminate()
            proc.join()
    return seconds


def benchmark_seed(config_file=None) -> int:
    """The benchmark's training seed when none is given: the config file's ``seed`` where it sets one, else 0
    (not the training default: every benchmark figure was measured with 0)."""
    from .config import TrainConfig
    from .train import compose_train_config

    config_file = DEFAULT_CONFIG if config_file is None else config_file
    return compose_train_config(config_file=config_file, base=TrainConfig(seed=0)).seed  # the file's over 0


def run_benchmark(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    preset: str | None = None,
    steps: int | None = None,
    methods: str | list[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    seed: int | None = None,
    config_file=None,
    progress: bool = True,
    jobs: int = 1,
    reuse: bool = False,
) -> dict:
    """Train, predict and evaluate every method; write the report; return ``report.json``'s content.

    ``jobs`` > 1 trains that many learned methods at once, each in its own process with an equal share of
    the CPU threads (on a CPU, two one-thread trainings get more done than one two-thread training).
    ``reuse``: a learned method already trained into ``out`` from the same data and training config is
    not trained again (its recorded seconds are reported). ``seed``: the training seed of every learned method
    and the fixed baselines' (default: :func:`benchmark_seed`, the config file's ``seed`` where it sets one).
    """
    from .baselines import predict_baseline
    from .eval import evaluate
    from .train import compose_train_config

    data = Path(data_dir)
    out = Path(out_dir)
    names = parse_methods(methods)
    if config_file is None:
        config_file = DEFAULT_CONFIG
    seed_items = [o for o in overrides if o.split("=", 1)[0].strip() == "seed"]
    if seed_items:  # seed=N among the overrides is --seed N: the baselines' seed too (the last one wins)
        from .config import parse_override

        value = parse_override(seed_items[-1])[1]
        if seed is not None and value != seed:
            raise DualTalkError(f"--seed {seed} and the override {seed_items[-1]} disagree: give one of them")
        if isinstance(value, int) and not isinstance(value, bool):
            seed = value
    if seed is None:
        seed = benchmark_seed(config_file)
    if not isinstance(jobs, int) or jobs < 1:
        raise DualTalkError(f"--jobs must be a positive whole number, got {jobs!r}")
    for split in ("train", "val", "test"):
        if not (data / split).is_dir():
            raise InputError(data / split, "split directory not found (the benchmark needs train, val and test)")
    # every setting and the test split checked before anything is trained or written (a bad file found
    # after hours of training cost them; a failed start leaves no directory)
    settings = compose_train_config(preset=preset, config_file=config_file, max_steps=steps, overrides=list(overrides))
    trained = [n for n in LEARNED if n in names or any(AUDIO_ONLY.get(a) == n for a in names)]
    configs = {
        name: compose_train_config(
            preset=preset,
            config_file=config_file,
            max_steps=steps,
            overrides=list(LEARNED[name])
            + _stage_overrides(name, preset, config_file, steps)
            + [f"seed={seed}"]
            + list(overrides),
        )
        for name in trained
    }
    audio_only = {name: _audio_only_of(name, names) for name in trained}
    from .train.configure import check_train_config

    models = [check_train_config(cfg) for cfg in configs.values()]  # each method's settings, checked now
    _check_test_split(data / "test", layout.get_layout(models[0].motion_layout if models else "flame"))
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    if reuse:
        for name in trained:
            found = _reusable(configs[name], data, out, name, audio_only[name])
            if found is not None:
                seconds, refit = found
                if progress:
                    how = "its output gain refitted" if refit else "reused"
                    print(f"[benchmark] {name}: {how} ({out / 'runs' / name})", flush=True)
                if refit:
                    seconds = _refit_and_predict(configs[name], data, out, name, audio_only[name], seconds)
                timings[name] = seconds
    kept = set(timings) | {other for name in timings for other in audio_only[name]}
    configs_to_train = {name: cfg for name, cfg in configs.items() if name not in timings}
    # --reuse: a run interrupted while training this config is resumed (by _train_and_predict), not replaced
    resumed = {name for name in configs_to_train if reuse and _resumable(configs[name], data, out, name)}
    for name in (set(names) | set(trained)) - kept:  # a re-run replaces these methods' previous results
        for stale in (out / "runs" / name, out / "pred" / name):
            if stale.exists() and not (name in resumed and stale.parent.name == "runs"):
                shutil.rmtree(stale)
    if jobs > 1 and len(configs_to_train) > 1:
        timings.update(
            train_in_parallel(
                list(configs_to_train.items()), data, out, min(jobs, len(configs_to_train)), progress, audio_only
            )
        )
    for name in trained:  # learned methods (and the ones that need them) trained one by one
        if name not in timings:
            if progress:
                print(f"[benchmark] {name}", flush=True)
            timings[name] = _train_and_predict(configs[name], data, out, name, progress, audio_only[name])
    results: dict[str, dict] = {}
    for name in names:
        started = time.perf_counter()
        pred_dir = out / "pred" / name
        if name not in trained and name not in AUDIO_ONLY:
            if progress:
                print(f"[benchmark] {name}", flush=True)
            predict_baseline(name, data / "train", data / "test", pred_dir, seed=seed)
        results[name] = evaluate(pred_dir, data / "test", protocol="reference", roles="on")
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    report = {
        "data": str(data),
        "preset": settings.preset,
        "steps": settings.max_steps,
        "config_file": None if config_file is None else str(config_file),
        "seed": seed,
        "jobs": jobs,
        "reused": sorted(set(trained) - set(configs_to_train)),
        "overrides": list(overrides),
        "methods": names,
        "seconds": timings,
        "noise_floor": _noise_floor(data),
        "results": results,
        "causes": _cause_scores(data, out, names, progress),
    }
    from .render.curves import plot_learning_curves

    runs = {name: out / "runs" / name for name in trained}
    report["learning_curves"] = (
        bool(runs)
        and plot_learning_curves(
            runs, out / "learning_curves.png", title=f"validation loss of every learned method on {data}"
        )
        is not None
    )
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    plot_roles(report, out / "roles.png")
    atomic_write_text(out / "report.md", render_markdown(report))
    return report


def _cause_scores(data: Path, out: Path, names: list[str], progress: bool) -> dict | None:
    """Per-cause error reductions and the ridge probe, on a ``dualtalk synth`` corpus (version 3 on)."""
    from .synth.corpus import GENERATOR, load_manifest
    from .synth.scoring import score_corpus

    try:
        manifest = load_manifest(data)
    except DualTalkError:
        return None
    if manifest.get("generator") != GENERATOR or "scenario" not in manifest:
        return None
    if progress:
        print("[benchmark] scoring every cause, with the ridge probe", flush=True)
    return score_corpus(data, {name: out / "pred" / name for name in names})


def _noise_floor(data: Path) -> dict | None:
    """The synthetic corpus's noise floor of the test split (MSE per group), when it reports one."""
    manifest = data / "manifest.json"
    if not manifest.exists():
        return None
    try:
        info = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    by_split = info.get("noise_floor_by_split")
    if isinstance(by_split, dict) and isinstance(by_split.get("test"), dict):
        return by_split["test"]
    floor = info.get("noise_floor")
    return floor if isinstance(floor, dict) else None


def fmt_metric(v) -> str:
    """The number format of the report's tables (and of the docs' tables rendered from report.json)."""
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    if v == 0 or abs(v) >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2e}"  # jaw errors are ~1e-4: keep their digits


def _best(rows: dict[str, dict], key: str) -> str | None:
    vals = {m: float(r[key]) for m, r in rows.items() if r.get(key) is not None}
    if not vals:
        return None
    base = key.rsplit("_", 1)[0]
    pick = min if LOWER_IS_BETTER.get(base, True) else max
    return pick(vals, key=lambda m: vals[m])


def paper_table(report: dict) -> list[str]:
    """The paper's columns (FD, P-FD, MSE, SID, rPCC for EXP, JAW, POSE), best per column in bold: lines."""
    means = {m: report["results"][m]["mean"] for m in report["methods"]}
    head = "| Method | " + " | ".join(f"{label}-{g.upper()}" for label, _ in PAPER_COLUMNS for g in GROUPS) + " |"
    lines = [head, "|---" * (1 + len(PAPER_COLUMNS) * len(GROUPS)) + "|"]
    best = {f"{key}_{g}": _best(means, f"{key}_{g}") for _, key in PAPER_COLUMNS for g in GROUPS}
    for m in report["methods"]:
        cells: list[str] = []
        for _, key in PAPER_COLUMNS:
            for g in GROUPS:
                k = f"{key}_{g}"
                text = fmt_metric(means[m].get(k))
                cells.append(f"**{text}**" if best[k] == m else text)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def roles_table(report: dict) -> list[str]:
    """Errors on speaking and on listening frames per method: lines."""
    lines = [
        "| Method | MSE-EXP speak | MSE-EXP listen | MSE-POSE speak | MSE-POSE listen | MSE-JAW speak | "
        "MSE-JAW listen | FD-EXP speak | FD-EXP listen | FD-POSE listen |",
        "|---" * 10 + "|",
    ]
    for m in report["methods"]:
        by = report["results"][m].get("by_role") or {}
        sp = (by.get("speaking") or {}).get("mean") or {}
        li = (by.get("listening") or {}).get("mean") or {}
        values = [
            sp.get("mse_exp"),
            li.get("mse_exp"),
            sp.get("mse_pose"),
            li.get("mse_pose"),
            sp.get("mse_jaw"),
            li.get("mse_jaw"),
            sp.get("fid_exp"),
            li.get("fid_exp"),
            li.get("fid_pose"),
        ]
        lines.append(f"| {m} | " + " | ".join(fmt_metric(c) for c in values) + " |")
    return lines


def render_markdown(report: dict) -> str:
    methods = report["methods"]
    lines = [
        f"# Benchmark on `{report['data']}`",
        "",
        (
            f"Preset `{report['preset']}`, {report['steps']} training steps per learned method, seed {report['seed']}; "
            if any(name in LEARNED for name in methods)
            else f"No learned method (nothing trained), seed {report['seed']}; "
        )
        + "test split, reference protocol (mean over files). Best per column in bold.",
        "",
    ]
    lines += paper_table(report)
    lines += [
        "",
        "Arrows: FD, P-FD, MSE, rPCC lower is better; SID higher is better.",
        "",
        "## Speaking and listening frames",
        "",
        "Roles from voice activity (WebRTC VAD) on each person's own audio.",
        "",
    ]
    lines += roles_table(report)
    reference = reference_table(report)
    if reference:
        lines += [
            "",
            "## Against the paper's numbers",
            "",
            "Speaking FD-EXP and listening SID-EXP of this run, beside the paper's on its real dataset (Table 1; "
            "a synthetic corpus gives other magnitudes: compare the order of the methods).",
            "",
        ]
        lines += reference
    floor = report.get("noise_floor")
    if floor:
        lines += [
            "",
            "Noise floor of the synthetic corpus (MSE of the idle motion no input can predict): "
            + ", ".join(f"{g} {fmt_metric(floor.get(g))}" for g in GROUPS if g in floor)
            + ".",
        ]
    causes = report.get("causes")
    if causes:
        groups = list(causes["groups"])
        lines += [
            "",
            "## By cause",
            "",
            "Error reduction relative to the training mean on each cause's own frames and coefficients "
            "(speech: speaking frames; listening causes: listening frames), and in brackets the share of the "
            "ridge probe's reduction (a linear model on the cause's true input) that the method captures.",
            "",
            "| Method | " + " | ".join(f"{g} ({causes['groups'][g]['carrier']})" for g in groups) + " |",
            "|---" * (1 + len(groups)) + "|",
        ]
        probe = causes.get("probe", {})
        lines.append(
            "| probe | " + " | ".join(f"{probe[g]['reduction']:+.3f}" if g in probe else "–" for g in groups) + " |"
        )
        for m in methods:
            row = causes["methods"][m]
            cells = [
                f"{row[g]['reduction']:+.3f}"
                + (f" ({row[g]['capture']:.0%})" if row[g].get("capture") is not None else "")
                for g in groups
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Time per method (train + predict + evaluate, s): "
        + ", ".join(f"{m} {report['seconds'][m]:.0f}" for m in methods),
        "",
        "![per-role errors](roles.png)",
        "",
    ]
    if report.get("learning_curves"):
        lines += [
            "Validation loss per group against training steps (circles: the step each method keeps; a "
            "curve still falling at the end means more steps would help):",
            "",
            "![learning curves](learning_curves.png)",
            "",
        ]
    return "\n".join(lines)


def plot_roles(report: dict, out: Path) -> Path:
    """Grouped bars: MSE of exp, jaw and pose on speaking and listening frames, per method."""
    import numpy as np
    from matplotlib.figure import Figure

    from .io.files import atomic_path

    methods = report["methods"]
    fig = Figure(figsize=(11, 3.6), dpi=110)
    axes = fig.subplots(1, 3)
    width = 0.38
    for ax, g in zip(axes, GROUPS):
        x = np.arange(len(methods))
        for i, (role, color) in enumerate((("speaking", "#3b75af"), ("listening", "#e08a2b"))):
            vals = []
            for m in methods:
                by = report["results"][m].get("by_role") or {}
                v = ((by.get(role) or {}).get("mean") or {}).get(f"mse_{g}")
                vals.append(np.nan if v is None else v)
            ax.bar(x + (i - 0.5) * width, vals, width, label=role, color=color)
        floor = (report.get("noise_floor") or {}).get(g)
        if floor:
            ax.axhline(floor, color="k", lw=0.8, ls="--", label="noise floor")
        ax.set_xticks(x, methods, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"MSE {g}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out
