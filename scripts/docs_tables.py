"""The measured tables of the documentation, rendered from ``benchmarks/results/*.json``.

Every table of measured numbers in ``docs/`` sits between two marker comments::

    <!-- table:listening -->
    | corpus | cause ... |
    ...
    <!-- /table -->

and is written by this script from the JSON that the benchmark scripts in ``benchmarks/`` save, so the
numbers cannot drift from the measurements:

    python scripts/docs_tables.py            # rewrite the tables in docs/*.md
    python scripts/docs_tables.py --check    # exit 1, one line per page and table that is out of date
    python scripts/docs_tables.py --list     # which table comes from which JSON file

The same module is a mkdocs hook (``hooks:`` in ``mkdocs.yml``): figures that live in
``benchmarks/results/`` are linked from the pages as ``../benchmarks/results/NAME.png`` (so the links work
on GitHub) and are served by the site as ``img/NAME.png`` without a copy in ``docs/``; and the Sphinx roles
of the docstrings (:func:`x`) are shown as plain code in the API pages.

The benchmark's own tables come from ``dualtalk.benchmark`` (``paper_table``, ``roles_table``: the same
functions that write ``report.md``), so the docs and the report cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from dualtalk.benchmark import GROUPS, paper_table, reference_table, roles_table
from dualtalk.synth.scoring import CAPTURE_BAR, worse_text

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"


MARKER = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)


# ----------------------------------------------------------------------------------------------- helpers
def load(name: str) -> dict:
    path = RESULTS / name
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def table(head: list[str], rows: list[list[str]], rule: str = "---") -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(f" {rule} " if rule == "---" else rule for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def compact_table(head: list[str], rows: list[list[str]]) -> str:
    """``|---|---|`` rules, as ``dualtalk benchmark``'s report.md writes them."""
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += [("| " + " | ".join(r) + " |").replace("|  |", "| |") for r in rows]
    return "\n".join(lines) + "\n"


def signed(v: float) -> str:
    return f"{v:+.3f}"


#: model order: exp 0-49, jaw 50-52, global rotation 53-55 (pitch, yaw, roll)
ROTATION = {53: "pitch", 54: "yaw", 55: "roll"}


def targets_text(targets: list[int]) -> str:
    if len(targets) == 1:
        t = targets[0]
        return ROTATION.get(t, f"exp {t}" if t < 50 else f"jaw {t - 50}")
    if all(t < 50 for t in targets):
        return f"{len(targets)} exp"
    return ", ".join(targets_text([t]) for t in targets)


def driver_text(cause: dict) -> str:
    if cause["driver"] == "partner_event":
        return {"audio": "laugh", "motion": "mirror", "both": "smile with laugh"}[cause["carrier"]]
    return cause["driver"].replace("_", " ")


# ------------------------------------------------------------------------------------------------ tables
def t_generate(name: str = "generate.json") -> str:
    """benchmarks/generate.py: the released architecture at full size, one process per mode; with the
    reference implementation, the matmul probe and the floor when the run measured them."""
    data = load(name)
    native = data["machine"].get("native_bf16", True)  # runs before the field was recorded: an AVX512-BF16 CPU
    labels = {
        "reference": "reference implementation (`DualTalkModel`, float32)",
        "exact": "`--exact` (float32)" + ("" if native else ", what `auto` picks on this CPU"),
        "transformers": "`--exact` with transformers' own CNN path",
        "bf16": "`--dtype bfloat16`"
        + (" (what `auto` picks on this CPU)" if native else " (emulated: no native bfloat16 on this CPU)"),
        "int8": "`--int8` (audio encoders' linear layers int8)",
    }
    rows_in = data["rows"]
    base = "reference" if any(r["mode"] == "reference" for r in rows_in) else "exact"
    floor = any("x_floor" in r for r in rows_in)
    head = ["mode", "wall time", "real-time factor"] + (["× its floor"] if floor else [])
    if base == "reference":
        head.append("speed-up over the reference")
    head += ["peak memory", f"max abs difference from {'the reference' if base == 'reference' else '`--exact`'}"]
    rows = []
    for r in rows_in:
        rtf = f"{r['rtf']:.2f}"
        diff = r.get(f"max_abs_diff_vs_{base}")
        row = [
            labels.get(r["mode"], f"`{r['mode']}`"),
            f"{r['wall_s']:.1f} s",
            f"**{rtf}**" if r["mode"] == "exact" else rtf,
        ]
        if floor:
            row.append(f"{r['x_floor']:.2f}" if "x_floor" in r else "–")
        if base == "reference":
            row.append(f"{r['speedup_vs_reference']:.2f}×")
        row += [f"{r['peak_rss_mb'] / 1024:.1f} GB", "–" if diff is None else f"{diff:.1e}"]
        rows.append(row)
    text = table(head, rows)
    if data.get("repeats", 1) > 1:  # runs since --repeats: the fastest of the timed forwards
        text += (
            f"\nWall time: the fastest of {data['repeats']} forwards of each mode after its warm-up (each forward's "
            "time is in the JSON, `walls_s`).\n"
        )
    if "matmul" in data and "floor_rtf" in data:
        mm, fl, ar = data["matmul"], data["floor_rtf"], data["arithmetic"]
        cpu = data["machine"]
        what = (
            f"{cpu['cpu_model']} (family/model {cpu['cpu_family_model']}), {cpu['cpus']} cores, "
            f"{', '.join(cpu['isa']) or 'no AVX2'}; "
            if cpu.get("cpu_model")
            else ""
        )
        if native:
            bf16 = f"{mm['bf16_gflops']:.0f} GFLOP/s in bfloat16"
            floors = f"{fl['fp32']:.3f} in float32 and {fl['bf16']:.3f} in bfloat16"
        else:  # emulated: a floor of minutes per second of audio is no mode to use
            bf16 = f"{mm['bf16_gflops']:.2f} GFLOP/s in emulated bfloat16"
            floors = f"{fl['fp32']:.3f} in float32 ({fl['bf16']:.0f} in emulated bfloat16)"
        text += (
            f"\nMachine: {what}matrix products at {mm['fp32_gflops']:.0f} GFLOP/s in float32 and {bf16} "
            f"(threads: {mm['threads']}); our forward does {ar['gflop_per_audio_second']:.1f} GFLOP "
            f"per second of audio at this length, so the floor is a real-time factor of {floors}.\n"
        )
    if "reference" in data:
        ref = data["reference"]
        text += (
            "\nReference: `DualTalkModel` of the checkout given to `--reference-dir`"
            + (f" (commit `{ref['commit']}`)" if ref.get("commit") else "")
            + ", under this project's interpreter and transformers, eager attention (the attention weights it asks "
            "for need it).\n"
        )
    fx = data.get("fixture_max_abs_error_vs_reference")
    if fx:
        text += (
            "\nOn the parity fixture (the reference's stored output): max abs error "
            + ", ".join(f"{labels.get(k, k).split(' (')[0]} {v:.1e}" for k, v in fx.items())
            + ".\n"
        )
    return text


