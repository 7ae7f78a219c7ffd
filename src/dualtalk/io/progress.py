"""Progress bars that behave in log files: a tqdm bar on a terminal, a few plain lines otherwise.

    from dualtalk.io.progress import progress
    for conv in progress(convs, desc="indexing", unit="conv"):
        ...
    bar = progress(total=n, desc="render", unit="frame")   # or driven by hand
    bar.update(); bar.set_postfix({"loss": "0.12"}); bar.close()

On a terminal (the stream's ``isatty()``) this is tqdm. Anywhere else (a file, a pipe, a CI log) a
redrawn bar would write a carriage return per update; instead a plain line ``desc: 40/100 (40%) 12s`` is
printed each time another tenth of the total is done, or after :data:`PLAIN_INTERVAL` seconds without a
line (so a slow loop, or one of unknown length, still shows it is alive), and a last line when the loop
ends early. No ``\\r``, no escape codes. ``enabled=False`` prints nothing at all.

Messages that must not tear a bar (``tqdm.write``) go through :func:`write`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

#: on a non-terminal stream, the longest time between two plain lines while the loop runs (seconds)
PLAIN_INTERVAL = 60.0
#: on a non-terminal stream, a plain line each time another 1 / PLAIN_STEPS of the total is done
PLAIN_STEPS = 10


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class Progress:
    """A bar over ``iterable`` and/or a count driven by :meth:`update` (see :func:`progress`)."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        desc: str = "",
        total: int | None = None,
        unit: str = "it",
        enabled: bool = True,
        leave: bool = True,
        initial: int = 0,
        stream: IO[str] | None = None,
        **tqdm_kwargs: Any,
    ):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable = iterable
        self.desc = desc
        self.total = total
        self.unit = unit
        self.n = initial
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.postfix = ""
        self._bar = None
        self._closed = False
        if enabled and _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(
                iterable,
                desc=desc,
                total=total,
                unit=unit,
                leave=leave,
                initial=initial,
                file=self.stream,
                **tqdm_kwargs,
            )
        self._start = self._last_time = time.monotonic()
        self._last_n = initial
        self._next_step = self._step_of(initial) + 1

    # --- plain lines ---------------------------------------------------------------------------------

    def _step_of(self, n: int) -> int:
        return n * PLAIN_STEPS // self.total if self.total else 0

    def _line(self) -> None:
        count = f"{self.n}/{self.total} ({100 * self.n // self.total}%)" if self.total else f"{self.n} {self.unit}"
        elapsed = time.monotonic() - self._start
        text = f"{self.desc}: {count} {elapsed:.0f}s" + (f" {self.postfix}" if self.postfix else "")
        print(text.lstrip(": "), file=self.stream, flush=True)
        self._last_time, self._last_n = time.monotonic(), self.n

    def _maybe_line(self) -> None:
        step = self._step_of(self.n)
        if self.total and step >= self._next_step:
            self._next_step = step + 1
            self._line()
        elif time.monotonic() - self._last_time >= PLAIN_INTERVAL:
            self._line()

    # --- the tqdm-like interface ---------------------------------------------------------------------

    def __iter__(self) -> Iterator:
        if self._bar is not None:
            yield from self._bar
            return
        try:
            for item in self.iterable if self.iterable is not None else ():
                yield item
                self.update()
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)
            return
        self.n += n
        if self.enabled and not self._closed:
            self._maybe_line()

    def set_postfix(self, values: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """``key=value`` pairs shown after the count (as tqdm's ``set_postfix``)."""
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=refresh, **kwargs)
            return
        self.postfix = " ".join(f"{k}={v}" for k, v in {**(values or {}), **kwargs}.items())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.n != self._last_n:  # the end, unless the last line already said it
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(
    iterable: Iterable | None = None,
    desc: str = "",
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
    leave: bool = True,
    initial: int = 0,
    stream: IO[str] | None = None,
    **tqdm_kwargs: Any,
) -> Progress:
    """A progress bar over ``iterable`` (or over ``total`` steps counted with ``.update()``) on ``stream``
    (default: ``sys.stderr`` at call time): tqdm on a terminal, occasional plain lines elsewhere, nothing when
    ``enabled`` is False. Extra keyword arguments (``delay``, ``dynamic_ncols``, ...) go to tqdm."""
    return Progress(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        enabled=enabled,
        leave=leave,
        initial=initial,
        stream=stream,
        **tqdm_kwargs,
    )


def write(message: str, stream: IO[str] | None = None) -> None:
    """Print a line without tearing a bar that is on the screen (``tqdm.write`` on a terminal)."""
    stream = stream if stream is not None else sys.stderr
    if _is_terminal(stream):
        from tqdm import tqdm

        tqdm.write(message, file=stream)
    else:
        print(message, file=stream, flush=True)


__all__ = ["PLAIN_INTERVAL", "PLAIN_STEPS", "Progress", "progress", "write"]
