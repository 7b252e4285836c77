"""A quick check of a training set (and of an evaluation set) before training starts, so that a
bad file stops the run at once instead of when its sample is drawn, hours in (or at the first
evaluation, epochs in).

What is checked, per record (``file_name``, ``trimap_file_name``, ``alpha_file_name``):

- every file exists and is an image: images and alpha mattes by their header only
  (:func:`alphafree_d2.data.io.check_image_pixels`: the header, not the pixels, so a file that
  declares more pixels than the pixel cap is refused without decoding it); a PNG must also end
  with its ``IEND`` chunk (a truncated PNG cannot be decoded; a truncated JPEG still decodes,
  grey at the end, so it is not an error). PNGs that do not end as expected are decoded with
  OpenCV as the mapper would, and are errors only if that fails;
- the image size matches the record's ``height``/``width`` and the sizes of its labels;
- every trimap is read in full (:func:`alphafree_d2.data.io.read_trimap`, with the record's
  ``trimap_encoding``): trimaps are small single-channel PNGs, their values are what training
  learns from, and a file that does not read as a trimap is an error. Trimaps without a known
  (0 or 255) pixel are listed in a warning (they give the known-region loss nothing); a set
  without any known pixel, or without any foreground pixel, is an error (training sets only);
- an evaluation set (:func:`check_evaluation_set`) needs an alpha matte and a trimap per image
  (the evaluator reads both), of the image's size.

Errors are collected over the whole set and raised together (:class:`DatasetCheckError`), each
kind with the first few files and a count. The cost is dominated by decoding the trimaps; the
docs/data.md gives the time for an AM-2K-sized set.
"""

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .io import ImageTooLargeError, _read_raw, check_image_pixels, read_trimap

__all__ = ["DatasetCheckError", "check_training_set", "check_evaluation_set"]

logger = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_LABEL_KEYS = (("trimap_file_name", "trimap"), ("alpha_file_name", "alpha"))


class DatasetCheckError(ValueError):
    """The training set has files that training would fail on or learn nothing from."""


def _header_size(path, max_pixels=None):
    """(height, width) of an image file from its header (:func:`check_image_pixels`); a PNG is
    decoded when it does not end with IEND. Raises FileNotFoundError / ValueError
    (ImageTooLargeError above the pixel cap)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    height, width = check_image_pixels(path, max_pixels=max_pixels)
    with open(path, "rb") as f:
        is_png = f.read(len(_PNG_SIGNATURE)) == _PNG_SIGNATURE
        if is_png:
            f.seek(max(0, os.path.getsize(path) - len(_PNG_END)))
            ends_well = f.read() == _PNG_END
    if is_png and not ends_well:  # maybe truncated: decode as training does
        array = _read_raw(path, max_pixels)
        return int(array.shape[0]), int(array.shape[1])
    return height, width


def _read_error(error, what):
    """The problem kind of a reader's error."""
    if isinstance(error, FileNotFoundError):
        return "missing"
    if isinstance(error, ImageTooLargeError):
        return "too_large"
    return "bad_trimap" if what == "trimap" else "unreadable"


def _check_record(record, evaluation=False, max_pixels=None):
    """Problems of one record: list of (kind, message); plus trimap statistics."""
    problems, stats = [], {"known": 0, "foreground": 0}
    image_file = record.get("file_name")
    try:
        size = _header_size(image_file, max_pixels)
    except (FileNotFoundError, ValueError) as e:
        problems.append((_read_error(e, "image"), str(e)))
        size = None
    expected = (record.get("height"), record.get("width"))
    if size is not None and None not in expected and tuple(expected) != size:
        problems.append(
            (
                "size",
                f"{image_file} is {size[1]}x{size[0]} (WxH) but its record says "
                f"{expected[1]}x{expected[0]}",
            )
        )
    if not record.get("trimap_file_name"):
        needed = "evaluation" if evaluation else "training"
        message = f"{image_file}: the record has no 'trimap_file_name' ({needed} needs one)"
        problems.append(("no_trimap", message))
    if evaluation and not record.get("alpha_file_name"):
        problems.append(("no_alpha", f"{image_file}: the record has no 'alpha_file_name'"))
    for key, what in _LABEL_KEYS:
        path = record.get(key)
        if not path:
            continue
        try:
            if what == "trimap":
                trimap = read_trimap(path, record.get("trimap_encoding", "gray"), max_pixels)
                label_size = trimap.shape
                known = int(np.count_nonzero(trimap != 128))
                stats = {"known": known, "foreground": int(np.count_nonzero(trimap == 255))}
                if known == 0 and not evaluation:
                    problems.append(("no_known", path))
            else:
                label_size = _header_size(path, max_pixels)
        except (FileNotFoundError, ValueError) as e:
            problems.append((_read_error(e, what), str(e)))
            continue
        if size is not None and tuple(label_size) != size:
            problems.append(
                (
                    "size",
                    f"image {image_file} is {size[1]}x{size[0]} (WxH) but its {what} {path} is "
                    f"{label_size[1]}x{label_size[0]}",
                )
            )
    return problems, stats


