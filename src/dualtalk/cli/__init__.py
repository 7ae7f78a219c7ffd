"""The ``dualtalk`` command: thin subcommands over library functions.

Each module in :data:`SUBCOMMANDS` has ``register(subparsers)``, which adds its parser and sets
``func(args) -> int | None``. Any :class:`~dualtalk.errors.DualTalkError` becomes one ``error:`` line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from ..errors import DualTalkError

#: subcommand modules, in the order ``dualtalk --help`` lists them
SUBCOMMANDS = [
    "dualtalk.cli.inference",  # generate, predict, convert-official
    "dualtalk.cli.stream",  # stream
    "dualtalk.cli.serve",  # serve
    "dualtalk.cli.evaluate",  # evaluate
    "dualtalk.cli.train",  # train
    "dualtalk.cli.render",  # render, plot
    "dualtalk.cli.demo",  # demo
    "dualtalk.cli.benchmark",  # benchmark
    "dualtalk.cli.synth",  # synth
    "dualtalk.cli.export",  # export, fit-arkit-map
    # each area adds its module here
]


class Parser(argparse.ArgumentParser):
    """argparse with one ``error:`` line (naming the command) instead of a usage block, exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def positive(kind: type, allow_zero: bool = False, maximum: float | None = None):
    """An argparse ``type`` accepting numbers of ``kind`` that are > 0 (or >= 0), and at most ``maximum``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value < 0 or (value == 0 and not allow_zero) or value != value:
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if allow_zero else '> 0'}, got {text}")
        if value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _checked(check, text: str) -> str:
    """``text`` if ``check(text)`` passes; its :class:`~dualtalk.errors.InputError` as argparse's error."""
    from ..errors import InputError

    try:
        check(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def output_file(text: str) -> str:
    """An argparse ``type`` for an option naming a file to write: checked before any work is done
    (:func:`~dualtalk.io.files.check_output_file`), so a run never computes for an hour and then fails."""
    from ..io.files import check_output_file

    return _checked(check_output_file, text)


def motion_output(text: str) -> str:
    """:func:`output_file` for a motion file: ``.npz`` or ``.npy`` (what the readers take)."""
    from ..io.motion import check_motion_suffix

    return _checked(check_motion_suffix, output_file(text))


def output_dir(text: str) -> str:
    """An argparse ``type`` for an option naming a directory to write into
    (:func:`~dualtalk.io.files.check_output_dir`)."""
    from ..io.files import check_output_dir

    return _checked(check_output_dir, text)


def distinct_outputs(args: argparse.Namespace, *names: str) -> None:
    """Refuse two output options that name the same file (one would silently overwrite the other)."""
    import os

    paths = [(n, getattr(args, n.lstrip("-").replace("-", "_"), None)) for n in names]
    given = [(n, os.path.realpath(v)) for n, v in paths if v]
    for i, (a, pa) in enumerate(given):
        for b, pb in given[i + 1 :]:
            if pa == pb:
                raise DualTalkError(f"{a} and {b} name the same file ({pa}): give each its own")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(
        prog="dualtalk",
        description="Two-person conversational 3D talking heads (DualTalk).",
    )
    parser.add_argument("--version", action="version", version=f"dualtalk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args``, but ``key=value`` overrides (``train``, ``benchmark``) may also stand after options
    (``... optim.lr=1e-3 --max-steps 2 data.num_workers=0``: argparse takes one run of positionals only), and
    what is left over is an error naming the command that refused it."""
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    overrides = getattr(args, "overrides", None)
    if isinstance(overrides, list):
        stray = [a for a in extra if not ("=" in a and not a.startswith("-"))]
        if not stray:
            args.overrides = overrides + extra
            return args
        extra = stray
    command = f"{parser.prog} {args.command}" if getattr(args, "command", None) else parser.prog
    print(f"error: {command}: unrecognized arguments: {' '.join(extra)} (see {command} --help)", file=sys.stderr)
    raise SystemExit(2)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a service manager) in the ``dualtalk`` command: handled as Ctrl-C is (outputs
    not yet complete are removed, workers stopped), reported as ``error: terminated``, exit status 143."""


#: the process that installed :func:`_terminate` (a process forked from it inherits the handler)
_TERMINATE_OWNER: list[int] = []


def _stop_forked_child(signum: int) -> None:
    """In a process forked from the command's before it set its own handlers (a pool's worker starting), the
    command's handlers are inherited: such a process ends at once, as it would by default, without a traceback."""
    import os

    if _TERMINATE_OWNER and os.getpid() != _TERMINATE_OWNER[-1]:
        os._exit(128 + signum)


def _terminate(signum, frame) -> NoReturn:
    _stop_forked_child(signum)
    raise Terminated


def _interrupt(signum, frame) -> NoReturn:
    """Ctrl-C: KeyboardInterrupt in the command's process (the terminal sends it to the workers too)."""
    _stop_forked_child(signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The ``dualtalk`` command: 0 done, 2 an error (one line), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."""
    import os
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        _TERMINATE_OWNER.append(os.getpid())

    def install(signum, handler):  # a signal the caller ignores (nohup, a background job) stays ignored
        if not main_thread or signal.getsignal(signum) is signal.SIG_IGN:
            return None
        return signal.signal(signum, handler)

    previous = install(signal.SIGTERM, _terminate)  # train and serve set their own while they run
    previous_int = install(signal.SIGINT, _interrupt)
    try:
        parser = build_parser()  # imports every command's module: an interrupt may come in the middle
        try:
            args = parse_args(parser, argv)
        except SystemExit as exc:  # --help / --version (0) or a bad option (2, its one error line printed)
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        code = args.func(args)
    except DualTalkError as exc:
        if not getattr(exc, "quiet", False):  # (another process, e.g. torchrun's rank 0, printed it)
            print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("error: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            for signum, handler in ((signal.SIGTERM, previous), (signal.SIGINT, previous_int)):
                if handler is not None:
                    signal.signal(signum, handler)
            _TERMINATE_OWNER.pop()
    return int(code or 0)


def entry() -> None:  # pragma: no cover
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before main's handler (the imports of this module) or after it returned
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
