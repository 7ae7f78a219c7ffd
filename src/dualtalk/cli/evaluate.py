"""``dualtalk evaluate``: the paper's metrics for a directory of predictions.

    dualtalk evaluate --pred PRED_DIR --gt GT_DIR [--json OUT.json] [--protocol reference|pooled]
                      [--flame generic_model.pkl --flame-masks FLAME_masks.pkl] [--roles auto|on|off]
                      [--workers N] [--seed N]

Prints a table (metric x exp / jaw / pose) and writes the JSON (``mean``, ``per_file``, ...) only when
everything succeeded.
"""

from __future__ import annotations

import json
import sys

from . import output_file, positive


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="compute FD, P-FD, MSE, SID, STS, variance, rPCC (and per role, turns, LVE/FDD)",
        description="Evaluate predictions (NAME_speakerK.npy (T, 56) or .npz) against the ground truth "
        "(dataset layout; the partner's ground truth is read from the other speaker's file).",
    )
    p.add_argument("--pred", required=True, metavar="PRED_DIR", help="directory of predictions")
    p.add_argument("--gt", required=True, metavar="GT_DIR", help="ground-truth directory (dataset layout)")
    p.add_argument("--json", type=output_file, metavar="OUT.json", help="write the results here (atomically)")
    p.add_argument(
        "--protocol",
        choices=("reference", "pooled"),
        default="reference",
        help="reference: identical to the reference script (default); pooled: test-set statistics",
    )
    p.add_argument("--flame", metavar="generic_model.pkl", help="your FLAME model: adds LVE and FDD (mm)")
    p.add_argument("--flame-masks", metavar="FLAME_masks.pkl", help="FLAME's region masks (needed with --flame)")
    p.add_argument(
        "--roles",
        choices=("auto", "on", "off"),
        default="auto",
        help="per-role breakdown from the ground-truth audio: auto (when present), on, off",
    )
    p.add_argument(
        "--workers",
        type=positive(int),
        default=None,
        help="files evaluated side by side, in threads (default: automatic)",
    )
    p.add_argument(
        "--seed", type=positive(int, allow_zero=True), default=0, help="seed of the pooled protocol's diversity"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..eval import evaluate, format_table
    from ..io.files import atomic_write_text

    result = evaluate(
        args.pred,
        args.gt,
        protocol=args.protocol,
        flame=args.flame,
        flame_masks=args.flame_masks,
        roles=args.roles,
        workers=args.workers,
        seed=args.seed,
        progress=sys.stderr.isatty(),
    )
    print(format_table(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0
