"""Training: ``dualtalk train`` and :func:`train`.

    from dualtalk.train import train, compose_train_config
    best = train("DATA", "runs/exp1", compose_train_config(preset="small", max_steps=2000))
    # best == runs/exp1/best, a model directory: dualtalk generate --model runs/exp1/best ...

Modules: ``data`` (index, windows, lazy loading), ``clips`` (the index's records), ``loss`` (the released
objective with masks), ``cache`` (frozen-encoder feature cache), ``runs`` (run directory, checkpoints,
metrics), ``engine`` (the :class:`Trainer`, stage by stage, single process or torchrun/DDP), ``configure``
(the one function that composes a training config), ``toy`` (a tiny generated corpus).
"""

from __future__ import annotations

from .configure import compose_train_config, resolve_model_config
from .engine import Trainer, TrainingInterrupted, TrainState, train

__all__ = ["TrainState", "Trainer", "TrainingInterrupted", "compose_train_config", "resolve_model_config", "train"]
