"""Re-create the small DualTalk model shipped in the package (``src/dualtalk/assets/demo_model``).

    python scripts/train_demo_model.py                       # the shipped model (a few minutes on 2 CPU cores)
    python scripts/train_demo_model.py --steps 300 --out /tmp/demo_model --work /tmp/demo_work

It writes a synthetic corpus (``dualtalk synth``: 40 conversations of 60 s, seed 2025), trains the ``small``
preset, paper variant (its aligned cross-modal attention lets the listener mirror the partner's smile; see
the benchmark in README), on it with the project's training code (``dualtalk train``), and copies the best
model (lowest validation loss) to ``--out``. Equivalent commands:

    dualtalk synth --out WORK/corpus --conversations 40 --seconds 60 --seed 2025 --splits train=36,val=4
    dualtalk train --data WORK/corpus --out WORK/run --preset small --max-steps 1500 \\
        data.window_frames=100 data.batch_size=16 data.num_workers=1 optim.lr=1e-3 \\
        optim.step_unit=step optim.step_size=600 optim.gamma=0.5 loss.exp=3.0 model.variant=paper \\
        model.dropout=0.0 model.interaction_dropout=0.0

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

TRAIN_OVERRIDES = [
    "data.window_frames=100", "data.batch_size=16", "data.num_workers=1", "optim.lr=1e-3",
    "optim.step_unit=step", "optim.step_size=600", "optim.gamma=0.5",
    "loss.exp=3.0", "model.variant=paper", "model.dropout=0.0", "model.interaction_dropout=0.0",
    "val_every=250", "checkpoint_every=500",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--conversations", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--out", type=Path, default=ASSET)
    ap.add_argument("--work", type=Path, help="working directory (default: a temporary one, deleted)")
    args = ap.parse_args()

    from dualtalk.model.checkpoint import load_model, save_model
    from dualtalk.synth import GENERATOR_VERSION, make_corpus
    from dualtalk.train import make_train_config, train

    started = time.perf_counter()
    tmp = None
    work = args.work
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="dualtalk-demo-model-")
        work = Path(tmp.name)
    corpus = work / "corpus"
    if not corpus.exists():
        n_val = max(2, args.conversations // 10)
        make_corpus(corpus, args.conversations, seconds=60.0, seed=args.seed,
                    splits={"train": args.conversations - n_val, "val": n_val})
    cfg = make_train_config(preset="small", max_steps=args.steps, overrides=TRAIN_OVERRIDES)
    best = train(corpus, work / "run", cfg)
    model = load_model(best)
    extra = dict(model.extra)
    extra.update({"made_by": "python scripts/train_demo_model.py",
                  "corpus": {"generator": "dualtalk.synth", "version": GENERATOR_VERSION,
                             "conversations": args.conversations, "seconds": 60, "seed": args.seed},
                  "train": {"preset": "small", "steps": args.steps, "overrides": TRAIN_OVERRIDES}})
    if args.out.exists():
        shutil.rmtree(args.out)
    save_model(model, args.out, extra=extra)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB) in {time.perf_counter() - started:.0f} s")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
