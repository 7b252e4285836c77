"""Reading images, alpha mattes and trimaps from disk, whatever their bit depth and channels.

All readers name the file in their errors. Conventions used across the package:

- image: ``uint8`` array (H, W, 3) in the requested channel order (``"RGB"`` or ``"BGR"``).
  Grayscale is replicated to 3 channels, an alpha channel is dropped, 16-bit is scaled to 8-bit.
- alpha: ``float32`` array (H, W) in [0, 1].
- trimap: ``uint8`` array (H, W) with values exactly {0, 128, 255} (background, unknown,
  foreground). Raw values are snapped with thresholds that survive JPEG noise:
  < 85 -> 0, >= 170 -> 255, anything else -> 128 (16-bit and float files are first scaled to
  8-bit codes). Files that do not read as such a trimap are refused, naming the file and the
  values found, instead of being read as background: colour images (a palette PNG with colour
  entries), files whose every value snaps to background although they are not all zero (0/1/2
  label maps, 0/1 masks, 8-bit levels stored in a 16-bit file), and files where values far from
  0, 128 and 255 cover large areas. 0/1/2 label maps are read with the explicit
  ``encoding="labels012"`` (0 background, 1 unknown, 2 foreground; palette PNGs by their
  indices).

Pixel cap: every reader checks the width x height its file declares, from the header alone
(PIL; tifffile for the TIFFs PIL does not parse), before decoding anything, and refuses files
above the cap with :class:`ImageTooLargeError` naming the file, its size and the cap. A file of
a few hundred KB can declare 20000 x 20000 pixels, and decoding plus the float copies along the
pipeline cost about 100 bytes per pixel. The cap is :data:`DEFAULT_MAX_PIXELS` (100 megapixels)
unless :func:`set_max_pixels` changed it for the process, or a reader is given ``max_pixels``.
"""

import io
import os
import threading
import warnings

import cv2
import numpy as np

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageTooLargeError",
    "get_max_pixels",
    "set_max_pixels",
    "image_header_size",
    "check_image_pixels",
    "IMAGE_EXTENSIONS",
    "read_image",
    "read_alpha",
    "read_trimap",
    "snap_trimap",
    "TRIMAP_ENCODINGS",
    "check_trimap_encoding",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Thresholds on 8-bit trimap values (see module docstring).
TRIMAP_BG_BELOW = 85
TRIMAP_FG_FROM = 170

# How trimap files encode their three classes (``read_trimap(..., encoding=...)``).
TRIMAP_ENCODINGS = ("gray", "labels012")
# A gray trimap is refused when its colour channels differ by more than this (8-bit codes; JPEG
# chroma noise on a gray picture stays far below), or when one value farther than
# _OFF_LEVEL_DISTANCE from 0, 128 and 255 covers at least _OFF_LEVEL_SHARE of the pixels (JPEG
# and resampling noise spreads over many values, each rare).
_GRAY_TOLERANCE = 32
_OFF_LEVEL_DISTANCE = 40
_OFF_LEVEL_SHARE = 0.02
_MAX_VALUES_SHOWN = 12
_OFF_LEVEL = np.abs(np.arange(256)[:, None] - np.array([0, 128, 255])[None]).min(axis=1) > (
    _OFF_LEVEL_DISTANCE
)
# Trimaps above this many pixels: area shares from every 4th pixel of every 4th row (large
# areas are what is looked for, and counting every pixel cost as much as decoding the file).
_SAMPLE_ABOVE = 512 * 512


# The pixel cap (module docstring). 100 megapixels is a 12000 x 8000 photo; decoding one costs
# a few GB along the pipeline, which a 24 GB machine survives.
DEFAULT_MAX_PIXELS = 100_000_000
_max_pixels = DEFAULT_MAX_PIXELS
# PIL refuses headers above 2 x Image.MAX_IMAGE_PIXELS; the size of such a file is read with
# that limit lifted for the one call, under this lock.
_PIL_LIMIT_LOCK = threading.Lock()


class ImageTooLargeError(ValueError):
    """An image file that declares more pixels than the cap (the message names both)."""


def get_max_pixels():
    """The process's pixel cap (:func:`set_max_pixels`), an int >= 1."""
    return _max_pixels


def set_max_pixels(max_pixels):
    """Set the pixel cap of every reader in this process (``None``: the default); returns the
    previous cap. Raises ValueError unless ``max_pixels`` is a whole number >= 1."""
    global _max_pixels
    previous = _max_pixels
    _max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else _valid_cap(max_pixels)
    return previous


def _valid_cap(max_pixels):
    try:
        value = float(max_pixels)
    except (TypeError, ValueError):
        value = float("nan")
    if not (value >= 1 and value == int(value)):  # also refuses nan and inf
        raise ValueError(f"the pixel cap must be a whole number >= 1, got {max_pixels!r}")
    return int(value)