def t_generate_profile(name: str = "generate.json") -> str:
    """benchmarks/generate.py --profile: seconds per module group in each mode that was profiled; with the
    arithmetic per group, the speed it ran at and its share of the matmul probe's in the mode's dtype (as the
    benchmark stored them). Runs since the encoders run side by side profile a second forward with them one
    after the other (``profile_wall_s``); the shares are of that forward."""
    data = load(name)
    rows_in = [r for r in data["rows"] if "profile_s" in r]
    groups = list(rows_in[0]["profile_s"]) if rows_in else []
    gflop = data.get("arithmetic", {}).get("gflop_per_group", {})  # runs since the arithmetic was counted per group
    sequential = any("profile_wall_s" in r for r in rows_in)

    def cell(r: dict, g: str) -> str:
        secs = r["profile_s"].get(g, 0.0)
        text = f"{secs:.2f} s ({secs / r.get('profile_wall_s', r['wall_s']):.0%})"
        speed = r.get("gflops_per_group", {}).get(g)
        if speed:
            text += f", {speed['gflops']:.0f} GFLOP/s ({speed['of_probe']:.0%})"
        return text

    head = ["module"] + (["GFLOP"] if gflop else []) + [f"`{r['mode']}`" for r in rows_in]
    rows = []
    for g in groups:
        rows.append(
            [g]
            + ([f"{gflop[g]:.0f}" if gflop.get(g, 0.0) >= 0.5 else "–"] if gflop else [])
            + [cell(r, g) for r in rows_in]
        )
    total = [f"**{data['arithmetic']['gflop']:.0f}**"] if gflop else []
    if sequential:
        rows.append(
            ["**forward**, encoders one after the other (profiled)"]
            + total
            + [f"**{r['profile_wall_s']:.2f} s**" for r in rows_in]
        )
        rows.append(
            ["**forward**, encoders side by side (the timed run)"]
            + ([""] if gflop else [])
            + [f"**{r['wall_s']:.2f} s**" for r in rows_in]
        )
    else:
        rows.append(["**forward**"] + total + [f"**{r['wall_s']:.2f} s**" for r in rows_in])
    return table(head, rows)


def t_generate_ops(name: str = "generate.json") -> str:
    """benchmarks/generate.py --profile: seconds per kind of operation (torch.profiler, one forward with the
    encoders in turn) in each mode measured against a probe, the arithmetic of each kind and its speed, and the
    bound: the floor plus the vector work and the attention kernel's softmax as measured (``op_bound``)."""
    data = load(name)
    rows_in = [r for r in data["rows"] if "ops" in r]
    if not rows_in:
        return "(no op-level profile in this run)\n"
    kinds = list(rows_in[0]["ops"]["kinds"])
    gflop = data["arithmetic"].get("gflop_per_op_kind", {})

    def cell(r: dict, kind: str) -> str:
        k = r["ops"]["kinds"].get(kind)
        if k is None:
            return "–"
        text = f"{k['s']:.2f} s ({k['s'] / r['ops_wall_s']:.0%})"
        if "gflops" in k:
            text += f", {k['gflops']:.0f} GFLOP/s ({k['of_probe']:.0%})"
        return text

    head = ["kind of operation", "GFLOP"] + [f"`{r['mode']}`" for r in rows_in]
    rows = [[k, f"{gflop[k]:.0f}" if gflop.get(k, 0.0) >= 0.5 else "–"] + [cell(r, k) for r in rows_in] for k in kinds]
    rows.append(
        ["outside the operators (Python, dispatch)", "–"]
        + [f"{r['ops_wall_s'] - sum(k['s'] for k in r['ops']['kinds'].values()):.2f} s" for r in rows_in]
    )
    rows.append(
        ["**forward**, encoders one after the other (profiled)", f"**{sum(gflop.values()):.0f}**"]
        + [f"**{r['ops_wall_s']:.2f} s**" for r in rows_in]
    )
    rows.append(
        ["floor (all the arithmetic at the probe's speed)", ""] + [f"{r['ops']['floor_s']:.2f} s" for r in rows_in]
    )
    rows.append(
        ["every product at the probe's speed, no copies (the bound)", ""]
        + [f"{r['ops']['bound_s']:.2f} s = **{r['ops']['bound_x_floor']:.2f}x** the floor" for r in rows_in]
    )
    return table(head, rows)


def t_generate_memory(name: str = "generate.json") -> str:
    """benchmarks/generate.py --load: loading a full-size model directory, and generate from it."""
    data = load(name)
    ld = data["loading"]
    rows = [
        [
            "load (`load_model(DIR)`)",
            f"{ld['load_s']:.2f} s (+{ld['import_s']:.1f} s of imports)",
            f"+{ld['rss_added_by_load_mb']:,.0f} MB (+{ld['rss_added_after_reading_weights_mb']:,.0f} MB once read)",
            f"{ld['weights_mb']:,.0f} MB",
            "–",
        ]
    ]
    for r in data.get("from_directory", []):
        rows.append(
            [
                f"generate from the directory, {r['dtype']}, {r['seconds']:g} s",
                f"{r['load_s']:.1f} s + {r['wall_s']:.1f} s",
                f"{r['peak_rss_mb']:,.0f} MB peak",
                f"{r['weights_in_memory_mb']:,.0f} MB",
                f"{r['peak_rss_mb'] / r['weights_in_memory_mb']:.2f}",
            ]
        )
    return table(["step", "time", "memory", "weights in memory", "peak / weights"], rows)


