"""The package's file writers, all atomic: a run interrupted at any moment leaves the old file or
the new one, never a truncated file that a later run (``--resume``, skip-existing, the evaluator's
reports) would trust. Every PNG, JSON and CSV the package writes goes through here."""

import contextlib
import csv
import io
import json
import os
import tempfile

import cv2
import numpy as np

__all__ = ["atomic_write", "write_csv", "write_json", "write_png"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Open a temporary file beside ``path`` for writing (``mode`` and ``open_kwargs`` as for
    ``open``), creating the folder; on success flush, fsync, give it the permissions a plain
    ``open`` would (``mkstemp`` makes 0600) and rename it over ``path``; on any exception
    (KeyboardInterrupt included) remove it and re-raise."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=folder)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_png(path, array, order="BGR"):
    """Write an image as a PNG, atomically.

    Args:
        array: uint8 or uint16, (H, W) grayscale or (H, W, 3 | 4) colour (with alpha).
        order: channel order of a colour ``array``: ``"BGR"`` (OpenCV's, BGR(A)) or ``"RGB"``
            (RGB(A)).
    """
    if order not in ("BGR", "RGB"):
        raise ValueError(f"{path}: channel order must be 'BGR' or 'RGB', got {order!r}")
    array = np.asarray(array)
    if order == "RGB" and array.ndim == 3:
        if array.shape[2] not in (3, 4):
            raise ValueError(f"{path}: an RGB(A) image has 3 or 4 channels, got {array.shape}")
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ValueError(f"{path}: cannot encode an array {array.dtype} {array.shape} as PNG")
    with atomic_write(path) as f:
        f.write(encoded.tobytes())


def write_json(path, value, indent=1):
    """Write ``value`` as JSON (``json.dump`` with ``indent``), atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=indent)


def write_csv(path, header, rows):
    """Write a CSV file (``csv`` module's default dialect, ``\\r\\n`` line ends), atomically.

    Args:
        header: the column names (first row).
        rows: iterable of sequences, one per line, converted with ``str``.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())
