"""A quick check of a training set before training starts, so that a bad file stops the run at
once instead of when its sample is drawn, hours in.

What is checked, per record (``file_name``, ``trimap_file_name``, ``alpha_file_name``):

- every file exists and is an image: images and alpha mattes by their header only (PIL reads
  the header, not the pixels); a PNG must also end with its ``IEND`` chunk (a truncated PNG
  cannot be decoded; a truncated JPEG still decodes, grey at the end, so it is not an error).
  Files that PIL cannot parse, or PNGs that do not end as expected, are decoded with OpenCV as
  the mapper would, and are errors only if that fails;
- the image size matches the record's ``height``/``width`` and the sizes of its labels;
- every trimap is read in full (:func:`alphafree_d2.data.io.read_trimap`, with the record's
  ``trimap_encoding``): trimaps are small single-channel PNGs, their values are what training
  learns from, and a file that does not read as a trimap is an error. Trimaps without a known
  (0 or 255) pixel are listed in a warning (they give the known-region loss nothing); a set
  without any known pixel, or without any foreground pixel, is an error.

Errors are collected over the whole set and raised together (:class:`DatasetCheckError`), each
kind with the first few files and a count. The cost is dominated by decoding the trimaps; the
README ("Data") gives the time for an AM-2K-sized set.
"""

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .io import _read_raw, read_trimap

__all__ = ["DatasetCheckError", "check_training_set"]

logger = logging.getLogger(__name__)

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_LABEL_KEYS = (("trimap_file_name", "trimap"), ("alpha_file_name", "alpha"))


class DatasetCheckError(ValueError):
    """The training set has files that training would fail on or learn nothing from."""


def _header_size(path):
    """(height, width) of an image file from its header; decodes only when the header cannot be
    parsed or a PNG does not end with IEND. Raises FileNotFoundError / ValueError."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            width, height = im.size
            is_png = im.format == "PNG"
        if is_png:
            with open(path, "rb") as f:
                f.seek(max(0, os.path.getsize(path) - len(_PNG_END)))
                ends_well = f.read() == _PNG_END
            if not ends_well:
                raise OSError("no IEND chunk at the end")
        return int(height), int(width)
    except OSError:  # not parsed by PIL, or a PNG that may be truncated: decode as training does
        array = _read_raw(path)
        return int(array.shape[0]), int(array.shape[1])


def _check_record(record):
    """Problems of one record: list of (kind, message); plus trimap statistics."""
    problems, stats = [], {"known": 0, "foreground": 0}
    image_file = record.get("file_name")
    try:
        size = _header_size(image_file)
    except FileNotFoundError as e:
        problems.append(("missing", str(e)))
        size = None
    except ValueError as e:
        problems.append(("unreadable", str(e)))
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
        problems.append(("no_trimap", f"{image_file}: the record has no 'trimap_file_name'"))
    for key, what in _LABEL_KEYS:
        path = record.get(key)
        if not path:
            continue
        try:
            if what == "trimap":
                trimap = read_trimap(path, record.get("trimap_encoding", "gray"))
                label_size = trimap.shape
                known = int(np.count_nonzero(trimap != 128))
                stats = {"known": known, "foreground": int(np.count_nonzero(trimap == 255))}
                if known == 0:
                    problems.append(("no_known", path))
            else:
                label_size = _header_size(path)
        except FileNotFoundError as e:
            problems.append(("missing", str(e)))
            continue
        except ValueError as e:
            problems.append(("unreadable" if what == "alpha" else "bad_trimap", str(e)))
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
    "unreadable": "files that cannot be read as images",
    "bad_trimap": "trimap files that do not read as trimaps",
    "size": "size mismatches",
    "no_trimap": "records without a trimap label (training needs one)",
}


def _listing(items, max_listed):
    lines = [f"    {item}" for item in items[:max_listed]]
    if len(items) > max_listed:
        lines.append(f"    ... and {len(items) - max_listed} more")
    return "\n".join(lines)


def check_training_set(records, *, name="training set", max_listed=10, num_threads=None):
    """Check the records of a training set (module docstring) and log a one-line summary.

    Args:
        records (list[dict]): dataset records (``DatasetCatalog`` format).
        name (str): how messages call the set.
        max_listed (int): files listed per kind of problem.
        num_threads (int or None): reader threads (decoding releases the GIL); default
            ``min(8, os.cpu_count())``.

    Returns:
        dict with ``images``, ``seconds``, ``no_known`` (list of trimap files without a known
        pixel), ``no_foreground`` (how many trimaps have no foreground pixel).

    Raises:
        DatasetCheckError: listing every kind of error found, each with its first
            ``max_listed`` files and their count.
    """
    start = time.perf_counter()
    records = list(records)
    threads = num_threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(_check_record, records, chunksize=16))

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
    if labelled > 0 and not any(found[k] for k in ("missing", "bad_trimap")):
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
    logger.info(
        f"Pre-flight check of the {name}: {len(records)} images OK in {seconds:.1f} s "
        f"({no_foreground} trimaps without foreground)"
    )
    return {
        "images": len(records),
        "seconds": seconds,
        "no_known": found["no_known"],
        "no_foreground": no_foreground,
    }
