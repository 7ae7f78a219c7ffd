"""SelfTalk with its lip-reading objective on a synthetic corpus, against its animator alone.

    .venv/bin/python benchmarks/selftalk_recognizer.py --data data/synth --work /tmp/st   # about 15 min

SelfTalk's objective needs a frozen speech recognizer; its own is a hub download that never heard the
synthetic voices, so ``dualtalk benchmark`` trains SelfTalk as its animator alone. Here a recognizer is
first trained on the corpus's training split (``dualtalk.synth.recognizer``: a small ``Wav2Vec2ForCTC``
over the vowels the generator says; its vowel error rate on the validation split is reported), saved as a
model directory, and loaded the way a user gives SelfTalk any recognizer (``model.baseline.recognizer=DIR``).
Then ``dualtalk benchmark --methods selftalk,mean`` runs twice on the same corpus and recipe (the recommended
CPU recipe unless ``--config``), side by side, one process and one thread each: without the recognizer
(``animator_only``, the benchmark's ``selftalk`` row) and with it (``with_recognizer``: lip-feature MSE and
CTC on top of the motion loss). Both are scored as the benchmark scores every method (test-split MSE per
group and role beside the training mean's, each cause's error reduction, training seconds). Finished reports
and the recognizer in ``--work`` are kept. JSON in ``benchmarks/results/selftalk_recognizer.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paired_runs import check_splits, print_runs, run_all, summary

from dualtalk.benchmark import DEFAULT_CONFIG
from dualtalk.errors import DualTalkError
from dualtalk.synth.recognizer import RecognizerConfig, train_recognizer

RESULTS = Path(__file__).resolve().parent / "results"


def recognizer(data: Path, out: Path, cfg: RecognizerConfig) -> dict:
    """The recognizer in ``out`` if it was trained on ``data`` with ``cfg`` (its report), else trained now."""
    report = out / "recognizer.json"
    if report.is_file():
        old = json.loads(report.read_text())
        if old.get("corpus") == str(data) and old.get("config") == vars(cfg):
            print(f"recognizer: kept {out} (vowel error rate {old['vowel_error_rate']:.3f})")
            return old
    return train_recognizer(data, out, cfg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/synth"), help="corpus made by dualtalk synth (splits)")
    ap.add_argument("--work", type=Path, required=True, help="the recognizer and the two benchmark reports (kept)")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="training recipe (default: the recommended one)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's max_steps")
    ap.add_argument("--recognizer-steps", type=int, default=RecognizerConfig.steps)
    ap.add_argument("--parallel", type=int, default=2, help="1: the two trainings one after the other")
    ap.add_argument("--out", type=Path, default=RESULTS / "selftalk_recognizer.json")
    args = ap.parse_args()
    check_splits(args.data)
    import torch

    torch.set_num_threads(max(1, args.parallel))
    try:
        rec = recognizer(args.data, args.work / "recognizer", RecognizerConfig(steps=args.recognizer_steps))
    except DualTalkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    runs_asked = {"animator_only": [], "with_recognizer": rec["overrides"]}
    reports = run_all(runs_asked, "selftalk", args.data, args.work, args.config, args.steps, args.parallel)
    if reports is None:
        return 1
    runs = {lb: summary(r, "selftalk") for lb, r in reports.items()}
    print_runs(runs, "selftalk")
    result = {
        "command": f"python benchmarks/selftalk_recognizer.py --data {args.data} --work WORK "
        f"--parallel {args.parallel}",
        "data": str(args.data),
        "config": args.config,
        "steps": reports["animator_only"]["steps"],
        "parallel": args.parallel,
        "recognizer": {k: rec[k] for k in ("config", "parameters", "held_out_split", "held_out_windows",
                                           "vowel_error_rate_before", "vowel_error_rate")},
        "overrides": [o.replace(str(args.work), "WORK") for o in rec["overrides"]],
        "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
