"""``dualtalk synth``: write a synthetic two-person corpus with known causes (see :mod:`dualtalk.synth`).

dualtalk synth --out data/synth --conversations 40 --seconds 60 --seed 0 --splits train=0.8,val=0.1,test=0.1
dualtalk synth --out data/r5 --conversations 40 --seconds 45 --seed 5 --splits train=32,val=4,test=4 --causes random
"""

from __future__ import annotations

from pathlib import Path

from . import output_dir, positive


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate synthetic two-person conversations with known causes",
        description="Write NAME_speaker{1,2}.{wav,npz} conversations whose motion follows documented rules, "
        "plus manifest.json (seed, parameters, noise floor, who speaks when).",
    )
    p.add_argument("--out", required=True, type=output_dir, help="output directory (must not exist or be empty)")
    p.add_argument("--conversations", type=positive(int), required=True, help="number of conversations")
    p.add_argument("--seconds", type=positive(float), default=60.0, help="length of each conversation (default 60)")
    p.add_argument(
        "--seed", type=positive(int, allow_zero=True), default=0, help="random seed (default 0): same seed, same corpus"
    )
    p.add_argument(
        "--splits",
        default=None,
        help="e.g. train=0.8,val=0.1,test=0.1 (fractions adding up to 1) or train=30,val=5,test=5 "
        "(counts adding up to --conversations): subdirectories OUT/train, OUT/val, OUT/test",
    )
    p.add_argument(
        "--causes",
        default="standard",
        metavar="standard|random|FILE.json",
        help="the listening causes and idle noise: standard (the documented set, default), random "
        "(drawn from --seed: which coefficients, delays, amplitudes, composition, which partner "
        "signal carries each) or a scenario JSON file (e.g. the 'scenario' of another manifest)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing corpus made by dualtalk synth")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..synth import make_corpus

    manifest = make_corpus(
        args.out,
        conversations=args.conversations,
        seconds=args.seconds,
        seed=args.seed,
        splits=args.splits,
        overwrite=args.overwrite,
        progress=not args.quiet,
        causes=args.causes,
    )
    floor = ", ".join(f"{g} {v:.3g}" for g, v in manifest["noise_floor"].items())
    splits = manifest["splits"]
    where = ", ".join(f"{k} {v}" for k, v in splits.items()) if splits else f"{manifest['conversations']}"
    print(f"wrote {where} conversations of {manifest['seconds']:g} s to {args.out}")
    print(f"noise floor (MSE): {floor}")
    for c in manifest["scenario"]["causes"]:
        print(
            f"cause {c['name']}: {c['driver']} via {c['carrier']} -> {len(c['targets'])} coefficient(s) "
            f"{c['targets'][:4]}{'...' if len(c['targets']) > 4 else ''}, delay {c['delay']:g} s, "
            f"amplitude {c['amplitude']:g} x idle, {c['composition']}"
        )
    print(f"manifest: {Path(args.out) / 'manifest.json'}")
    return 0
