"""Trimaps on the demo page: made from an automatic model's alpha or from a mask ("auto
trimap"), their known regions copied into a matte, and the closed-form matting reference.

Conventions: alpha float (H, W) in [0, 1]; trimaps uint8 (H, W) with 0 background, 128 unknown,
255 foreground; masks bool (H, W), True = foreground. Band widths are in the photo's pixels.
"""

import math

import cv2
import numpy as np

from ..data.trimap import mask_to_trimap

__all__ = [
    "DEFAULT_BAND",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_REFERENCE_MAX_UNKNOWN",
    "trimap_from_mask",
    "trimap_from_alpha",
    "apply_known_regions",
    "closed_form_alpha",
]

DEFAULT_BAND = 10  # px
DEFAULT_THRESHOLDS = (0.05, 0.95)  # alpha <= low: background, alpha >= high: foreground
# Closed-form matting solves one sparse system over the unknown pixels: about 0.8 s for 25,000
# unknown pixels but 19 s for 121,000 (benchmarks/closed_form_reference.py, a busy 2-core
# machine). Above this many unknown pixels the reference is solved on a downscaled copy.
DEFAULT_REFERENCE_MAX_UNKNOWN = 40_000


def trimap_from_mask(mask: np.ndarray, band: int = DEFAULT_BAND) -> np.ndarray:
    """Trimap of a foreground mask: the mask and its complement each eroded with a ``band`` px
    ellipse (:func:`alphafree_d2.data.trimap.mask_to_trimap`, native pixels), so an unknown band
    about ``band`` px wide runs along the mask's outline. ``band=0``: the mask itself as
    foreground and background."""
    return _trimap(np.asarray(mask, dtype=bool), None, band)


def trimap_from_alpha(
    alpha: np.ndarray,
    low: float = DEFAULT_THRESHOLDS[0],
    high: float = DEFAULT_THRESHOLDS[1],
    band: int = DEFAULT_BAND,
) -> np.ndarray:
    """Trimap of a matte: foreground where alpha >= ``high``, background where alpha <= ``low``,
    each then eroded with a ``band`` px ellipse (see :func:`trimap_from_mask`); the rest unknown.

    Raises:
        ValueError: unless 0 <= low < high <= 1 and band >= 0.
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"thresholds must satisfy 0 <= low < high <= 1, got {low} and {high}")
    alpha = np.asarray(alpha, dtype=np.float32)
    return _trimap(alpha >= high, alpha <= low, band)


def _trimap(fg, bg, band):
    band = int(band)
    if band < 0:
        raise ValueError(f"the band width must be >= 0 px, got {band}")
    if band == 0:
        bg = ~fg if bg is None else bg
        trimap = np.full(fg.shape, 128, dtype=np.uint8)
        trimap[bg] = 0
        trimap[fg] = 255
        return trimap
    return mask_to_trimap(fg, bg, kernel_size=band, reference_size=None)


def apply_known_regions(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """``alpha`` (float32 copy) with 0 where the trimap is 0 and 1 where it is 255, as
    :class:`~alphafree_d2.inference.MattingPredictor` returns it for trimap-guided models."""
    alpha = np.array(alpha, dtype=np.float32)
    alpha[trimap == 0] = 0.0
    alpha[trimap == 255] = 1.0
    return alpha


def _preconditioner(matrix):
    from pymatting import ichol

    # pymatting's default first tries no diagonal shift, which fails on large unknown regions
    # after a costly attempt and a printed warning; start at a small shift instead.
    return ichol(matrix, shifts=[1e-4 * 4**k for k in range(12)])


def closed_form_alpha(
    image: np.ndarray, trimap: np.ndarray, max_unknown: int = DEFAULT_REFERENCE_MAX_UNKNOWN
):
    """Closed-form matting (Levin et al. 2008, pymatting's ``estimate_alpha_cf``) of an image
    with a trimap: the classical trimap-based reference.

    When the trimap has more than ``max_unknown`` unknown pixels, the image (area-averaged) and
    the trimap (nearest) are downscaled so that about ``max_unknown`` remain, and the alpha is
    upscaled bilinearly. The trimap's known regions are copied into the result.

    Args:
        image: uint8 (H, W, 3) RGB.
        trimap: uint8 (H, W) {0, 128, 255}.

    Returns:
        (alpha float32 (H, W) in [0, 1], (height, width) it was solved at).

    Raises:
        ValueError: the trimap (at the solved size) lacks foreground or background.
    """
    from pymatting import estimate_alpha_cf

    height, width = trimap.shape
    unknown = int(np.count_nonzero(trimap == 128))
    small_image, small_trimap = image, trimap
    if unknown > max_unknown:
        scale = math.sqrt(max_unknown / unknown)
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_trimap = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
    missing = [
        name
        for name, value in (("foreground", 255), ("background", 0))
        if not (small_trimap == value).any()
    ]
    if missing:
        raise ValueError(
            f"closed-form matting needs both foreground and background in the trimap; it has no "
            f"{' and no '.join(missing)}{' at the reduced size' if small_trimap is not trimap else ''}"
        )
    if unknown == 0:
        return apply_known_regions(np.zeros(trimap.shape, np.float32), trimap), (height, width)
    alpha = estimate_alpha_cf(
        small_image.astype(np.float64) / 255.0,
        small_trimap.astype(np.float64) / 255.0,
        preconditioner=_preconditioner,
    )
    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    if small_trimap is not trimap:
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    return apply_known_regions(alpha, trimap), small_trimap.shape