def t_predict(name: str = "predict.json") -> str:
    """benchmarks/predict.py: conversations per minute per --workers value."""
    rows = []
    data = load(name)
    for r in data["rows"]:
        rows.append(
            [
                f"`--workers {r['workers']}`",
                f"{r['conversations']} × {r['seconds_each']:g} s ({r['files']} files)",
                f"{r['wall_s']:.1f} s" if "walls_s" in r else f"{r['wall_s']:.0f} s",
                f"**{r['conversations_per_minute']:.2f}**",
                f"{r['audio_hours_per_hour']:.2f}",
            ]
        )
    text = table(
        ["processes", "split", "wall time (whole command)", "conversations / min", "hours of output per hour"], rows
    )
    if data.get("repeats", 1) > 1:  # runs since --repeats: the fastest of the whole commands
        text += (
            f"\nWall time: the fastest of {data['repeats']} runs of the command (each run's time is in the JSON, "
            "`walls_s`).\n"
        )
    return text


def t_generate_long(name: str = "generate_long.json") -> str:
    """benchmarks/generate.py --seconds 600 --modes exact --window 120 --tag long (and --tag long_amx)."""
    rows = []
    for r in load(name)["rows"]:
        rows.append(
            [
                f"`{r['mode']}`, {r['seconds'] / 60:.0f} min, {r['window_s']:.0f} s windows",
                f"{r['wall_s']:.0f} s",
                f"{r['rtf']:.2f}",
                f"{r['peak_rss_mb'] / 1024:.1f} GB",
            ]
        )
    return table(["mode", "wall time", "real-time factor", "peak memory"], rows)


TRAIN_ROWS = {  # benchmarks/train.py config -> (label, show the optimizer's share of a step)
    "tiny": ("`tiny`", False),
    "small": ("`small`", False),
    "released": ("`released` (CNN frozen, as released)", True),
    "released-frozen": ("`released`, encoders frozen", False),
}


def _millions(n: int) -> str:
    m = n / 1e6
    return f"{m:.0f} M" if m >= 10 else f"{m:.1f} M"


def _rate(v: float) -> str:
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _step(v: float) -> str:
    return f"{v:.2f}" if v < 1 else f"{v:.1f}"


def t_train() -> str:
    """benchmarks/train.py: Adam steps per config on the real loader; peak = max RSS of the process."""
    configs = load("train.json")["configs"]
    rows = []
    for name, (label, optimizer) in TRAIN_ROWS.items():
        c = configs[name]
        step = _step(c["seconds_per_step"]) + (f" (Adam {c['optimizer_s']:.1f})" if optimizer else "")
        rows.append(
            [
                label,
                f"{_millions(c['parameters'])} ({_millions(c['trainable_parameters'])})",
                f"{c['batch_size']} x {c['window_seconds']:.0f} s",
                _rate(c["examples_per_sec"]),
                step,
                f"{c['peak_rss_mb'] / 1000:.1f} GB",
            ]
        )
    return table(["config", "parameters (trained)", "batch x window", "examples/s", "s/step", "peak memory"], rows)


