"""Data for trimap-supervised matting: readers, trimap generation, datasets, the mapper.

Importing this package registers the built-in datasets (lazily; see ``datasets/builtin.py``).
"""

from . import datasets  # noqa: F401  (registers the built-in datasets)
from .augmentation import (
    CROP_POLICIES,
    RandomScale,
    UnknownCentredCrop,
    build_matting_augmentations,
)
from .build import build_matting_train_loader
from .dataset_mapper import IGNORED_ALPHA, MattingDatasetMapper
from .datasets import (
    ensure_demo_dataset,
    load_coco_matting_json,
    load_matting_folder,
    prepare_coco_matting_trimaps,
    register_all_matting_datasets,
    register_coco_matting_dataset,
    register_matting_dataset,
)
from .io import read_alpha, read_image, read_trimap, snap_trimap
from .preflight import DatasetCheckError, check_training_set
from .trimap import alpha_to_mask, alpha_to_trimap, generate_trimaps, mask_to_trimap, rng_for

__all__ = [
    "MattingDatasetMapper",
    "IGNORED_ALPHA",
    "CROP_POLICIES",
    "RandomScale",
    "UnknownCentredCrop",
    "build_matting_augmentations",
    "build_matting_train_loader",
    "check_training_set",
    "DatasetCheckError",
    "register_matting_dataset",
    "register_coco_matting_dataset",
    "register_all_matting_datasets",
    "load_matting_folder",
    "load_coco_matting_json",
    "prepare_coco_matting_trimaps",
    "ensure_demo_dataset",
    "alpha_to_trimap",
    "alpha_to_mask",
    "mask_to_trimap",
    "generate_trimaps",
    "rng_for",
    "read_image",
    "read_alpha",
    "read_trimap",
    "snap_trimap",
]
