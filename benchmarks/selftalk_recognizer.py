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

from paired_runs import add_arguments, check_splits, compare

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
    add_arguments(ap, RESULTS / "selftalk_recognizer.json")
    ap.add_argument("--recognizer-steps", type=int, default=RecognizerConfig.steps)
    args = ap.parse_args()
    check_splits(args.data)
    import torch

    torch.set_num_threads(max(1, args.parallel))
    try:
        rec = recognizer(args.data, args.work / "recognizer", RecognizerConfig(steps=args.recognizer_steps))
    except DualTalkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    keep = ("config", "parameters", "held_out_split", "held_out_windows", "vowel_error_rate_before")
    extra = {
        "recognizer": {k: rec[k] for k in (*keep, "vowel_error_rate")},
        "overrides": [o.replace(str(args.work), "WORK") for o in rec["overrides"]],
    }
    runs = {"animator_only": [], "with_recognizer": rec["overrides"]}
    return compare(args, runs, "selftalk", "selftalk_recognizer.py", extra)


if __name__ == "__main__":
    sys.exit(main())
