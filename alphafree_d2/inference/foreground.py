"""From an alpha matte to usable pictures: foreground colours, RGBA cutouts, composites.

Multiplying the photo by alpha is not enough for a cutout: at soft edges (hair, motion blur)
the observed colour is I = alpha * F + (1 - alpha) * B, so the photo's colour still carries the
old background B, which shows as a fringe on a new background. The foreground colour F is
estimated with pymatting's multi-level solver (:func:`pymatting.estimate_foreground_ml`,
Germer et al., "Fast Multi-Level Foreground Estimation", ICPR 2020).

Conventions: images are uint8 (H, W, 3) RGB, alpha float (H, W) in [0, 1].
"""

import logging
import os
from typing import Tuple, Union

import cv2
import numpy as np

__all__ = ["estimate_foreground", "make_cutout", "composite", "parse_color", "COLOR_NAMES"]

logger = logging.getLogger(__name__)

COLOR_NAMES = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
}


def _check(image, alpha):
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"alpha {alpha.shape} does not match the image {image.shape[:2]}")


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, name: str = "image") -> np.ndarray:
    """Foreground colours with the old background removed from mixed pixels.

    A single-pixel image has no neighbours to estimate from (and pymatting's pyramid needs at
    least two pixels along one side): its own colours are the foreground, with a warning.

    Args:
        image: uint8 (H, W, 3) RGB photo.
        alpha: float (H, W) in [0, 1].
        name: what the warning calls the image (e.g. its file).

    Returns:
        float32 (H, W, 3) RGB foreground in [0, 1] (meaningful where alpha > 0).
    """
    _check(image, alpha)
    if max(image.shape[:2]) < 2:
        logger.warning(
            f"{name}: {image.shape[1]}x{image.shape[0]} px is too small for foreground "
            "estimation; the photo's own colours are used as the foreground"
        )
        return image.astype(np.float32) / 255.0
    from pymatting import estimate_foreground_ml  # numba-compiled; imported on first use

    foreground = estimate_foreground_ml(image.astype(np.float32) / 255.0, alpha.astype(np.float32))
    return np.clip(foreground, 0.0, 1.0).astype(np.float32)


def make_cutout(foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4) RGBA (straight, not premultiplied, alpha) from an estimated foreground
    (float (H, W, 3) in [0, 1]) and alpha (float (H, W) in [0, 1])."""
    rgba = np.concatenate([foreground, alpha[:, :, None]], axis=2)
    return np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)


def composite(foreground: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """alpha * F + (1 - alpha) * B as uint8 (H, W, 3) RGB.

    Args:
        foreground: float (H, W, 3) RGB in [0, 1] (see :func:`estimate_foreground`).
        alpha: float (H, W) in [0, 1].
        background: an RGB colour (3 ints 0-255) or a uint8 (h, w, 3) RGB image, which is
            resized (bilinear) to (H, W) without keeping its aspect ratio.
    """
    h, w = alpha.shape
    if isinstance(background, np.ndarray) and background.ndim == 3:
        if background.shape[:2] != (h, w):
            background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
        back = background.astype(np.float32) / 255.0
    else:
        back = np.asarray(background, dtype=np.float32).reshape(1, 1, 3) / 255.0
    a = alpha[:, :, None].astype(np.float32)
    out = a * foreground + (1.0 - a) * back
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def parse_color(text: str) -> Union[Tuple[int, int, int], None]:
    """ "white", "#00ff00", "00ff00" or "0,255,0" -> (R, G, B); None when ``text`` is none of
    these (for instance a path to a background image)."""
    value = text.strip().lower()
    if value in COLOR_NAMES:
        return COLOR_NAMES[value]
    hex_digits = value[1:] if value.startswith("#") else value
    if len(hex_digits) == 6 and all(c in "0123456789abcdef" for c in hex_digits):
        return tuple(int(hex_digits[i : i + 2], 16) for i in (0, 2, 4))
    parts = value.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)
    if value.startswith("#") or (len(parts) == 3 and not os.path.exists(text)):
        raise ValueError(f"{text!r} is not a colour: use a name, #RRGGBB or R,G,B with 0-255")
    return None
