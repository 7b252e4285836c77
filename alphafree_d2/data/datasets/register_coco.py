"""COCO-format instance masks as coarse matting labels.

The union of the chosen instances' masks (polygons, compressed or uncompressed RLE, decoded with
pycocotools) is the foreground; the foreground and the background are then eroded separately
(:func:`alphafree_d2.data.trimap.mask_to_trimap`), which leaves an unknown band around the mask
boundary. Kernel sizes are drawn per image from the seed and the image name, so labels are
reproducible. The trimaps are written once, at the first ``DatasetCatalog.get``, as
``<trimap_root>/<stem>.png`` together with ``generation.json``, which records the parameters.
"""

import json
import logging
import os

import numpy as np
import pycocotools.mask as mask_util
from tqdm import tqdm

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...utils.file_io import write_png
from ..trimap import (
    DEFAULT_REFERENCE_SIZE,
    mask_to_trimap,
    record_generation,
    rng_for,
)
from .register_matting import _names

__all__ = [
    "COCO_KERNEL_SIZE_RANGE",
    "coco_annotation_mask",
    "load_coco_matting_json",
    "register_coco_matting_dataset",
]

logger = logging.getLogger(__name__)

# Polygon outlines from labelling tools are a few pixels off and miss hair entirely, so the
# default band is wider than the [1, 30] used for trimaps eroded from exact mattes.
COCO_KERNEL_SIZE_RANGE = (10, 30)


def coco_annotation_mask(segmentation, height, width):
    """Decode one COCO ``segmentation`` (polygon list, RLE dict with list or string counts) into a
    bool array (height, width)."""
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), dtype=bool)
        rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_util.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict):
        rle = segmentation
    else:
        raise ValueError(f"unsupported COCO segmentation of type {type(segmentation).__name__}")
    mask = mask_util.decode(rle).astype(bool)
    if mask.shape != (height, width):
        raise ValueError(f"segmentation of size {mask.shape} in an image of size {(height, width)}")
    return mask


def load_coco_matting_json(
    json_file,
    image_root,
    trimap_root,
    *,
    category_ids=None,
    seed=0,
    kernel_size=None,
    kernel_size_range=COCO_KERNEL_SIZE_RANGE,
    reference_size=DEFAULT_REFERENCE_SIZE,
    skip_unlabeled=False,
    progress=True,
):
    """Records for a COCO json whose instance masks become trimap labels (module docstring).

    Args:
        json_file (str): COCO instances json (``images``, ``annotations``, ``categories``).
        image_root (str): folder that the images' ``file_name`` are relative to.
        trimap_root (str): folder for the generated trimaps (created; existing ones are reused
            when ``generation.json`` matches these parameters, an error otherwise).
        category_ids (list[int] or None): instances of these categories form the foreground;
            None: all. Crowd annotations count like the others.
        seed, kernel_size, kernel_size_range, reference_size: see
            :func:`alphafree_d2.data.trimap.mask_to_trimap`; the unknown band is about
            ``(k_fg + k_bg) / 2`` pixels (at ``reference_size``) wide.
        skip_unlabeled (bool): leave out images without a chosen instance (names logged) instead
            of raising.

    Returns:
        list[dict] with ``file_name``, ``height``, ``width``, ``image_id`` (file stem),
        ``trimap_file_name``.
    """
    with open(json_file, encoding="utf-8") as f:
        coco = json.load(f)
    for key in ("images", "annotations"):
        if key not in coco:
            raise ValueError(f"{json_file}: not a COCO instances file (no {key!r} list)")
    chosen = None if category_ids is None else set(category_ids)
    per_image = {}
    for ann in coco["annotations"]:
        if chosen is not None and ann.get("category_id") not in chosen:
            continue
        if "segmentation" not in ann:
            raise ValueError(
                f"{json_file}: annotation {ann.get('id')} has no 'segmentation' (a mask is needed)"
            )
        per_image.setdefault(ann["image_id"], []).append(ann["segmentation"])

    images, stems, unlabeled = [], {}, []
    for image in sorted(coco["images"], key=lambda im: im["file_name"]):
        stem = os.path.splitext(os.path.basename(image["file_name"]))[0]
        if stem in stems:
            raise ValueError(
                f"{json_file}: images {stems[stem]} and {image['file_name']} share the stem {stem!r}; "
                "trimaps are named after it"
            )
        stems[stem] = image["file_name"]
        if image["id"] in per_image:
            images.append((stem, image))
        else:
            unlabeled.append(stem)
    if unlabeled and not skip_unlabeled:
        raise ValueError(
            f"{json_file}: {len(unlabeled)} of {len(coco['images'])} images have no chosen instance "
            f"(category_ids={category_ids}): {_names(unlabeled)}. "
            "Pass skip_unlabeled=True to leave them out."
        )
    if unlabeled:
        logger.warning(
            f"{json_file}: leaving out {len(unlabeled)} images without a chosen instance: {', '.join(unlabeled)}"
        )
    if not images:
        raise ValueError(
            f"{json_file}: no image has a chosen instance (category_ids={category_ids})"
        )

    params = {
        "mode": "coco",
        "json_file": os.path.abspath(json_file),
        "category_ids": None if chosen is None else sorted(chosen),
        "seed": int(seed),
        "kernel_size": None if kernel_size is None else int(kernel_size),
        "kernel_size_range": [int(v) for v in kernel_size_range],
        "reference_size": None if reference_size is None else int(reference_size),
    }
    record_generation(
        trimap_root, params, remedy="delete that folder or choose another trimap_root"
    )

    records, todo = [], []
    for stem, image in images:
        record = {
            "file_name": os.path.join(image_root, image["file_name"]),
            "height": int(image["height"]),
            "width": int(image["width"]),
            "image_id": stem,
            "trimap_file_name": os.path.join(trimap_root, stem + ".png"),
        }
        records.append(record)
        if not os.path.exists(record["trimap_file_name"]):
            todo.append((record, per_image[image["id"]]))
    for record, segmentations in tqdm(
        todo, desc="COCO trimaps", unit="img", disable=not progress or not todo
    ):
        h, w = record["height"], record["width"]
        try:
            fg = np.zeros((h, w), dtype=bool)
            for segmentation in segmentations:
                fg |= coco_annotation_mask(segmentation, h, w)
        except ValueError as e:
            raise ValueError(f"{json_file}: image {record['file_name']}: {e}") from e
        trimap = mask_to_trimap(
            fg,
            rng=rng_for(seed, record["image_id"]),
            kernel_size=kernel_size,
            kernel_size_range=kernel_size_range,
            reference_size=reference_size,
        )
        write_png(record["trimap_file_name"], trimap)
    return records


def register_coco_matting_dataset(name, json_file, image_root, trimap_root=None, **kwargs):
    """Register a COCO json as a trimap-labelled matting dataset (:func:`load_coco_matting_json`).

    ``trimap_root`` defaults to ``<json folder>/<json stem>_trimaps``; ``kwargs`` go to
    :func:`load_coco_matting_json`. Lazy: nothing is read or written until
    ``DatasetCatalog.get(name)``.
    """
    if trimap_root is None:
        trimap_root = os.path.splitext(json_file)[0] + "_trimaps"
    DatasetCatalog.register(
        name, lambda: load_coco_matting_json(json_file, image_root, trimap_root, **kwargs)
    )
    MetadataCatalog.get(name).set(
        evaluator_type="matting",
        image_root=image_root,
        trimap_root=trimap_root,
        alpha_root=None,
        json_file=json_file,
    )
