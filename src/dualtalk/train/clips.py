"""The index of a split: its conversations as clips (paths and lengths only: nothing is loaded).

Made by :func:`dualtalk.train.data.index_split`; read by the data loader (:mod:`.data`) and by the
feature cache (:mod:`.cache`), which both import it from here, so neither imports the other's module
for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Clip:
    """One conversation of the index (paths and length only: nothing is loaded)."""

    name: str
    audio: tuple[str, str]  # speaker 1, speaker 2
    motion: tuple[str, str]
    frames: int  # usable frames: the shortest of the four files
    sample_rates: tuple[int, int]


@dataclass
class SplitIndex:
    directory: str
    clips: list[Clip]

    @property
    def frames(self) -> np.ndarray:
        return np.array([c.frames for c in self.clips], dtype=np.int64)  # (N,)


__all__ = ["Clip", "SplitIndex"]
