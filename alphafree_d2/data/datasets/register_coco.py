"""COCO-format instance masks as coarse matting labels.

The union of the chosen instances' masks (polygons, compressed or uncompressed RLE, decoded with
pycocotools) is the foreground; the foreground and the background are then eroded separately
(:func:`alphafree_d2.data.trimap.mask_to_trimap`), which leaves an unknown band around the mask
boundary. Kernel sizes are drawn per image from the seed and the image name, so labels are
reproducible.

Generating the labels is an explicit, one-time prepare step,
:func:`prepare_coco_matting_trimaps` (command line: ``datasets/prepare_coco_matting.py``), which
writes ``<trimap_root>/<stem>.png`` and ``generation.json`` (the parameters), each atomically.
Loading the dataset (:func:`load_coco_matting_json`, run by ``DatasetCatalog.get`` in every
process) only reads: it checks that ``generation.json`` records the same parameters and that every
trimap exists, and otherwise raises with the prepare command to run.
"""

import json
import logging
import os
import shlex

import numpy as np
import pycocotools.mask as mask_util
from tqdm import tqdm

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...utils.file_io import atomic_write, write_png
from ..trimap import (
    DEFAULT_REFERENCE_SIZE,
    GENERATION_FILE,
    mask_to_trimap,
    rng_for,
)
from .register_matting import _names

