"""Reading images, alpha mattes and trimaps from disk, whatever their bit depth and channels.

All readers name the file in their errors. Conventions used across the package:

- image: ``uint8`` array (H, W, 3) in the requested channel order (``"RGB"`` or ``"BGR"``).
  Grayscale is replicated to 3 channels, an alpha channel is dropped, 16-bit is scaled to 8-bit.
- alpha: ``float32`` array (H, W) in [0, 1].
- trimap: ``uint8`` array (H, W) with values exactly {0, 128, 255} (background, unknown,
  foreground). Raw values are snapped with thresholds that survive JPEG noise:
  < 85 -> 0, >= 170 -> 255, anything else -> 128.
"""
import os

import cv2
import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "read_image",
    "read_alpha",
    "read_trimap",
    "snap_trimap",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Thresholds on 8-bit trimap values (see module docstring).
TRIMAP_BG_BELOW = 85
TRIMAP_FG_FROM = 170


def _read_raw(path):
    """Read a file with its own depth and channels: (H, W) or (H, W, C), uint8/uint16/float."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    data = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        raise ValueError(f"{path}: cannot be decoded as an image (empty, truncated or not an image)")
    return array


def _to_unit_float(array, path):
    """Integer or float array -> float32 in [0, 1] by its dtype's range."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(array.astype(np.float32), 0.0, 1.0)
    raise ValueError(f"{path}: unsupported pixel type {array.dtype} (expected 8/16-bit or float)")


def read_image(path, format="RGB"):
    """Read a colour image as uint8 (H, W, 3) in ``format`` ("RGB" or "BGR")."""
    if format not in ("RGB", "BGR"):
        raise ValueError(f"image format must be 'RGB' or 'BGR', got {format!r}")
    array = _read_raw(path)
    if array.dtype != np.uint8:
        array = np.round(_to_unit_float(array, path) * 255.0).astype(np.uint8)
    if array.ndim == 2:
        array = cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    elif array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    elif array.shape[2] != 3:
        raise ValueError(f"{path}: expected 1, 3 or 4 channels, found {array.shape[2]}")
    if format == "RGB":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def _single_channel(array, path, what):
    if array.ndim == 3:
        if array.shape[2] == 4:
            # An RGBA file for a matte: the matte is in its alpha channel when that varies,
            # otherwise in the colour channels.
            alpha = array[:, :, 3]
            array = alpha if alpha.min() != alpha.max() else array[:, :, 0]
        elif array.shape[2] in (1, 3):
            array = array[:, :, 0]
        else:
            raise ValueError(f"{path}: a {what} needs 1, 3 or 4 channels, found {array.shape[2]}")
    return array


def read_alpha(path):
    """Read an alpha matte as float32 (H, W) in [0, 1] (8-bit, 16-bit or float files)."""
    return _to_unit_float(_single_channel(_read_raw(path), path, "alpha matte"), path)


def snap_trimap(trimap):
    """Snap an 8-bit trimap-like array (H, W) to exactly {0, 128, 255} (see module docstring)."""
    trimap = np.asarray(trimap)
    out = np.full(trimap.shape, 128, dtype=np.uint8)
    out[trimap < TRIMAP_BG_BELOW] = 0
    out[trimap >= TRIMAP_FG_FROM] = 255
    return out


def read_trimap(path):
    """Read a trimap (or a binary mask) as uint8 (H, W) with values exactly {0, 128, 255}."""
    array = _single_channel(_read_raw(path), path, "trimap")
    if array.dtype != np.uint8:
        array = np.round(_to_unit_float(array, path) * 255.0).astype(np.uint8)
    return snap_trimap(array)
