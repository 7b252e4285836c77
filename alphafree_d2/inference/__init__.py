"""Inference and deployment: alpha mattes for images of any size on CPU or GPU, per-photo
refinement of trimap-guided models, cutouts and composites, TorchScript/ONNX export."""

from .batch import MattingJob, Problem, collect_inputs, plan_jobs, run_jobs
from .export import (
    MattingExportModule,
    compare_onnx,
    compare_torchscript,
    export_onnx,
    export_torchscript,
)
from .foreground import composite, estimate_foreground, make_cutout, parse_color
from .highres import HighResolutionPolicy, decode_tiled, predict_alpha_highres
from .predictor import (
    MattingPredictor,
    build_inference_model,
    load_inference_weights,
)
from .refine import RefinementPolicy, refine_and_predict, refine_model

__all__ = [
    "MattingPredictor",
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
    "MattingExportModule",
    "export_torchscript",
    "export_onnx",
    "compare_torchscript",
    "compare_onnx",
]
