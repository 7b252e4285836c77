"""Images in and out of the demo page: uploads (photos, trimaps, masks) decoded like
``tools/predict.py`` reads files, PNG bytes for the browser, and the picture of two mattes'
difference.

Conventions: images uint8 (H, W, 3) RGB, alpha float32 (H, W) in [0, 1], trimaps uint8 (H, W)
with values {0, 128, 255}. Every upload is checked in this order, before anything large is
done: its name (no control characters), not empty, the width x height its header declares
against the pixel cap (:func:`~alphafree_d2.data.io.check_image_pixels`), then decoded.
"""

import io
import os
import re
import tempfile

import cv2
import numpy as np

from ..data.io import ImageTooLargeError, check_image_pixels, read_alpha, read_trimap
from ..inference.batch import read_input_image

__all__ = [
    "UploadError",
    "check_filename",
    "decode_upload",
    "decode_trimap_upload",
    "decode_mask_upload",
    "turned_by_exif",
    "safe_name",
    "encode_png",
    "difference_image",
]

# Control characters: a NUL byte, line breaks, escape, DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_NAME = 1024


class UploadError(ValueError):
    """An upload that is not usable as sent; the message names it and says why."""


def check_filename(filename: str) -> str:
    """The name shown for an upload: the last part of ``filename`` (the name the page sends).

    Raises:
        UploadError: the name holds control characters (a NUL byte, a line break) or is longer
            than 1024 characters.
    """
    if _CONTROL.search(filename):
        raise UploadError(
            f"the file name {ascii(filename)} contains control characters (such as a NUL byte "
            "or a line break); rename the file"
        )
    if len(filename) > _MAX_NAME:
        raise UploadError(f"the file name is longer than {_MAX_NAME} characters; rename the file")
    return os.path.basename(filename.replace("\\", "/")) or "upload"


def safe_name(text: str) -> str:
    """``text`` with runs of characters other than letters, digits, ``_.-`` replaced by ``_``
    (for download file names and HTTP headers)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "image"


def _checked(data: bytes, filename: str, max_pixels) -> str:
    name = check_filename(filename or "upload")
    if not data:
        raise UploadError(f"{name}: the file is empty")
    try:
        check_image_pixels(bytes(data), name=name, max_pixels=max_pixels)
    except ImageTooLargeError:  # the caller answers 413
        raise
    except ValueError as e:  # a header that is not an image's
        raise UploadError(str(e)) from None
    return name


def _read_through_file(data: bytes, name: str, reader):
    """``reader(path)`` on the bytes written to a temporary file, errors naming ``name``."""
    suffix = re.sub(r"[^A-Za-z0-9.]", "", os.path.splitext(name)[1])[:10]
    fd, path = tempfile.mkstemp(prefix="alphafree_demo_", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return reader(path)
        except (ValueError, OSError) as e:
            message = str(e).replace(path, name)
            if not message.startswith(name):
                message = f"{name}: {message}"
            error = ImageTooLargeError if isinstance(e, ImageTooLargeError) else UploadError
            raise error(message) from None
    finally:
        os.remove(path)


def decode_upload(data: bytes, filename: str = "upload", max_pixels=None) -> np.ndarray:
    """The uploaded photo as the model sees it: uint8 (H, W, 3) RGB, upright.

    The bytes go through :func:`~alphafree_d2.inference.batch.read_input_image`, the reader of
    ``tools/predict.py``, so grayscale, RGBA, 16-bit files and EXIF orientation give the same
    image here as there.

    Args:
        max_pixels: the pixel cap (default: the process's, see :mod:`alphafree_d2.data.io`).

    Raises:
        UploadError: a bad name, empty or undecodable data, with the file named.
        ImageTooLargeError: the file declares more pixels than the cap.
    """
    name = _checked(data, filename, max_pixels)
    return _read_through_file(data, name, read_input_image)


def turned_by_exif(data: bytes) -> bool:
    """Whether the photo file's EXIF orientation turns or mirrors it (the page shows it
    upright)."""
    from PIL import ExifTags, Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.getexif().get(ExifTags.Base.Orientation, 1)) != 1
    except Exception:  # no EXIF, or none PIL can read: shown as stored
        return False


def _check_size(array, name, size, photo, turned):
    if array.shape[:2] != tuple(size):
        upright = " (upright, after its EXIF orientation)" if turned else ""
        raise UploadError(
            f"{name} is {array.shape[1]}x{array.shape[0]} px but the photo {photo} is "
            f"{size[1]}x{size[0]} px{upright}: it must have the photo's size"
        )
    return array


def decode_trimap_upload(
    data: bytes,
    filename: str,
    size,
    photo: str = "the photo",
    *,
    turned: bool = False,
    max_pixels=None,
) -> np.ndarray:
    """An uploaded trimap as uint8 (H, W) {0, 128, 255}, read as
    :func:`~alphafree_d2.data.io.read_trimap` reads files (values snapped; colour images, label
    maps and masks of other levels refused with the reason).

    Args:
        size: (height, width) of the photo, which the trimap must have.
        photo: the photo's name, for messages; ``turned``: whether its EXIF orientation turned it.

    Raises:
        UploadError, ImageTooLargeError: as :func:`decode_upload`; also a size other than the
            photo's.
    """
    name = _checked(data, filename, max_pixels)
    return _check_size(_read_through_file(data, name, read_trimap), name, size, photo, turned)


def decode_mask_upload(
    data: bytes,
    filename: str,
    size,
    photo: str = "the photo",
    *,
    turned: bool = False,
    max_pixels=None,
) -> np.ndarray:
    """An uploaded mask (or matte) as bool (H, W), True = foreground: read as
    :func:`~alphafree_d2.data.io.read_alpha` reads mattes (8/16-bit, float, the alpha channel of
    an RGBA file when it varies), foreground where alpha >= 0.5. Arguments and errors as
    :func:`decode_trimap_upload`."""
    name = _checked(data, filename, max_pixels)
    alpha = _check_size(_read_through_file(data, name, read_alpha), name, size, photo, turned)
    return alpha >= 0.5


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
