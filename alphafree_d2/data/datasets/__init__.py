"""Matting datasets: folder and COCO-json registration, the procedural demo (``demo_render``
draws it, ``demo`` stores it) and the built-in datasets (``builtin``: registered on import,
lazily)."""

from . import builtin  # noqa: F401  (registers the built-in datasets)
from .builtin import (
    BUILTIN_DATASETS,
    BuiltinMattingDataset,
    DatasetsRootError,
    default_datasets_root,
    register_all_matting_datasets,
)
from .demo import ensure_demo_dataset, generate_demo_dataset
from .demo_render import render_demo_record, render_demo_sample
from .register_coco import (
    coco_annotation_mask,
    load_coco_matting_json,
    prepare_coco_matting_trimaps,
    register_coco_matting_dataset,
)
from .register_matting import load_matting_folder, register_matting_dataset

__all__ = [
    "BUILTIN_DATASETS",
    "BuiltinMattingDataset",
    "DatasetsRootError",
    "default_datasets_root",
    "register_all_matting_datasets",
    "register_matting_dataset",
    "load_matting_folder",
    "register_coco_matting_dataset",
    "load_coco_matting_json",
    "prepare_coco_matting_trimaps",
    "coco_annotation_mask",
    "ensure_demo_dataset",
    "generate_demo_dataset",
    "render_demo_record",
    "render_demo_sample",
]