def _duration(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _times(x: float) -> str:
    return f"{x:.0f}× faster" if x >= 10 else f"{x:.1f}× faster"


def t_evaluate() -> str:
    """benchmarks/evaluate.py: the reference protocol, time per conversation."""
    d = load("evaluate.json")
    s, up = d["seconds_per_conversation"], d["speedup"]
    rows = [
        [
            "dualtalk, 1 worker / automatic workers",
            f"{s['dualtalk_serial'] * 1000:.0f} ms / {s['dualtalk_parallel'] * 1000:.0f} ms",
            "",
        ],
        [
            "per-element implementation of the same formulas (Python loops; k-means, sqrtm from the libraries)",
            _duration(s["per_element"]),
            _times(up["vs_per_element_best"]),
        ],
        [
            "the reference script's mix (NumPy statistics, per-element STS and histogram loops)",
            _duration(s["reference_style"]),
            _times(up["vs_reference_style_best"]),
        ],
    ]
    return compact_table(["per conversation (2 files × 1500 frames)", "time", "dualtalk is"], rows)


def t_render() -> str:
    """benchmarks/render.py: frames per second and a 30 s two-head video end to end."""
    d = load("render.json")
    labels = {"egl": "egl (Mesa llvmpipe, 4x MSAA)", "software": "software (numpy)"}
    rows = []
    for name, b in d["backends"].items():
        fps, v = b["frames_per_second"], b["video"]
        two, one = v["2_workers"], v["1_workers"]
        rows.append(
            [
                labels.get(name, name),
                f"{fps['one_head']:.1f} fps",
                f"{fps['two_heads']:.1f} fps",
                (
                    f"{two['wall_seconds']:.1f} s / {one['wall_seconds']:.1f} s "
                    f"({two['realtime_factor']:.2f}x / {one['realtime_factor']:.2f}x real time)"
                ),
            ]
        )
    secs = f"{d['video_seconds']:.0f} s"
    return table(
        [
            "backend",
            "one head, 1 process",
            "two heads, 1 process",
            f"{secs} two-head video, end to end (2 workers / 1 process)",
        ],
        rows,
    )


def t_synth_baselines() -> str:
    """benchmarks/synth.py: test MSE of the fixed baselines and the corpus's noise floor."""
    d = load("synth.json")
    digits = {"exp": 4, "jaw": 5, "pose": 5}
    rows = [[f"`{m}`"] + [f"{v[g]:.{digits[g]}f}" for g in digits] for m, v in d["mse"].items()]
    rows.append(["noise floor"] + [f"{d['noise_floor_test'][g]:.{digits[g]}f}" for g in digits])
    return table(["test MSE", "exp", "jaw", "pose"], rows)


def t_synth_probes() -> str:
    """benchmarks/synth.py: ridge regressions from the named input and from the other one (test MSE)."""
    rows = []
    for target, v in load("synth.json")["probe_mse"].items():
        digits = 5 if target == "jaw_x" else 4
        named, other = (f"{v[k]:.{digits}f} ({k[5:]})" for k in v if k.startswith("from "))
        rows.append([target, f"{v['train mean']:.{digits}f}", named, other, f"{v['floor']:.{digits}f}"])
    return table(["target", "train mean", "from the named input", "from the other input", "floor"], rows)


def t_benchmark() -> str:
    """dualtalk benchmark on a synth corpus: the paper's metrics, test split, best per column in bold
    (the table of its report.md, ``dualtalk.benchmark.paper_table``)."""
    return "\n".join(paper_table(load("benchmark_synth.json"))) + "\n"


def t_benchmark_roles() -> str:
    """dualtalk benchmark: speaking and listening frames (voice activity on each person's own audio;
    ``dualtalk.benchmark.roles_table``)."""
    return "\n".join(roles_table(load("benchmark_synth.json"))) + "\n"


def t_benchmark_paper() -> str:
    """dualtalk benchmark: speaking FD-EXP and listening SID-EXP of the paper's comparison systems beside the
    paper's numbers (``dualtalk.benchmark.reference_table``)."""
    return "\n".join(reference_table(load("benchmark_synth.json"))) + "\n"


FIXED_BASELINES = ("mean", "mirror", "random_segment")
CARRIER = {
    "own audio": "own audio",
    "audio": "partner audio",
    "motion": "partner motion",
    "both": "partner audio and motion",
}


def t_benchmark_causes() -> str:
    """dualtalk benchmark on a synth corpus: error reduction per cause, share of the probe's in brackets."""
    causes = load("benchmark_synth.json")["causes"]
    groups = list(causes["groups"])
    probe = causes.get("probe", {})
    rows = [["probe"] + [signed(probe[g]["reduction"]) if g in probe else "–" for g in groups]]
    for m, row in causes["methods"].items():
        if m in FIXED_BASELINES:  # no cause to capture: the learned methods only
            continue
        rows.append(
            [m]
            + [
                signed(row[g]["reduction"])
                + (f" ({row[g]['capture']:.0%})" if row[g].get("capture") is not None else "")
                for g in groups
            ]
        )
    head = ["Method"] + [
        f"{g} ({CARRIER.get(causes['groups'][g]['carrier'], causes['groups'][g]['carrier'])})" for g in groups
    ]
    return compact_table(head, rows)


def t_benchmark_floor() -> str:
    """dualtalk benchmark: the noise floor of the corpus's test split (one sentence)."""
    floor = load("benchmark_synth.json")["noise_floor"]
    return (
        "Noise floor of this corpus (MSE of the idle motion that no input can predict, test split): "
        + ", ".join(f"{g} {floor[g]:.2e}" for g in GROUPS)
        + ".\n"
    )


ABLATION_LABELS = {"before": "before (no paths, no output gain)"}


def t_ablation() -> str:
    """benchmarks/ablation.py: error reduction per cause, one factor of the recipe undone at a time."""
    d = load("ablation.json")
    out = []
    for seed in d["seeds"]:
        corpus = d["corpora"][str(seed)]
        causes = corpus["scenario"]["causes"]
        names = [c["name"] for c in causes]
        head = [f"variant (seed {seed})", "speech"] + [
            f"{driver_text(c).replace(' with ', '-with-')} → {targets_text(c['targets'])} "
            f"({c['carrier']}, {c['delay']:.2f} s, {c['composition']})"
            for c in causes
        ]
        rows = [["probe", "—"] + [signed(corpus["probe"][n]["reduction"]) for n in names]]
        for variant, v in corpus["variants"].items():
            rows.append(
                [ABLATION_LABELS.get(variant, variant)]
                + [signed(v["scores"][n]["reduction"]) for n in ["speech"] + names]
            )
        out.append(compact_table(head, rows))
    return "\n".join(out)


def cause_text(cause: dict) -> str:
    """One listening cause of a corpus manifest: name, driver, carrier, targets, delay, composition."""
    return (
        f"{cause['name']}: {driver_text(cause)}, {cause['carrier']}, {targets_text(cause['targets'])}, "
        f"{cause['delay']:.2f} s, {cause['composition']}"
    )


def t_listening(file: str = "listening.json") -> str:
    """benchmarks/listening.py: every cause of every corpus, the three learned methods, capture of the main one."""
    d = load(file)
    methods = d["methods"]
    main, others = methods[0], methods[1:]
    passed = {c["seed"]: c["passed"] for c in d["checks"]["per_corpus"]}
    rows = []
    for c in d["corpora"]:
        seed = c["seed"]
        rows.append(
            [str(seed), "speech (own audio)", "—", signed(c["methods"][main]["speech"]["reduction"]), "—"]
            + [signed(c["methods"][m]["speech"]["reduction"]) for m in others]
        )
        for cause in c["scenario"]["causes"]:
            n = cause["name"]
            score = c["methods"][main][n]
            mark = "✓" if passed[seed][n] else "✗"
            rows.append(
                [
                    str(seed),
                    cause_text(cause),
                    signed(c["probe"][n]["reduction"]),
                    signed(score["reduction"]),
                    f"{score['capture']:.2f} {mark}",
                ]
                + [signed(c["methods"][m][n]["reduction"]) for m in others]
            )
    head = ["corpus", "cause (driver, carrier, targets, delay, composition)", "probe", main, "capture"] + others
    return compact_table(head, rows)


def t_listening_checks(file: str) -> str:
    """benchmarks/listening.py's acceptance checks per corpus: listening causes at the bar, listening-frame MSE
    of ``dualtalk_paper`` against ``speaker_only``'s, speaking-frame MSE against ``listener_only``'s (how many
    times lower), and the groups of any learned method worse than the training mean (by how much, its SE)."""
    d = load(file)
    rows = []
    for c in d["checks"]["per_corpus"]:
        passed = c["passed"]
        listening = c.get("listening_mse_vs_speaker_only")
        speaking = c.get("speaking_mse_vs_listener_only")
        worse = [worse_text(c, k) for k in c["worse_than_mean"]]
        rows.append(
            [
                str(c["seed"]),
                f"{sum(passed.values())} of {len(passed)} {'✓' if c['all_captured'] else '✗'}",
                "–" if listening is None else f"{listening[1] / listening[0]:.2f}x lower",
                "–" if speaking is None else f"{speaking[1] / speaking[0]:.2f}x lower",
                ", ".join(worse) or "none",
            ]
        )
    n = d["checks"]
    rows.append(
        [
            "all",
            f"{n['corpora_all_captured']} of {n['corpora']} corpora",
            "",
            "",
            f"{n['worse_than_mean']} method-group pair{'s' if n['worse_than_mean'] > 1 else ''}"
            if n["worse_than_mean"]
            else "none",
        ]
    )
    head = [
        "corpus",
        "listening causes at the bar",
        "listening MSE vs `speaker_only`",
        "speaking MSE vs `listener_only`",
        "worse than the training mean",
    ]
    return compact_table(head, rows)


def t_listening_weak() -> str:
    """The five corpora with causes 1-2x the idle noise: the capture per cause of the recipe before the audio
    response path (listening_weak_without_audio_response.json) beside the 3-6x corpora's under that recipe, the
    recipe's with the path as first run (listening_weak.json), and the recipe as it is now, trained on them
    again (listening_weak_recipe.json: the same training, the shrunk gain; ± the capture's standard error)."""
    weak, strong = load("listening_weak_without_audio_response.json"), load("listening_without_audio_response.json")
    path = load("listening_weak.json")
    now = load("listening_weak_recipe.json")
    by_seed = {c["seed"]: c for c in strong["corpora"]}

    def capture(d: dict, seed: int, name: str) -> str:
        """The cause's cell as its run's checks marked it (a cause the probe cannot find: the model no worse
        than the mean on its frames)."""
        corpus = next(c for c in d["corpora"] if c["seed"] == seed)
        passed = next(c for c in d["checks"]["per_corpus"] if c["seed"] == seed)["passed"][name]
        return capture_cell(corpus["methods"]["dualtalk_paper"][name], passed)

    rows = []
    for c in weak["corpora"]:
        seed = c["seed"]
        for cause in c["scenario"]["causes"]:
            n = cause["name"]
            strong_cause = next(x for x in by_seed[seed]["scenario"]["causes"] if x["name"] == n)
            rows.append(
                [str(seed), cause_text(cause), f"{strong_cause['amplitude']:.1f}"]
                + [signed(by_seed[seed]["probe"][n]["reduction"]), capture(strong, seed, n)]
                + [f"{cause['amplitude']:.1f}", signed(c["probe"][n]["reduction"]), capture(weak, seed, n)]
                + [capture(path, seed, n), capture(now, seed, n)]
            )

    def passing(d: dict) -> str:
        return f"{sum(c['all_captured'] for c in d['checks']['per_corpus'])} of {len(d['corpora'])}"

    rows.append(
        ["every cause", "corpora passing every listening cause", "", "", passing(strong), "", "", passing(weak)]
        + [passing(path), passing(now)]
    )
    head = ["corpus", "cause", "amplitude", "probe", "capture", "weak: amplitude", "probe", "capture"]
    return compact_table(head + ["weak, with the path", "weak, the recipe now (+ shrunk gain)"], rows)


def capture_cell(score: dict, passed: bool) -> str:
    """One cause's capture with its jackknife standard error where scored with one, and the bar's mark."""
    se = score.get("capture_se")
    error = "" if se is None else f" ± {se:.2f}"
    now = "—" if score["capture"] is None else f"{score['capture']:.2f}{error}"
    return f"{now} {'✓' if passed else '✗'}"


def t_listening_train_seeds(file: str = "listening_train_seeds.json") -> str:
    """benchmarks/listening.py --train-seeds: each listening cause's capture by ``dualtalk_paper`` from every
    training seed (✓: at the bar), their mean, and per seed the corpora that pass every cause."""
    d = load(file)
    seeds = d["train_seeds"]
    spread = d["train_seed_spread"]
    by_seed = {c["seed"]: c for c in d["corpora"]}
    rows = []
    for corpus, causes in spread["per_corpus"].items():
        scenario = {x["name"]: x for x in by_seed[int(corpus)]["scenario"]["causes"]}
        for name, cause in causes.items():
            cells = []
            for t in seeds:
                v = cause["capture"].get(str(t))
                cells.append("—" if v is None else f"{v:.2f} {'✓' if v >= CAPTURE_BAR else '✗'}")
            mean = "—" if cause["mean"] is None else f"{cause['mean']:.2f}"
            rows.append([corpus, cause_text(scenario[name])] + cells + [mean, f"{cause['passed']} of {len(seeds)}"])
    rows.append(
        ["every cause", "corpora passing every listening cause"]
        + [f"{spread['corpora_all_captured'][str(t)]} of {len(by_seed)}" for t in seeds]
        + ["", ""]
    )
    head = ["corpus", "cause"] + [f"seed {t}" for t in seeds] + ["mean", "seeds passing"]
    return compact_table(head, rows)


#: the recipe's runs with the audio response path: its results file, and the results file of the recipe before
#: the path on the same corpora (None: that recipe was not run on them)
AUDIO_RESPONSE_RUNS = (
    ("listening.json", "listening_without_audio_response.json"),
    ("listening_confirm.json", "listening_confirm_without_audio_response.json"),
    ("listening_weak_fresh.json", None),  # (the five weak corpora: table listening-weak)
)


def t_listening_audio_response() -> str:
    """Every corpus the audio response path was trained on: per cause the probe, the capture without the path
    (the recipe before it) and with it (± its jackknife standard error); a corpus passes when every cause does."""
    rows = []
    for path_file, recipe_file in AUDIO_RESPONSE_RUNS:
        path = load(path_file)
        recipe = {c["seed"]: c for c in load(recipe_file)["corpora"]} if recipe_file else {}
        passed = {r["seed"]: r for r in path["checks"]["per_corpus"]}
        lo, hi = path["amplitude"]
        for c in path["corpora"]:
            seed = c["seed"]
            for cause in c["scenario"]["causes"]:
                n = cause["name"]
                before = recipe.get(seed)
                cap_before = before["methods"]["dualtalk_paper"][n]["capture"] if before else None
                score = c["methods"]["dualtalk_paper"][n]
                now = capture_cell(score, passed[seed]["passed"][n])
                rows.append(
                    [
                        f"{seed} ({lo:g}-{hi:g}x)",
                        cause_text(cause),
                        f"{cause['amplitude']:.1f}",
                        signed(c["probe"][n]["reduction"]),
                        "not run" if not before else ("—" if cap_before is None else f"{cap_before:.2f}"),
                        now,
                    ]
                )
    head = ["corpus (amplitudes)", "cause", "amplitude", "probe", "without the path: capture", "the recipe: capture"]
    return compact_table(head, rows)


MIRROR_VARIANT_RUNS = (
    ("without the path", "listening_mirror_confirm_without_audio_response.json"),
    ("without, re-run", "listening_mirror_recipe_rerun.json"),
    ("without, gate open", "listening_mirror_gate_open.json"),
    ("the recipe", "listening_mirror_confirm.json"),
    ("the recipe, gate open", "listening_mirror_audio_response_gate_open.json"),
)


def t_listening_mirror_variants() -> str:
    """The mirror corpora under the recipe and its candidate changes: per cause the probe and each variant's
    capture (± its jackknife standard error where scored with one; ✓ at the bar, "not run" where a variant was
    not trained on that corpus)."""
    runs = {label: load(name) for label, name in MIRROR_VARIANT_RUNS}
    # per variant: seed -> (dualtalk_paper's scores, the causes it passed); a corpus it was not run on is absent
    scored = {
        label: {
            c["seed"]: (c["methods"]["dualtalk_paper"], p["passed"])
            for c, p in zip(d["corpora"], d["checks"]["per_corpus"], strict=True)
        }
        for label, d in runs.items()
    }
    rows = []
    for c in runs[MIRROR_VARIANT_RUNS[0][0]]["corpora"]:
        seed = c["seed"]
        here = [v.get(seed) for v in scored.values()]
        rows.append(
            [str(seed), "speech (own audio): reduction", "—"]
            + ["not run" if h is None else signed(h[0]["speech"]["reduction"]) for h in here]
        )
        for cause in c["scenario"]["causes"]:
            n = cause["name"]
            rows.append(
                [str(seed), cause_text(cause), signed(c["probe"][n]["reduction"])]
                + ["not run" if h is None else capture_cell(h[0][n], h[1][n]) for h in here]
            )
    head = ["corpus", "cause", "probe"] + [f"{label}: capture" for label in runs]
    return compact_table(head, rows)


def t_listening_mirror() -> str:
    """listening_mirror_tuning.json: dualtalk_paper's capture per cause before and with the mimicry path."""
    d = load("listening_mirror_tuning.json")
    rows = []
    for c in d["corpora"]:
        seed = c["seed"]
        before = d["before"]["capture"][str(seed)]
        for cause in c["scenario"]["causes"]:
            n = cause["name"]
            rows.append(
                [
                    str(seed),
                    cause_text(cause),
                    signed(c["probe"][n]["reduction"]),
                    f"{before[n]:.2f}",
                    f"{c['methods']['dualtalk_paper'][n]['capture']:.2f}",
                ]
            )
    return compact_table(["corpus", "cause", "probe", "capture before", "capture with the mimicry path"], rows)


def t_listening_gate() -> str:
    """listening_mirror_gate_open.json: the mimicry gate starting half open (the recipe) or open, per mirror."""
    d = load("listening_mirror_gate_open.json")
    resp = {k: {(r["seed"], r["cause"]): r for r in d["response"][k]} for k in ("recipe", "gate_open")}
    rows = []
    for c in d["corpora"]:
        seed = c["seed"]
        for cause in c["scenario"]["causes"]:
            n = cause["name"]
            if (seed, n) not in resp["recipe"]:
                continue
            a, b = resp["recipe"][(seed, n)], resp["gate_open"][(seed, n)]
            rows.append(
                [
                    str(seed),
                    cause_text(cause),
                    signed(c["probe"][n]["reduction"]),
                    f"{a['data']:.2f}",
                    f"{d['recipe']['capture'][str(seed)][n]:.2f}",
                    f"{a['model']:.2f}",
                    f"{a['gate']['listening']:.2f} / {a['gate']['speaking']:.2f}",
                    f"{c['methods']['dualtalk_paper'][n]['capture']:.2f}",
                    f"{b['model']:.2f}",
                    f"{b['gate']['listening']:.2f} / {b['gate']['speaking']:.2f}",
                ]
            )
    head = ["corpus", "mirror", "probe", "response asked (ridge)"]
    head += [f"{w}: {x}" for w in ("recipe", "gate open") for x in ("capture", "response", "gate listening / speaking")]
    return compact_table(head, rows)


def t_teacher_forcing() -> str:
    """benchmarks/teacher_forcing.py: each run's validation error teacher-forced and autoregressive, and the mean's."""
    d = load("teacher_forcing.json")
    rows = []
    for label, r in d["methods"].items():
        for kind in ("teacher_forced", "autoregressive"):
            rows.append([label, kind.replace("_", "-")] + [f"{r[kind][g]:.3f}" for g in ("exp", "jaw", "pose")])
    first = next(iter(d["methods"].values()))
    rows.append(["training mean", "—"] + [f"{first['mean'][g]:.3f}" for g in ("exp", "jaw", "pose")])
    return table(["run", "inputs", "exp", "jaw", "pose"], rows)


def t_faceformer_training() -> str:
    """benchmarks/faceformer_training.py: FaceFormer teacher-forced against autoregressive training (test split)."""
    d = load("faceformer_training.json")
    rows = []
    first = next(iter(d["runs"].values()))
    for label, r in d["runs"].items():
        causes = ", ".join(f"{c} {v['reduction']:+.3f}" for c, v in r["causes"].items())
        rows.append(
            [label.replace("_", "-")]
            + [f"{r['mse']['faceformer'][g]:.3g}" for g in ("exp", "jaw", "pose")]
            + [f"{r['mse_by_role']['faceformer']['listening']['pose']:.3g}", causes, f"{r['train_seconds']:.0f}"]
        )
    rows.append(
        ["training mean"]
        + [f"{first['mse']['mean'][g]:.3g}" for g in ("exp", "jaw", "pose")]
        + [f"{first['mse_by_role']['mean']['listening']['pose']:.3g}", "—", "—"]
    )
    return table(
        ["training", "MSE-EXP", "MSE-JAW", "MSE-POSE", "MSE-POSE listening", "error reduction by cause", "training s"],
        rows,
    )


def t_selftalk_recognizer() -> str:
    """benchmarks/selftalk_recognizer.py: SelfTalk's animator alone against its lip-reading objective (test split)."""
    d = load("selftalk_recognizer.json")
    rows = []
    first = next(iter(d["runs"].values()))
    for label, r in d["runs"].items():
        speaking = r["mse_by_role"]["selftalk"]["speaking"]
        rows.append(
            [label.replace("_", " ")]
            + [f"{r['mse']['selftalk'][g]:.3g}" for g in ("exp", "jaw", "pose")]
            + [f"{speaking['exp']:.3g}", f"{speaking['jaw']:.3g}", f"{r['causes']['speech']['reduction']:+.3f}"]
            + [f"{r['train_seconds']:.0f}"]
        )
    mean = first["mse_by_role"]["mean"]["speaking"]
    rows.append(
        ["training mean"]
        + [f"{first['mse']['mean'][g]:.3g}" for g in ("exp", "jaw", "pose")]
        + [f"{mean['exp']:.3g}", f"{mean['jaw']:.3g}", "—", "—"]
    )
    return table(
        ["SelfTalk", "MSE-EXP", "MSE-JAW", "MSE-POSE", "speaking MSE-EXP", "speaking MSE-JAW", "speech cause"]
        + ["training s"],
        rows,
    )


#: table name -> (JSON file in benchmarks/results, renderer)
def t_causal() -> str:
    """benchmarks/listening.py with the causal methods: against dualtalk_paper, and without the partner's face."""
    r = load("causal.json")
    rows = []
    for row, c in zip(r["causal_checks"]["per_corpus"], r["corpora"]):
        audio = "; ".join(
            f"{g.rsplit('_', 1)[0].replace('partner_', '')} ({c['groups'][g]['carrier']}): "
            f"{v['probe']:+.2f} / {v['with_face']:+.2f} / {v['audio_only']:+.2f}"
            for g, v in row.get("audio_carried", {}).items()
        )
        rows.append(
            [
                str(row["seed"]),
                f"{row['speaking_mse_ratio']:.2f}",
                f"{row['listening_mse_ratio']:.2f}",
                f"{row['audio_only_speaking_mse_ratio']:.2f}" if "audio_only_speaking_mse_ratio" in row else "–",
                audio or "–",
            ]
        )
    head = [
        "corpus seed",
        "speaking MSE, causal / paper",
        "listening MSE, causal / paper",
        "speaking MSE, audio only / paper",
        "audio-carried causes: probe / causal / causal without the face (error reduction)",
    ]
    return table(head, rows)


def t_stream() -> str:
    """benchmarks/stream.py: latency, compute per 40 ms chunk, concurrent sessions, memory over an hour."""
    r = load("stream.json")
    one = r["one_session"]
    mem = r["memory"]
    rows = [
        ["algorithmic latency (frame + lookahead)", f"{r['algorithmic_latency_ms']:.0f} ms"],
        ["parameters", f"{r['parameters'] / 1e6:.2f} M"],
    ]
    for key, label in (("audio_only", "audio only"), ("with_partner_motion", "with the partner's face")):
        o = one[key]
        rows.append(
            [
                f"compute per 40 ms chunk, one session, {label} (p50 / p95 / max)",
                f"{o['compute_ms_p50']:.1f} / {o['compute_ms_p95']:.1f} / {o['compute_ms_max']:.1f} ms",
            ]
        )
    rows.append(
        [
            f"concurrent sessions at real time ({r['machine']['cores']} cores, one thread per process)",
            str(r["concurrent"]["max_real_time_sessions"]),
        ]
    )
    a, b = mem["after_1_min"], mem["at_end"]
    rows.append(
        [
            f"state + buffers after 1 min / after {b['seconds'] / 60:.0f} min",
            f"{a['state_bytes'] / 1e3:.0f} kB + {a['buffer_samples']} samples / "
            f"{b['state_bytes'] / 1e3:.0f} kB + {b['buffer_samples']} samples",
        ]
    )
    rows.append(["resident memory after 1 min / at the end", f"{a['rss_mb']:.0f} MB / {b['rss_mb']:.0f} MB"])
    return table(["measure", "value"], rows)


def t_serve() -> str:
    """benchmarks/serve.py: live sessions at real time through dualtalk serve, added latency, memory in a soak."""
    r = load("serve.json")
    rows = []
    for run in r["runs"]:
        verdict = "yes" if run["holds"] else "no: " + "; ".join(run["why_not"])
        rows.append(
            [
                str(run["sessions"]),
                f"{run['added_latency_ms_p50']:.1f} / {run['added_latency_ms_p95']:.1f} / "
                f"{run['added_latency_ms_max']:.0f} ms",
                "–" if run["tail_ms_max"] is None else f"{run['tail_ms_max']:.0f} ms",
                f"{run['server_cpu_cores']:.2f} / {run['client_cpu_cores']:.2f}",
                verdict,
            ]
        )
    head = [
        "sessions",
        "added latency p50 / p95 / max",
        "slowest done after end",
        "CPU cores: server / clients",
        "real time",
    ]
    best = r["max_real_time_sessions"]
    goal = r["goal"]
    text = table(head, rows) + "\n"
    text += (
        f"Largest count at real time: **{best} sessions** ({r['sessions_per_core']:.1f} per core, "
        f"{r['machine']['cores']} cores, {r['workers']} worker{'s' if r['workers'] > 1 else ''}); "
        f"the goal, {goal['sessions']} sessions with p95 added latency <= {goal['p95_added_ms']:g} ms, is "
        f"{'met' if goal['met'] else 'not met'}"
        + (f" (server: `--max-batch {r['max_batch']}`).\n" if "max_batch" in r else ".\n")
    )
    try:
        nb = load("serve_no_batch.json")
    except OSError:
        nb = None
    if nb is not None:
        worst = [run for run in nb["runs"] if not run["holds"]]
        text += (
            f"\nWithout batching (`{nb['command']}`, server `--max-batch 1`, `serve_no_batch.json`): at most "
            f"**{nb['max_real_time_sessions']} sessions** at real time"
            + (
                f"; {worst[0]['sessions']} sessions: p95 added latency {worst[0]['added_latency_ms_p95']:.0f} ms, "
                f"server {worst[0]['server_cpu_cores']:.2f} cores"
                if worst
                else ""
            )
            + ".\n"
        )
    s = r.get("soak")
    if s:
        text += "\n" + (
            f"Soak: {s['sessions']} sessions back to back for {s['soak_seconds'] / 60:g} min "
            f"({s['sessions_run']} sessions of {s['session_seconds']:g} s, {s['error_count']} errors), added latency "
            f"p50 / p95 {s['added_latency_ms_p50']:.1f} / {s['added_latency_ms_p95']:.1f} ms; server resident "
            f"memory {s['rss_mb_at_1_min']:.0f} MB at 1 min, {s['rss_mb_at_end']:.0f} MB at the end "
            f"({'flat' if s['flat'] else 'not flat'}: {s['rss_growth_mb']:+.1f} MB).\n"
        )
    return text


TABLES: dict[str, tuple[str, Callable[[], str]]] = {
    "generate": ("generate.json", t_generate),
    "generate-long": ("generate_long.json", t_generate_long),
    "generate-profile": ("generate.json", t_generate_profile),
    "generate-memory": ("generate.json", t_generate_memory),
    "generate-ops": ("generate.json", t_generate_ops),
    "generate-avx2": ("generate_avx2.json", lambda: t_generate("generate_avx2.json")),
    "generate-avx2-profile": ("generate_avx2.json", lambda: t_generate_profile("generate_avx2.json")),
    "generate-avx2-memory": ("generate_avx2.json", lambda: t_generate_memory("generate_avx2.json")),
    "generate-amx": ("generate_amx.json", lambda: t_generate("generate_amx.json")),
    "generate-amx-profile": ("generate_amx.json", lambda: t_generate_profile("generate_amx.json")),
    "generate-amx-memory": ("generate_amx.json", lambda: t_generate_memory("generate_amx.json")),
    "generate-amx-ops": ("generate_amx.json", lambda: t_generate_ops("generate_amx.json")),
    "generate-amx-unaligned-ops": (
        "generate_amx_unaligned.json",
        lambda: t_generate_ops("generate_amx_unaligned.json"),
    ),
    "generate-long-amx": ("generate_long_amx.json", lambda: t_generate_long("generate_long_amx.json")),
    "generate-amx-unaligned": ("generate_amx_unaligned.json", lambda: t_generate("generate_amx_unaligned.json")),
    "predict": ("predict.json", t_predict),
    "predict-avx2": ("predict_avx2.json", lambda: t_predict("predict_avx2.json")),
    "predict-amx": ("predict_amx.json", lambda: t_predict("predict_amx.json")),
    "predict-amx-distinct": ("predict_amx_distinct.json", lambda: t_predict("predict_amx_distinct.json")),
    "train": ("train.json", t_train),
    "evaluate": ("evaluate.json", t_evaluate),
    "render": ("render.json", t_render),
    "synth-baselines": ("synth.json", t_synth_baselines),
    "synth-probes": ("synth.json", t_synth_probes),
    "benchmark": ("benchmark_synth.json", t_benchmark),
    "benchmark-roles": ("benchmark_synth.json", t_benchmark_roles),
    "benchmark-causes": ("benchmark_synth.json", t_benchmark_causes),
    "benchmark-floor": ("benchmark_synth.json", t_benchmark_floor),
    "benchmark-paper": ("benchmark_synth.json", t_benchmark_paper),
    "ablation": ("ablation.json", t_ablation),
    "listening": ("listening.json", t_listening),
    "listening-confirm": ("listening_confirm.json", lambda: t_listening("listening_confirm.json")),
    "listening-checks": ("listening.json", lambda: t_listening_checks("listening.json")),
    "listening-confirm-checks": ("listening_confirm.json", lambda: t_listening_checks("listening_confirm.json")),
    "listening-fresh": ("listening_fresh.json", lambda: t_listening("listening_fresh.json")),
    "listening-fresh-checks": ("listening_fresh.json", lambda: t_listening_checks("listening_fresh.json")),
    "listening-train-seeds": ("listening_train_seeds.json", t_listening_train_seeds),
    "listening-mirror": ("listening_mirror_tuning.json", t_listening_mirror),
    "listening-mirror-confirm": (
        "listening_mirror_confirm_without_audio_response.json",
        lambda: t_listening("listening_mirror_confirm_without_audio_response.json"),
    ),
    "listening-gate": ("listening_mirror_gate_open.json", t_listening_gate),
    "listening-weak": ("listening_weak_without_audio_response.json", t_listening_weak),
    "listening-audio-response": ("listening_without_audio_response.json", t_listening_audio_response),
    "listening-mirror-variants": ("listening_mirror_audio_response_gate_open.json", t_listening_mirror_variants),
    "teacher-forcing": ("teacher_forcing.json", t_teacher_forcing),
    "faceformer-training": ("faceformer_training.json", t_faceformer_training),
    "selftalk-recognizer": ("selftalk_recognizer.json", t_selftalk_recognizer),
    "stream": ("stream.json", t_stream),
    "causal": ("causal.json", t_causal),
    "serve": ("serve.json", t_serve),
}


# ------------------------------------------------------------------------------------------------ update
def render_page(text: str, page: str, problems: list[str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES:
            problems.append(f"{page}: unknown table '{name}' (known: {', '.join(TABLES)})")
            return m.group(0)
        try:
            body = TABLES[name][1]()
        except (OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            problems.append(
                f"{page}: table '{name}' cannot be rendered from benchmarks/results/"
                f"{TABLES[name][0]}: {type(exc).__name__}: {exc}"
            )
            return m.group(0)
        return m.group(1) + body + m.group(4)

    return MARKER.sub(sub, text)


def run(check: bool, docs: Path = DOCS) -> int:
    problems: list[str] = []
    stale: list[str] = []
    seen: set[str] = set()
    for path in sorted(docs.rglob("*.md")):
        page = path.relative_to(docs.parent).as_posix()
        text = path.read_text(encoding="utf-8")
        new = render_page(text, page, problems)
        seen.update(m.group("name") for m in MARKER.finditer(text))
        if new != text:
            old_bodies = {m.group("name"): m.group("body") for m in MARKER.finditer(text)}
            new_bodies = {m.group("name"): m.group("body") for m in MARKER.finditer(new)}
            names = [n for n in new_bodies if old_bodies.get(n) != new_bodies[n]]
            for n in names:
                stale.append(
                    f"{page}: table '{n}' is out of date with benchmarks/results/{TABLES[n][0]} "
                    f"(run: python scripts/docs_tables.py)"
                )
            if not check:
                path.write_text(new, encoding="utf-8")
    for name in TABLES:
        if name not in seen:
            problems.append(f"docs: table '{name}' is not on any page (add <!-- table:{name} --><!-- /table -->)")
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if check:
        for line in stale:
            print(line, file=sys.stderr)
        return 1 if (stale or problems) else 0
    for line in stale:
        print("updated " + line.split(" is out of date")[0])
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="do not write: exit 1 if a page's table is out of date")
    ap.add_argument("--list", action="store_true", help="print each table and its JSON source")
    args = ap.parse_args(argv)
    if args.list:
        for name, (src, fn) in TABLES.items():
            print(f"{name:18s} benchmarks/results/{src:22s} {(fn.__doc__ or '').strip()}")
        return 0
    return run(args.check)


# ------------------------------------------------------------------------------------- mkdocs hook (figures)
FIGURE = re.compile(r"\]\(\.\./benchmarks/results/([\w.-]+\.png)\)")


def on_files(files, config):
    from mkdocs.structure.files import File

    for png in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"img/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    depth = page.file.src_uri.count("/")
    return FIGURE.sub(lambda m: "](" + "../" * depth + f"img/{m.group(1)})", markdown)


SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|data|class|meth|attr|mod|obj|exc|const):(?=<code>)")


def on_page_content(html: str, page, config, files) -> str:
    """Docstrings use the odd Sphinx role (:func:`x`): show the code span without the role's name."""
    return SPHINX_ROLE.sub("", html)


if __name__ == "__main__":
    sys.exit(main())
