"""Images in and out of the demo page: uploads decoded like ``tools/predict.py`` reads files,
PNG bytes for the browser, and the picture of two mattes' difference.

Conventions: images uint8 (H, W, 3) RGB, alpha float32 (H, W) in [0, 1].
"""

import os
import tempfile

import cv2
import numpy as np

from ..inference.batch import read_input_image

__all__ = ["UploadError", "decode_upload", "encode_png", "difference_image"]


class UploadError(ValueError):
    """An upload that is not a usable image; the message names it and says why."""


def decode_upload(data: bytes, filename: str = "upload") -> np.ndarray:
    """The uploaded file as the model sees it: uint8 (H, W, 3) RGB, upright.

    The bytes go through :func:`~alphafree_d2.inference.batch.read_input_image`, the reader of
    ``tools/predict.py``, so grayscale, RGBA, 16-bit files and EXIF orientation give the same
    image here as there.

    Raises:
        UploadError: empty or undecodable data, with ``filename`` in the message.
    """
    name = os.path.basename(filename or "upload") or "upload"
    if not data:
        raise UploadError(f"{name}: the file is empty")
    suffix = os.path.splitext(name)[1][:10]
    fd, path = tempfile.mkstemp(prefix="alphafree_demo_", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return read_input_image(path)
        except (ValueError, OSError) as e:
            message = str(e).replace(path, name)
            if not message.startswith(name):
                message = f"{name}: {message}"
            raise UploadError(message) from None
    finally:
        os.remove(path)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array: (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA."""
    if array.ndim == 3:
        code = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}[array.shape[2]]
        array = cv2.cvtColor(array, code)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"cannot encode an array {array.dtype} {array.shape} as PNG")
    return encoded.tobytes()


def difference_image(alpha_a: np.ndarray, alpha_b: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB picture of ``alpha_a - alpha_b``: black where the mattes agree, red
    where A is more opaque than B, blue where B is more opaque, brightness = |A - B|."""
    if alpha_a.shape != alpha_b.shape:
        raise ValueError(f"alpha shapes differ: {alpha_a.shape} and {alpha_b.shape}")
    diff = alpha_a.astype(np.float32) - alpha_b.astype(np.float32)
    picture = np.zeros(diff.shape + (3,), dtype=np.float32)
    picture[..., 0] = np.clip(diff, 0.0, 1.0)
    picture[..., 2] = np.clip(-diff, 0.0, 1.0)
    return np.round(picture * 255.0).astype(np.uint8)