_ERROR_KINDS = {
    "missing": "missing files",
    "too_large": "images above the pixel cap (refused before decoding)",
    "unreadable": "files that cannot be read as images",
    "bad_trimap": "trimap files that do not read as trimaps",
    "size": "size mismatches",
    "no_trimap": "records without a trimap",
    "no_alpha": "records without an alpha matte (evaluation needs the ground truth)",
}


def _listing(items, max_listed):
    lines = [f"    {item}" for item in items[:max_listed]]
    if len(items) > max_listed:
        lines.append(f"    ... and {len(items) - max_listed} more")
    return "\n".join(lines)


def check_training_set(
    records, *, name="training set", max_listed=10, num_threads=None, max_pixels=None
):
    """Check the records of a training set (module docstring) and log a one-line summary.

    Args:
        records (list[dict]): dataset records (``DatasetCatalog`` format).
        name (str): how messages call the set.
        max_listed (int): files listed per kind of problem.
        num_threads (int or None): reader threads (decoding releases the GIL); default
            ``min(8, os.cpu_count())``.
        max_pixels (int or None): the pixel cap (default: the process's,
            :func:`alphafree_d2.data.io.get_max_pixels`).

    Returns:
        dict with ``images``, ``seconds``, ``no_known`` (list of trimap files without a known
        pixel), ``no_foreground`` (how many trimaps have no foreground pixel).

    Raises:
        DatasetCheckError: listing every kind of error found, each with its first
            ``max_listed`` files and their count.
    """
    return _check_set(records, False, name, max_listed, num_threads, max_pixels)


def check_evaluation_set(
    records, *, name="evaluation set", max_listed=10, num_threads=None, max_pixels=None
):
    """:func:`check_training_set` for an evaluation set: every image needs an alpha matte and
    a trimap of its size; trimaps without known or foreground pixels are not errors."""
    return _check_set(records, True, name, max_listed, num_threads, max_pixels)


def _check_set(records, evaluation, name, max_listed, num_threads, max_pixels):
    start = time.perf_counter()
    records = list(records)
    threads = num_threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(
            pool.map(lambda r: _check_record(r, evaluation, max_pixels), records, chunksize=16)
        )

    found = {kind: [] for kind in (*_ERROR_KINDS, "no_known")}
    known = foreground = no_foreground = 0
    for problems, stats in results:
        for kind, message in problems:
            found[kind].append(message)
        known += stats["known"]
        foreground += stats["foreground"]
        no_foreground += stats["foreground"] == 0
    seconds = time.perf_counter() - start

    errors = [
        f"  {len(found[kind])} {label}:\n{_listing(found[kind], max_listed)}"
        for kind, label in _ERROR_KINDS.items()
        if found[kind]
    ]
    labelled = len(records) - len(found["no_trimap"]) - len(found["bad_trimap"])
    usable = labelled > 0 and not any(found[k] for k in ("missing", "bad_trimap", "too_large"))
    if usable and not evaluation:
        if known == 0:
            errors.append(
                f"  no trimap of the {len(records)} images has a known (0 or 255) pixel: "
                "there is nothing for the known-region loss to learn from"
            )
        elif foreground == 0:
            errors.append(
                f"  no trimap of the {len(records)} images has a foreground (255) pixel: the "
                "model would learn that everything is background (are the labels inverted, or "
                "stored with another encoding?)"
            )
    if errors:
        raise DatasetCheckError(
            f"Pre-flight check of the {name} ({len(records)} images) failed:\n"
            + "\n".join(errors)
            + "\nFix or remove these files (dataloader.train.preflight=False skips this check)."
        )
    if found["no_known"]:
        logger.warning(
            f"Pre-flight: {len(found['no_known'])} of {len(records)} trimaps of the {name} have no "
            f"known (0 or 255) pixel; they add nothing to the known-region loss:\n"
            + _listing(found["no_known"], max_listed)
        )
    extra = "" if evaluation else f" ({no_foreground} trimaps without foreground)"
    logger.info(
        f"Pre-flight check of the {name}: {len(records)} images OK in {seconds:.1f} s{extra}"
    )
    return {
        "images": len(records),
        "seconds": seconds,
        "no_known": found["no_known"],
        "no_foreground": no_foreground,
    }
