"""Matting evaluation: benchmark metrics, the detectron2 evaluator and visual reports."""

from .matting_evaluation import MattingEvaluator, as_8bit_codes
from .metrics import METRIC_KEYS, PROTOCOLS, matting_metrics
from .visualization import log_matting_visuals, make_matting_grid

__all__ = [
    "MattingEvaluator",
    "METRIC_KEYS",
    "PROTOCOLS",
    "as_8bit_codes",
    "matting_metrics",
    "log_matting_visuals",
    "make_matting_grid",
]
