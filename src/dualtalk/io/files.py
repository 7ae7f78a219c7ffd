"""Atomic file writes: a reader never sees a half-written output file.

Everything the project writes for a user goes through :func:`atomic_path`: the data are written to a
temporary file in the destination directory and renamed over the destination only when complete. A path that
cannot be written is an :class:`~dualtalk.errors.InputError` naming it; :func:`check_output_file` and
:func:`check_output_dir` find that out before any work is done (the CLI checks every output option with them).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError

#: errors of writing that are the destination's whatever file they name (full, read-only, failing); others (a
#: refused permission, say) are the destination's only when they name it or its temporary file
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


#: the files of the enclosing :func:`atomic_group` (temporary path, destination, name to show), if any
_GROUP: contextvars.ContextVar[list[tuple[str, Path, str | os.PathLike]] | None] = contextvars.ContextVar(
    "dualtalk_atomic_group", default=None
)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _regular_destination(path: Path) -> Path:
    """``path`` as the file to replace: a symbolic link's target (the link stays a link), refused where it is a
    directory or not a regular file (a device, pipe or socket: renaming over it would replace it)."""
    if path.is_dir():
        raise InputError(path, "is a directory, expected an output file")
    if path.exists() and not path.is_file():
        raise InputError(path, "is not a regular file (a device, pipe or socket); give a file path")
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _writable_ancestor(path: Path, shown: str | os.PathLike) -> None:
    """Fail unless the nearest existing directory above ``path`` takes a new file (tried, and removed: the
    permission bits do not tell, e.g. for root or in /proc)."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(shown, f"cannot be created: {ancestor} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".dualtalk-write-test-", dir=ancestor)
    except OSError as exc:
        raise InputError(shown, f"cannot be written: {ancestor} does not take new files ({_reason(exc)})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` if a file can be written there, else an :class:`InputError` naming it (a directory, a device,
    a parent that is a file, a directory that takes no files). Creates nothing."""
    dest = _regular_destination(Path(path))
    _writable_ancestor(dest, path)
    return Path(path)


def check_output_dir(path: str | os.PathLike) -> Path:
    """``path`` if it is a directory or one can be created there, else an :class:`InputError` naming it.
    Creates nothing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(path, "exists and is not a directory, expected an output directory")
    if not p.exists():
        _writable_ancestor(p, path)
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    ``suffix`` (default: ``path``'s own) keeps libraries that look at the extension happy. A symbolic link is
    written through (its target is replaced); a directory, a device and a destination that cannot be written
    raise an :class:`InputError` naming ``path``.
    """
    shown = path
    path = _regular_destination(Path(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.tmp-", suffix=path.suffix if suffix is None else suffix, dir=path.parent
        )
    except OSError as exc:
        raise InputError(shown, f"cannot be written ({_reason(exc)})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the usual permissions
        group = _GROUP.get()
        if group is not None:  # inside atomic_group: renamed with the others when the group succeeds
            group.append((tmp, path, shown))
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and (exc.errno in _WRITE_ERRNOS or exc.filename in (tmp, str(path))):
            raise InputError(shown, f"cannot be written ({_reason(exc)})") from None
        raise


@contextlib.contextmanager
def atomic_group() -> Iterator[None]:
    """Files written together (one person's motion and the other's, a glTF file and its audio, a motion and
    its stats): every :func:`atomic_path` inside the block is renamed into place only when the whole block
    succeeds, and all are deleted when it fails, so a failed command leaves none of them."""
    pending: list[tuple[str, Path, str | os.PathLike]] = []
    token = _GROUP.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    finally:
        _GROUP.reset(token)
    for i, (tmp, path, shown) in enumerate(pending):
        try:
            os.replace(tmp, path)
        except OSError as exc:
            for rest, _, _ in pending[i:]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(rest)
            raise InputError(shown, f"cannot be written ({_reason(exc)})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
