"""``dualtalk train``: train a DualTalk model (thin wrapper over :func:`dualtalk.train.train`).

dualtalk train --data DATA --out runs/small --preset small --max-steps 20000
dualtalk train --data DATA --out runs/big --config configs/train_released.yaml data.batch_size=16
dualtalk train --resume runs/small                       # after an interruption
torchrun --nproc_per_node 4 -m dualtalk train --data DATA --out runs/big --config ...
"""

from __future__ import annotations

import os

from ..errors import DualTalkError
from . import output_dir, positive


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on DATA/{train,val}",
        description="Train DualTalk on conversations in DATA/<split>/NAME_speaker{1,2}.{wav,npz}. Writes the run "
        "directory (checkpoints, best/ model, metrics.csv, tensorboard/). Settings: "
        "defaults < --config YAML < --preset/--max-steps < key=value overrides "
        "(e.g. data.batch_size=8 optim.lr=3e-4 model.audio_encoder.freeze=true).",
    )
    p.add_argument("--data", metavar="DATA_DIR", help="dataset root with the train and val split directories")
    p.add_argument("--out", type=output_dir, metavar="RUN_DIR", help="run directory to create")
    p.add_argument("--config", metavar="FILE.yaml", help="training config (see configs/)")
    p.add_argument("--preset", metavar="NAME", help="model preset (tiny, tiny-mel, small, released, paper, ...)")
    p.add_argument("--max-steps", type=positive(int), metavar="N", help="optimizer steps to train for")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..train import compose_train_config, train
    from ..train.configure import load_train_config

    if args.resume:
        if args.out and args.out != args.resume:
            raise DualTalkError("--resume RUN_DIR continues RUN_DIR: leave out --out (or give the same directory)")
        if args.config or args.preset:
            raise DualTalkError(
                "--resume uses the run's saved config: --config/--preset cannot change it "
                "(key=value overrides of training settings and --max-steps can)"
            )
        from pathlib import Path

        base = load_train_config(Path(args.resume) / "config.yaml")
        cfg = compose_train_config(overrides=args.overrides, max_steps=args.max_steps, base=base)
        best = train(args.data, args.resume, cfg, resume=True, progress=not args.no_progress)
    else:
        if not args.data or not args.out:
            raise DualTalkError("dualtalk train needs --data DATA_DIR and --out RUN_DIR (or --resume RUN_DIR)")
        cfg = compose_train_config(
            preset=args.preset, config_file=args.config, overrides=args.overrides, max_steps=args.max_steps
        )
        best = train(args.data, args.out, cfg, progress=not args.no_progress)
    if os.environ.get("RANK", "0") == "0":  # once under torchrun
        print(best)
    return 0
