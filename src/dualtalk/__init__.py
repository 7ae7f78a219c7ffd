"""dualtalk: two-person conversational 3D talking heads (DualTalk, CVPR 2025).

The public API mirrors the ``dualtalk`` command. Heavy modules (torch, transformers) load on first use,
so ``import dualtalk`` stays cheap for tools that only read or render motion files.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # the commands, as functions
    "load_model": "dualtalk.model.checkpoint",  # dualtalk generate --model ...
    "save_model": "dualtalk.model.checkpoint",
    "convert_official": "dualtalk.model.checkpoint",  # dualtalk convert-official
    "generate": "dualtalk.inference.pipeline",  # dualtalk generate
    "predict": "dualtalk.inference.pipeline",  # dualtalk predict
    "InferenceOptions": "dualtalk.inference.pipeline",
    "evaluate": "dualtalk.eval",  # dualtalk evaluate
    "train_model": ("dualtalk.train", "train"),  # dualtalk train (``dualtalk.train`` is the subpackage)
    "compose_train_config": "dualtalk.train",
    "render_video": "dualtalk.render",  # dualtalk render
    "plot_motion": "dualtalk.render",  # dualtalk plot
    "make_corpus": "dualtalk.synth",  # dualtalk synth
    "make_conversation": "dualtalk.synth",
    "run_benchmark": "dualtalk.benchmark",  # dualtalk benchmark
    "run_demo": "dualtalk.demo",  # dualtalk demo
    "get_preset": "dualtalk.model.presets",
    "DualTalk": "dualtalk.model.dualtalk",
    # data types
    "DualTalkConfig": "dualtalk.config",
    "Motion": "dualtalk.io.motion",
    "ArkitMotion": "dualtalk.io.motion",
    "load_motion": "dualtalk.io.motion",
    "load_any_motion": "dualtalk.io.motion",
    "save_motion": "dualtalk.io.motion",
    "load_audio": "dualtalk.io.audio",
    "DualTalkError": "dualtalk.errors",
}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'dualtalk' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    return getattr(importlib.import_module(module), attr)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
