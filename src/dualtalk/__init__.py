"""dualtalk: two-person conversational 3D talking heads (DualTalk, CVPR 2025).

The public API mirrors the ``dualtalk`` command. Heavy modules (torch, transformers) load on first use,
so ``import dualtalk`` stays cheap for tools that only read or render motion files.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "DualTalkConfig": "dualtalk.config",
    "Motion": "dualtalk.io.motion",
    "load_motion": "dualtalk.io.motion",
    "save_motion": "dualtalk.io.motion",
    "load_audio": "dualtalk.io.audio",
    "DualTalkError": "dualtalk.errors",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dualtalk' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
