"""Inference and deployment: alpha mattes for images of any size on CPU or GPU, per-photo
refinement of trimap-guided models, cutouts and composites, TorchScript/ONNX export.

The export names (:mod:`.export`) load on first use (PEP 562 ``__getattr__``): ``import
alphafree_d2`` neither imports the export modules nor checks detectron2's private ViT helpers
that the export replaces (:mod:`.vit_shapes` checks them when an export runs).
"""

from .batch import (
    MattingJob,
    Problem,
    assign_trimaps,
    check_outputs_apart,
    collect_inputs,
    load_background,
    plan_jobs,
    read_input_trimap,
    run_jobs,
)
from .foreground import composite, estimate_foreground, make_cutout, parse_color
from .highres import HighResolutionPolicy, decode_tiled, predict_alpha_highres
from .predictor import (
    MattingPredictor,
    NonFiniteAlphaError,
    build_inference_model,
    load_inference_weights,
)
from .refine import RefinementPolicy, refine_and_predict, refine_model

# Names of .export, imported when one is first looked up.
_EXPORT_NAMES = (
    "MattingExportModule",
    "export_torchscript",
    "export_onnx",
    "compare_torchscript",
    "compare_onnx",
)

__all__ = [
    "MattingPredictor",
    "NonFiniteAlphaError",
    "assign_trimaps",
    "check_outputs_apart",
    "load_background",
    "read_input_trimap",
    "HighResolutionPolicy",
    "predict_alpha_highres",
    "decode_tiled",
    "build_inference_model",
    "load_inference_weights",
    "RefinementPolicy",
    "refine_model",
    "refine_and_predict",
    "estimate_foreground",
    "make_cutout",
    "composite",
    "parse_color",
    "collect_inputs",
    "plan_jobs",
    "run_jobs",
    "MattingJob",
    "Problem",
    *_EXPORT_NAMES,
]


def __getattr__(name):
    if name in _EXPORT_NAMES:
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_EXPORT_NAMES})
