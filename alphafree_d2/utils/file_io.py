"""Atomic file writes: a run interrupted at any moment leaves the old file or the new one, never a
truncated file that a later run (``--resume``, skip-existing) would trust."""
import contextlib
import os
import tempfile

import cv2

__all__ = ["atomic_write", "write_png"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path`` for writing; on success flush, fsync, give it the
    permissions a plain ``open`` would (``mkstemp`` makes 0600) and rename it over ``path``; on
    any exception (KeyboardInterrupt included) remove it and re-raise."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_png(path, array):
    """Write a uint8/uint16 array, (H, W) or (H, W, C) in OpenCV's BGR(A) order, as a PNG,
    atomically."""
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"{path}: cannot encode an array {array.dtype} {array.shape} as PNG")
    with atomic_write(path) as f:
        f.write(encoded.tobytes())
