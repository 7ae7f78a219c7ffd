"""Rendering and plotting of motion: two-head videos with audio, and motion curves.

``render_video`` and ``plot_motion`` are the entry points (the ``dualtalk render`` / ``dualtalk plot``
commands wrap them). Rendering reads motion files only: it never imports the model or torch.
"""

from __future__ import annotations

from .plot import plot_motion
from .video import render_video, smooth_motion

__all__ = ["render_video", "plot_motion", "smooth_motion"]
