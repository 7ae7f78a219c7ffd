"""Training: ``dualtalk train`` and :func:`train`.

    from dualtalk.train import train, make_train_config
    best = train("DATA", "runs/exp1", make_train_config(preset="small", max_steps=2000))
    # best == runs/exp1/best, a model directory: dualtalk generate --model runs/exp1/best ...

Modules: ``data`` (index, windows, lazy loading), ``loss`` (the released objective with masks), ``cache``
(frozen-encoder feature cache), ``runs`` (run directory, checkpoints, metrics), ``engine`` (the loop,
single process or torchrun/DDP), ``configure`` (config building), ``toy`` (a tiny generated corpus).
"""

from __future__ import annotations

from .configure import make_train_config, resolve_model_config
from .engine import TrainingInterrupted, train

__all__ = ["TrainingInterrupted", "make_train_config", "resolve_model_config", "train"]