def image_header_size(source):
    """(height, width) that an image file declares in its header, without decoding pixels.

    Args:
        source: a path or the file's bytes.

    Returns None when neither PIL nor (for TIFF) tifffile can parse the header.
    """
    from PIL import Image

    def open_header():
        fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                return int(im.size[1]), int(im.size[0])

    try:
        return open_header()
    except Image.DecompressionBombError:
        with _PIL_LIMIT_LOCK:
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return open_header()
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except (OSError, SyntaxError, ValueError):  # UnidentifiedImageError is an OSError
        pass
    try:  # TIFFs PIL does not parse (3-channel float): tifffile reads their tags
        import tifffile

        fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
        with tifffile.TiffFile(fp) as tif:
            shape = tif.pages[0].shape
            axes = tif.pages[0].axes
        return int(shape[axes.index("Y")]), int(shape[axes.index("X")])
    except Exception:  # not a TIFF either (tifffile raises its own TiffFileError and others)
        return None


def check_image_pixels(source, name=None, max_pixels=None):
    """Raise unless the image file ``source`` (a path or its bytes) declares at most
    ``max_pixels`` pixels (default: the process's cap) in a header PIL or tifffile can parse.

    Returns (height, width). Raises :class:`ImageTooLargeError` above the cap and ValueError for
    a file whose header cannot be parsed (it is not decoded, so nothing is allocated for it).
    ``name`` is how the file is named in messages (default: the path).
    """
    cap = get_max_pixels() if max_pixels is None else _valid_cap(max_pixels)
    name = name if name is not None else source if isinstance(source, str) else "image"
    size = image_header_size(source)
    if size is None:
        raise ValueError(
            f"{name}: cannot be decoded as an image (empty, truncated or not an image: its "
            f"header is not that of a "
            f"{'/'.join(e.lstrip('.').upper() for e in IMAGE_EXTENSIONS)} file)"
        )
    height, width = size
    if height * width > cap:
        raise ImageTooLargeError(
            f"{name}: {width} x {height} pixels ({height * width / 1e6:.3g} megapixels) is above "
            f"the cap of {cap / 1e6:g} megapixels ({cap} pixels); refused before decoding. Use a "
            "smaller image, or raise the cap (--max-pixels, or the config's max_pixels)"
        )
    return height, width


