"""The ``dualtalk`` command: thin subcommands over library functions.

Each module in :data:`SUBCOMMANDS` has ``register(subparsers)``, which adds its parser and sets
``func(args) -> int | None``. Any :class:`~dualtalk.errors.DualTalkError` becomes one ``error:`` line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import DualTalkError

#: subcommand modules, in the order ``dualtalk --help`` lists them
SUBCOMMANDS = [
    "dualtalk.cli.inference",  # generate, predict, convert-official
    "dualtalk.cli.evaluate",  # evaluate
    "dualtalk.cli.train",  # train
    "dualtalk.cli.render",  # render, plot
    "dualtalk.cli.demo",  # demo
    "dualtalk.cli.benchmark",  # benchmark
    "dualtalk.cli.synth",  # synth
    # each area adds its module here
]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="dualtalk",
        description="Two-person conversational 3D talking heads (DualTalk).",
    )
    parser.add_argument("--version", action="version", version=f"dualtalk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except DualTalkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def entry() -> None:  # pragma: no cover
    sys.exit(main())