__all__ = [
    "COCO_KERNEL_SIZE_RANGE",
    "coco_annotation_mask",
    "default_coco_trimap_root",
    "load_coco_matting_json",
    "prepare_coco_matting_trimaps",
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


def default_coco_trimap_root(json_file):
    """``<json folder>/<json stem>_trimaps``: where the trimaps of ``json_file`` go by default."""
    return os.path.splitext(json_file)[0] + "_trimaps"


def _read_coco(json_file, category_ids, skip_unlabeled):
    """[(stem, image dict, [segmentation, ...])] of the images with a chosen instance, sorted by
    file name (checks: COCO keys, unique stems, masks present, unlabeled images)."""
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
            images.append((stem, image, per_image[image["id"]]))
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
    return images


def _generation_params(
    json_file, category_ids, seed, kernel_size, kernel_size_range, reference_size
):
    return {
        "mode": "coco",
        "json_file": os.path.abspath(json_file),
        "category_ids": None if category_ids is None else sorted(set(category_ids)),
        "seed": int(seed),
        "kernel_size": None if kernel_size is None else int(kernel_size),
        "kernel_size_range": [int(v) for v in kernel_size_range],
        "reference_size": None if reference_size is None else int(reference_size),
    }


def _recorded_params(trimap_root):
    path = os.path.join(trimap_root, GENERATION_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _prepare_command(json_file, trimap_root, params):
    """The datasets/prepare_coco_matting.py command line that writes labels with ``params``."""
    args = ["python", "datasets/prepare_coco_matting.py", json_file, "--trimap-root", trimap_root]
    if params["category_ids"] is not None:
        args += ["--category-ids", *map(str, params["category_ids"])]
    args += ["--seed", str(params["seed"])]
    if params["kernel_size"] is not None:
        args += ["--kernel-size", str(params["kernel_size"])]
    else:
        args += ["--kernel-size-range", *map(str, params["kernel_size_range"])]
    args += ["--reference-size", str(params["reference_size"] or 0)]
    return " ".join(shlex.quote(a) for a in args)


def prepare_coco_matting_trimaps(
    json_file,
    trimap_root=None,
    *,
    category_ids=None,
    seed=0,
    kernel_size=None,
    kernel_size_range=COCO_KERNEL_SIZE_RANGE,
    reference_size=DEFAULT_REFERENCE_SIZE,
    skip_unlabeled=False,
    overwrite=False,
    progress=True,
):
    """Write the trimap labels of a COCO json (module docstring): the one-time prepare step that
    :func:`load_coco_matting_json` expects. Run it once, in one process.

    Args: as :func:`load_coco_matting_json`, plus
        trimap_root (str or None): default :func:`default_coco_trimap_root`.
        overwrite (bool): regenerate every trimap, also when ``generation.json`` records other
            parameters (otherwise existing trimaps are kept, and a folder made with other
            parameters is refused).

    Returns:
        dict with ``trimap_root``, ``total``, ``written`` and ``kept``.
    """
    trimap_root = default_coco_trimap_root(json_file) if trimap_root is None else trimap_root
    images = _read_coco(json_file, category_ids, skip_unlabeled)
    params = _generation_params(
        json_file, category_ids, seed, kernel_size, kernel_size_range, reference_size
    )
    previous = _recorded_params(trimap_root)
    if previous is not None and previous != params and not overwrite:
        raise ValueError(
            f"{trimap_root} holds labels generated with {previous}, not {params}: pass "
            "overwrite=True (--overwrite), delete that folder or choose another trimap_root"
        )
    os.makedirs(trimap_root, exist_ok=True)
    with atomic_write(os.path.join(trimap_root, GENERATION_FILE), "w") as f:
        json.dump(params, f, indent=1)

    todo = []
    for stem, image, segmentations in images:
        path = os.path.join(trimap_root, stem + ".png")
        if overwrite or not os.path.exists(path):
            todo.append((stem, image, segmentations, path))
    for stem, image, segmentations, path in tqdm(
        todo, desc="COCO trimaps", unit="img", disable=not progress or not todo
    ):
        h, w = int(image["height"]), int(image["width"])
        try:
            fg = np.zeros((h, w), dtype=bool)
            for segmentation in segmentations:
                fg |= coco_annotation_mask(segmentation, h, w)
        except ValueError as e:
            raise ValueError(f"{json_file}: image {image['file_name']}: {e}") from e
        trimap = mask_to_trimap(
            fg,
            rng=rng_for(seed, stem),
            kernel_size=kernel_size,
            kernel_size_range=kernel_size_range,
            reference_size=reference_size,
        )
        write_png(path, trimap)  # atomic
    return {
        "trimap_root": trimap_root,
        "total": len(images),
        "written": len(todo),
        "kept": len(images) - len(todo),
    }


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
):
    """Records for a COCO json whose instance masks became trimap labels (module docstring).

    Reads only: the trimaps must have been written by :func:`prepare_coco_matting_trimaps`
    (``datasets/prepare_coco_matting.py``) with the same parameters; otherwise this raises
    with the command to run.

    Args:
        json_file (str): COCO instances json (``images``, ``annotations``, ``categories``).
        image_root (str): folder that the images' ``file_name`` are relative to.
        trimap_root (str): folder of the prepared trimaps.
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
    images = _read_coco(json_file, category_ids, skip_unlabeled)
    params = _generation_params(
        json_file, category_ids, seed, kernel_size, kernel_size_range, reference_size
    )
    command = _prepare_command(json_file, trimap_root, params) + (
        " --skip-unlabeled" if skip_unlabeled else ""
    )
    previous = _recorded_params(trimap_root)
    if previous is None:
        raise FileNotFoundError(
            f"{os.path.join(trimap_root, GENERATION_FILE)}: no such file; the trimap labels of "
            f"{json_file} are generated once, before training, with:\n  {command}"
        )
    if previous != params:
        raise ValueError(
            f"{trimap_root} holds labels generated with {previous}, not {params}: delete that "
            "folder or choose another trimap_root, then generate the labels with:\n"
            f"  {command}"
        )
    records, missing = [], []
    for stem, image, _ in images:
        record = {
            "file_name": os.path.join(image_root, image["file_name"]),
            "height": int(image["height"]),
            "width": int(image["width"]),
            "image_id": stem,
            "trimap_file_name": os.path.join(trimap_root, stem + ".png"),
        }
        if not os.path.isfile(record["trimap_file_name"]):
            missing.append(stem)
        records.append(record)
    if missing:
        raise FileNotFoundError(
            f"{trimap_root}: {len(missing)} of {len(records)} trimaps are missing "
            f"({_names(missing)}); an interrupted preparation? Complete it with:\n  {command}"
        )
    return records


def register_coco_matting_dataset(name, json_file, image_root, trimap_root=None, **kwargs):
    """Register a COCO json as a trimap-labelled matting dataset (:func:`load_coco_matting_json`).

    ``trimap_root`` defaults to :func:`default_coco_trimap_root` (``<json folder>/<json
    stem>_trimaps``); ``kwargs`` go to :func:`load_coco_matting_json`. Lazy, and read-only:
    nothing is read until ``DatasetCatalog.get(name)``, and the trimaps are written beforehand by
    ``datasets/prepare_coco_matting.py`` (:func:`prepare_coco_matting_trimaps`) with the same
    parameters.
    """
    if trimap_root is None:
        trimap_root = default_coco_trimap_root(json_file)
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