def _read_raw(path, max_pixels=None):
    """Read a file with its own depth and channels: (H, W) or (H, W, C), uint8/uint16/float.
    Files above the pixel cap are refused before decoding (:func:`check_image_pixels`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    data = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths
    if data.size:
        check_image_pixels(memoryview(data), name=path, max_pixels=max_pixels)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        raise ValueError(
            f"{path}: cannot be decoded as an image (empty, truncated or not an image)"
        )
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


def read_image(path, format="RGB", max_pixels=None):
    """Read a colour image as uint8 (H, W, 3) in ``format`` ("RGB" or "BGR").

    ``max_pixels``: the pixel cap for this file (default: the process's, module docstring)."""
    if format not in ("RGB", "BGR"):
        raise ValueError(f"image format must be 'RGB' or 'BGR', got {format!r}")
    array = _read_raw(path, max_pixels)
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


def read_alpha(path, max_pixels=None):
    """Read an alpha matte as float32 (H, W) in [0, 1] (8-bit, 16-bit or float files).
    ``max_pixels`` as for :func:`read_image`."""
    return _to_unit_float(_single_channel(_read_raw(path, max_pixels), path, "alpha matte"), path)


def snap_trimap(trimap):
    """Snap an 8-bit trimap-like array (H, W) to exactly {0, 128, 255} (see module docstring)."""
    trimap = np.asarray(trimap)
    out = np.full(trimap.shape, 128, dtype=np.uint8)
    out[trimap < TRIMAP_BG_BELOW] = 0
    out[trimap >= TRIMAP_FG_FROM] = 255
    return out


def check_trimap_encoding(encoding):
    """Raise unless ``encoding`` is one of :data:`TRIMAP_ENCODINGS`."""
    if encoding not in TRIMAP_ENCODINGS:
        raise ValueError(
            f"trimap_encoding must be one of {TRIMAP_ENCODINGS}, got {encoding!r}: 'gray' for "
            "0/128/255 trimaps and 0/255 masks, 'labels012' for 0/1/2 label maps"
        )


def _values(array):
    """'v1, v2, ...' of the distinct values of ``array`` (the first few, for error messages)."""
    values = np.unique(array)
    shown = ", ".join(f"{v:g}" for v in values[:_MAX_VALUES_SHOWN].tolist())
    more = len(values) - _MAX_VALUES_SHOWN
    return shown + (f", ... ({more} more)" if more > 0 else "")


def _trimap_plane(array, path):
    """(H, W) plane of a trimap file; refuses colour images (module docstring)."""
    if array.ndim == 2:
        return array
    channels = array.shape[2]
    if channels == 4 and array[:, :, 3].min() != array[:, :, 3].max():
        return array[:, :, 3]  # the label is in the alpha channel (as for mattes)
    if channels not in (1, 3, 4):
        raise ValueError(f"{path}: a trimap needs 1, 3 or 4 channels, found {channels}")
    colour = array[:, :, :3] if channels >= 3 else array
    if channels >= 3:
        top = 255.0 if array.dtype == np.uint8 else (65535.0 if array.dtype == np.uint16 else 1.0)
        spread = colour.max(axis=2).astype(np.float64) - colour.min(axis=2)
        if spread.max() * 255.0 / top > _GRAY_TOLERANCE:
            colours = np.unique(colour[spread * 255.0 / top > _GRAY_TOLERANCE][:, ::-1], axis=0)
            shown = ", ".join(str(tuple(c)) for c in colours[:_MAX_VALUES_SHOWN].tolist())
            raise ValueError(
                f"{path}: a trimap must be grayscale (0 background, 128 unknown, 255 foreground), "
                f"but this file holds colours, e.g. RGB {shown} (a palette PNG with colour "
                "entries?). Convert it to gray levels, or, if its palette indices are 0/1/2 "
                "labels, read it with trimap_encoding='labels012'."
            )
    return colour[:, :, 0]


def _check_gray_trimap(raw, codes, path):
    """Refuse a file that does not read as a 0/128/255 trimap (module docstring).

    ``raw``: the file's plane (any dtype); ``codes``: the same as 8-bit codes.
    """
    if codes.max() < TRIMAP_BG_BELOW and raw.max() > 0:
        values = _values(raw)
        if raw.dtype.kind in "ui" and raw.max() <= 2:
            hint = (
                "This looks like a 0/1/2 label map (or a 0/1 mask): register it with "
                "trimap_encoding='labels012' (0 background, 1 unknown, 2 foreground), or save "
                "it as 0/128/255 (a mask as 0/255)."
            )
        elif raw.dtype == np.uint16 and raw.max() <= 255:
            hint = (
                "These look like 8-bit levels stored in a 16-bit file: save it as 8-bit, or "
                "scale it to 0/32896/65535."
            )
        else:
            hint = "Save it as 0 (background), 128 (unknown), 255 (foreground)."
        raise ValueError(
            f"{path}: every pixel would read as background (found values {values} in a "
            f"{raw.dtype} file; a trimap holds 0 background, 128 unknown, 255 foreground). {hint}"
        )
    sample = codes[::4, ::4] if codes.size > _SAMPLE_ABOVE else codes
    counts = np.bincount(sample.ravel(), minlength=256)
    off = np.flatnonzero(_OFF_LEVEL & (counts >= _OFF_LEVEL_SHARE * sample.size))
    if off.size:
        shares = ", ".join(f"{v} ({100.0 * counts[v] / sample.size:.0f}% of pixels)" for v in off)
        raise ValueError(
            f"{path}: not a 0/128/255 trimap: large areas hold values far from these levels: "
            f"{shares} (8-bit codes; all values: {_values(codes)}). Save it as 0 (background), "
            "128 (unknown), 255 (foreground)."
        )


def _read_labels012(path, max_pixels=None):
    """A 0/1/2 label map (palette PNGs by their indices) -> uint8 {0, 128, 255}."""
    from PIL import Image

    if os.path.isfile(path):
        check_image_pixels(path, max_pixels=max_pixels)
    array = None
    try:
        with Image.open(path) as im:
            if im.mode == "P":
                array = np.asarray(im)
    except OSError:  # not a file PIL reads: OpenCV decides below
        pass
    if array is None:
        array = _trimap_plane(_read_raw(path, max_pixels), path)
    if array.dtype.kind not in "ui" or array.max() > 2:
        raise ValueError(
            f"{path}: trimap_encoding='labels012' expects the integer values 0 (background), "
            f"1 (unknown), 2 (foreground), found {_values(array)} ({array.dtype}). A 0/128/255 "
            "trimap is read with trimap_encoding='gray' (the default); a lossy (JPEG) label "
            "map cannot be read exactly: save it as PNG."
        )
    return np.array([0, 128, 255], dtype=np.uint8)[array]


def read_trimap(path, encoding="gray", max_pixels=None):
    """Read a trimap (or a binary mask) as uint8 (H, W) with values exactly {0, 128, 255}.

    Args:
        encoding: "gray" (0/128/255 trimaps and 0/255 masks, 8-bit, 16-bit or float, snapped;
            files that do not read as such are refused, see the module docstring) or
            "labels012" (0 background, 1 unknown, 2 foreground, read exactly).
        max_pixels: as for :func:`read_image`.
    """
    check_trimap_encoding(encoding)
    if encoding == "labels012":
        return _read_labels012(path, max_pixels)
    raw = _trimap_plane(_read_raw(path, max_pixels), path)
    codes = raw
    if codes.dtype != np.uint8:
        codes = np.round(_to_unit_float(codes, path) * 255.0).astype(np.uint8)
    _check_gray_trimap(raw, codes, path)
    return snap_trimap(codes)
