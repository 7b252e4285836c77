"""Matting datasets stored as folders of images and labels matched by file stem."""

import logging

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..io import IMAGE_EXTENSIONS, check_image_pixels, check_trimap_encoding
from ..trimap import list_images

__all__ = ["load_matting_folder", "register_matting_dataset"]

logger = logging.getLogger(__name__)

_MAX_LISTED = 20


def _names(names):
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def image_size(path):
    """(height, width) of an image file from its header, without decoding it; refused above
    the pixel cap (:func:`alphafree_d2.data.io.check_image_pixels`)."""
    return check_image_pixels(path)


def load_matting_folder(
    image_root, trimap_root=None, alpha_root=None, *, skip_unlabeled=False, trimap_encoding="gray"
):
    """Records for the images of ``image_root`` and their labels, matched by file stem.

    Args:
        image_root (str): folder of images (any of ``io.IMAGE_EXTENSIONS``).
        trimap_root (str or None): folder of trimap labels (training sets), evaluation trimaps
            (validation sets) or 0/255 mask labels; None for unlabeled data (inference only).
        alpha_root (str or None): folder of ground-truth alpha mattes, if any.
        skip_unlabeled (bool): leave out images that miss a label (their names are logged as a
            warning) instead of raising.
        trimap_encoding (str): how the trimap files encode their classes (see
            :func:`alphafree_d2.data.io.read_trimap`): "gray" (0/128/255 trimaps, 0/255 masks)
            or "labels012" (0 background, 1 unknown, 2 foreground). Files that do not match are
            refused when they are read, naming the file and the values found.

    Returns:
        list[dict]: sorted by ``image_id``; keys ``file_name``, ``height``, ``width``, ``image_id``
        (file stem), plus ``trimap_file_name`` / ``alpha_file_name`` for the roots given, and
        ``trimap_encoding`` when it is not "gray".

    Raises:
        FileNotFoundError: for a missing folder or labels; ValueError naming an image whose
            header cannot be read, :class:`~alphafree_d2.data.io.ImageTooLargeError` for one
            above the pixel cap.
    """
    check_trimap_encoding(trimap_encoding)
    images = list_images(image_root)
    if not images:
        raise FileNotFoundError(
            f"{image_root}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder"
        )
    roots = {"trimap_file_name": trimap_root, "alpha_file_name": alpha_root}
    labels = {key: list_images(root) for key, root in roots.items() if root is not None}
    unlabeled = set()
    for key, found in labels.items():
        root = roots[key]
        missing = [name for name in images if name not in found]
        orphans = [name for name in found if name not in images]
        if orphans:
            logger.warning(
                f"{root}: {len(orphans)} labels have no image in {image_root}: {_names(orphans)}"
            )
        if missing and not skip_unlabeled:
            raise FileNotFoundError(
                f"{len(missing)} of {len(images)} images in {image_root} have no label in {root} "
                f"(labels are matched by file stem): {_names(missing)}. "
                "Add the labels, or pass skip_unlabeled=True to leave these images out."
            )
        unlabeled.update(missing)
    if unlabeled:
        logger.warning(
            f"{image_root}: leaving out {len(unlabeled)} images without a label: {', '.join(sorted(unlabeled))}"
        )

    records = []
    for name, path in images.items():
        if name in unlabeled:
            continue
        height, width = image_size(path)
        record = {"file_name": path, "height": height, "width": width, "image_id": name}
        for key, found in labels.items():
            record[key] = found[name]
        if trimap_root is not None and trimap_encoding != "gray":
            record["trimap_encoding"] = trimap_encoding
        records.append(record)
    if not records:
        raise FileNotFoundError(f"{image_root}: every image lacks a label")
    return records


def register_matting_dataset(
    name,
    image_root,
    trimap_root=None,
    alpha_root=None,
    *,
    skip_unlabeled=False,
    trimap_encoding="gray",
    **metadata,
):
    """Register a folder dataset (see :func:`load_matting_folder`) under ``name``; lazy: the
    folders are read at the first ``DatasetCatalog.get(name)``.

    Metadata: ``evaluator_type="matting"``, ``image_root``, ``trimap_root``, ``alpha_root``,
    ``trimap_encoding``, plus ``metadata``.

    Example::

        register_matting_dataset("my_train", "data/images", trimap_root="data/trimaps")
        register_matting_dataset("my_val", "data/val/images", "data/val/trimaps", "data/val/alphas")
        # trimaps stored as label maps 0 (background) / 1 (unknown) / 2 (foreground):
        register_matting_dataset("my_labels", "data/images", "data/labels",
                                 trimap_encoding="labels012")
    """
    check_trimap_encoding(trimap_encoding)
    DatasetCatalog.register(
        name,
        lambda: load_matting_folder(
            image_root,
            trimap_root,
            alpha_root,
            skip_unlabeled=skip_unlabeled,
            trimap_encoding=trimap_encoding,
        ),
    )
    MetadataCatalog.get(name).set(
        evaluator_type="matting",
        image_root=image_root,
        trimap_root=trimap_root,
        alpha_root=alpha_root,
        trimap_encoding=trimap_encoding,
        **metadata,
    )
