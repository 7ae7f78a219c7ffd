"""Re-create the small DualTalk models shipped in the package (``src/dualtalk/assets/demo_model`` and, with
``--stream``, the causal ``demo_stream`` that ``dualtalk stream`` uses by default).

    python scripts/train_demo_model.py                       # the shipped model (a few minutes on 2 CPU cores)
    python scripts/train_demo_model.py --stream              # the shipped streaming model (recipe-stream)
    python scripts/train_demo_model.py --steps 300 --out /tmp/demo_model --work /tmp/demo_work
    python scripts/train_demo_model.py --work WORK --refit   # WORK/run kept: only the output gain fitted again

It writes a synthetic corpus (``dualtalk synth``: 40 conversations of 60 s, seed 2025, the standard causes),
trains DualTalk on it with the recommended CPU recipe (``recipe-cpu``: the ``small`` preset, paper variant
with its information paths, output gain; see "Listening that generalizes" in README) and the project's
training code (``dualtalk train``), and copies the best model (lowest validation loss) to ``--out``.
Equivalent commands:

    dualtalk synth --out WORK/corpus --conversations 40 --seconds 60 --seed 2025 --splits train=36,val=4
    dualtalk train --data WORK/corpus --out WORK/run --config recipe-cpu --max-steps 1500

The weights are about 3 MB.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / "src" / "dualtalk" / "assets" / "demo_model"
STREAM_ASSET = REPO / "src" / "dualtalk" / "assets" / "demo_stream"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--conversations", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--stream", action="store_true", help="the causal streaming model (recipe-stream, demo_stream)")
    ap.add_argument("--out", type=Path, help=f"model directory (default: {ASSET} or, with --stream, {STREAM_ASSET})")
    ap.add_argument("--work", type=Path, help="working directory (default: a temporary one, deleted)")
    ap.add_argument(
        "--refit",
        action="store_true",
        help="WORK/run is a finished run of this recipe: fit its output gain again under the current recipe "
        "(dualtalk.train.engine.refit_output_gain: what training would keep when only the gain rule changed)",
    )
    args = ap.parse_args()

    from dualtalk.model.checkpoint import load_model, save_model
    from dualtalk.synth import GENERATOR_VERSION, make_corpus
    from dualtalk.train import compose_train_config, train

    recipe = "recipe-stream" if args.stream else "recipe-cpu"
    if args.out is None:
        args.out = STREAM_ASSET if args.stream else ASSET
    started = time.perf_counter()
    tmp = None
    work = args.work
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="dualtalk-demo-model-")
        work = Path(tmp.name)
    corpus = work / "corpus"
    if not corpus.exists():
        n_val = max(2, args.conversations // 10)
        make_corpus(
            corpus,
            args.conversations,
            seconds=60.0,
            seed=args.seed,
            splits={"train": args.conversations - n_val, "val": n_val},
        )
    cfg = compose_train_config(config_file=recipe, max_steps=args.steps)
    if args.refit:
        from dualtalk.train.engine import refit_output_gain

        if not (work / "run" / "best").is_dir():
            raise SystemExit(f"--refit: {work / 'run' / 'best'} is not there (train first, with --work)")
        best = refit_output_gain(work / "run", corpus, cfg)
    else:
        best = train(corpus, work / "run", cfg)
    model = load_model(best)
    extra = dict(model.extra)
    extra.update(
        {
            "made_by": "python scripts/train_demo_model.py" + (" --stream" if args.stream else ""),
            "corpus": {
                "generator": "dualtalk.synth",
                "version": GENERATOR_VERSION,
                "conversations": args.conversations,
                "seconds": 60,
                "seed": args.seed,
            },
            "train": {"config": recipe, "steps": args.steps},
        }
    )
    if args.out.exists():
        shutil.rmtree(args.out)
    save_model(model, args.out, extra=extra)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB) in {time.perf_counter() - started:.0f} s")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
