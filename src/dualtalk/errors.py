"""One exception type for every problem a user can cause.

The CLI prints ``error: <message>`` (one line) and exits with status 2 for a :class:`DualTalkError`;
library callers catch it like any other exception. Messages name the file and what is wrong.
"""

from __future__ import annotations

import os


class DualTalkError(Exception):
    """A user-facing error: bad input file, bad option, missing optional dependency."""


class InputError(DualTalkError):
    """A file given by the user is missing, unreadable or malformed."""

    def __init__(self, path: str | os.PathLike | None, what: str):
        self.path = None if path is None else os.fspath(path)
        self.what = what
        super().__init__(what if path is None else f"{self.path}: {what}")


def require(module: str, extra: str):
    """Import an optional dependency or raise a clear error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DualTalkError(
            f"this feature needs the '{module}' package: pip install 'dualtalk[{extra}]' ({exc})"
        ) from None
