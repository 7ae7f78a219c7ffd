"""``dualtalk benchmark``: the comparison table (see :mod:`dualtalk.benchmark`)."""

from __future__ import annotations

from . import output_dir, positive


def _benchmark(args) -> int:
    from ..benchmark import run_benchmark

    report = run_benchmark(
        args.data,
        args.out,
        preset=args.preset,
        steps=args.steps,
        methods=args.methods,
        overrides=args.overrides,
        seed=args.seed,
        config_file=args.config,
        progress=not args.quiet,
        jobs=args.jobs,
        reuse=args.reuse,
    )
    plots = "roles.png and learning_curves.png" if report.get("learning_curves") else "roles.png"
    print(f"wrote {args.out}/report.md, report.json, {plots}")
    return 0


def register(sub) -> None:
    from ..benchmark import METHODS

    p = sub.add_parser(
        "benchmark",
        help="train, predict and evaluate every method; write the comparison table",
        description="Trains each learned method on DATA/train (best on DATA/val), predicts DATA/test, "
        "evaluates (reference protocol + speaking/listening), writes report.md, "
        "report.json and roles.png.",
    )
    p.add_argument("--data", required=True, help="corpus with train, val and test splits")
    p.add_argument("--out", required=True, type=output_dir, help="report directory")
    p.add_argument(
        "--config",
        help="training recipe of the learned methods: a YAML file or a packaged config's name "
        "(default: recipe-cpu, the recommended CPU recipe)",
    )
    p.add_argument("--preset", help="model preset of the learned methods (default: the config's, else small)")
    p.add_argument("--steps", type=positive(int), help="training steps per learned method (default: the config's)")
    p.add_argument("--methods", help=f"comma-separated subset of: {', '.join(METHODS)}")
    p.add_argument(
        "--seed",
        type=positive(int, allow_zero=True),
        help="training seed of the learned methods (default: the config's seed where it sets one, else 0)",
    )
    p.add_argument(
        "--jobs",
        type=positive(int),
        default=1,
        help="learned methods trained at once, each in its own process with an equal share of the "
        "CPU threads (default 1; on a 2-core CPU, 2 is faster)",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep a learned method already trained into --out from the same data and training config "
        "(resumes an interrupted benchmark; adds methods to a report)",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="training config overrides for learned methods")
    p.set_defaults(func=_benchmark)
