"""The package's file writers, all atomic: a run interrupted at any moment leaves the old file or
the new one, never a truncated file that a later run (``--resume``, skip-existing, the evaluator's
reports) would trust. Every PNG, JSON and CSV the package writes goes through here.

A full disk (or quota) while writing is a :class:`DiskFullError` naming the file, and Ctrl+C a
plain ``KeyboardInterrupt``, also when they happen inside a writer that reports them as its own
error (``torch.save`` turns both into "RuntimeError: ... unexpected pos ...").
"""

import contextlib
import csv
import errno
import io
import json
import os
import tempfile

import cv2
import numpy as np

__all__ = ["DiskFullError", "atomic_write", "write_csv", "write_json", "write_png"]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """No space left (or the quota reached) while writing a file; the message names it."""

    def __str__(self):
        return self.strerror


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Open a temporary file beside ``path`` for writing (``mode`` and ``open_kwargs`` as for
    ``open``), creating the folder; on success flush, fsync, give it the permissions a plain
    ``open`` would (``mkstemp`` makes 0600) and rename it over ``path``; on any exception
    (KeyboardInterrupt included) remove it and re-raise: a full disk as :class:`DiskFullError`
    naming ``path``, an interrupt as ``KeyboardInterrupt`` (module docstring)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=folder)
    except OSError as e:
        _raise_disk_full(e, path)
        raise
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        _raise_disk_full(e, path)
        if not isinstance(e, KeyboardInterrupt) and _cause(e, KeyboardInterrupt):
            raise KeyboardInterrupt from e
        raise


def _cause(error, kind):
    """The first exception of type ``kind`` in the context chain of ``error`` (itself
    included), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _raise_disk_full(error, path):
    full = _cause(error, OSError)
    if full is not None and full.errno in _DISK_FULL and not isinstance(error, DiskFullError):
        what = (
            "no space left on the device" if full.errno == errno.ENOSPC else "disk quota exceeded"
        )
        raise DiskFullError(
            full.errno,
            f"{what} while writing {path}; the file was not written (an older version of it, "
            f"if any, is unchanged). Free some space, or choose another output folder",
            path,
        ) from error


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
