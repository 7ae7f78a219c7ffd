"""Evaluation: the paper's metrics, identical to the reference numbers, plus roles, turns and mesh metrics.

``evaluate(pred_dir, gt_dir, protocol="reference" | "pooled", flame=None, flame_masks=None, ...)`` returns
the JSON structure that ``dualtalk evaluate`` writes; :mod:`.metrics` holds the metric formulas as pure
functions over arrays, :mod:`.mesh` LVE / FDD over vertices.
"""

from .core import POOLED_METRICS, PROTOCOLS, REFERENCE_METRICS, evaluate, format_table
from .data import GROUPS

__all__ = ["GROUPS", "POOLED_METRICS", "PROTOCOLS", "REFERENCE_METRICS", "evaluate", "format_table"]
