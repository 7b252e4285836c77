"""Alpha-matting metrics that reproduce two published evaluation scripts, value for value.

Two protocols (``matting_metrics(..., protocol=...)``):

``"whole_image"``: the AM-2K / P3M-10k benchmark, i.e. ``core/evaluate.py`` of the GFM and P3M
    repositories (JizhiziLi/GFM, JizhiziLi/P3M; both files hold the same test functions) called
    as ``core/test.py`` calls them. The paper's Tables 1-8 use it. Keys:

    - ``SAD``  sum |pred - gt| over the whole image / 1000
    - ``MAD``  mean |pred - gt| over the whole image
    - ``MSE``  mean (pred - gt)^2 over the whole image
    - ``Grad`` sum over the image of (|grad pred| - |grad gt|)^2 / 10, gradients from
      first-order Gaussian derivative filters (sigma 1.4)
    - ``Conn`` connectivity error (Rhemann et al. 2009) over the whole image / 1000
    - ``SAD-T``, ``MSE-T`` the prediction is set to 1 on the trimap's foreground and to 0 on its
      background, then: SAD over the whole image / 1000, and the summed squared error divided by
      the number of unknown (128) pixels.

``"unknown_region"``: the Composition-1k / Deep-Image-Matting convention of the paper's own
    repository, ``evaluation.py`` of poppuppy/alpha-free-matting. Keys ``SAD`` (/1000), ``MSE``
    (mean), ``Grad`` (/1000) and ``Conn`` (/1000), all restricted to the pixels with
    trimap == 128.

Inputs and how they map to what the scripts read:

- ``uint8`` alphas are 8-bit codes, exactly what the scripts load from PNG files. Whole image:
  ``code / 255.`` in float64 (``np.array(Image.open(path)) / 255.``); unknown region: float32
  codes (``cv2.imread(path, 0).astype(np.float32)``).
- floating-point alphas are values in [0, 1]. Whole image: used as float64 (``core/test.py``
  passes float64 arrays); unknown region: the script only ever sees 8-bit codes, so a float
  alpha ``a`` is handed to its formulas as the float32 "code" ``float32(255 * a)``. For results
  that are bit-identical to the scripts on files, pass uint8 codes.

Quirks of the references that are reproduced on purpose (each is marked ``Reference quirk`` at
its place): the threshold grid ``np.arange(0, 1.1, 0.1)`` (whose values are ``i * 0.1`` in
float64, e.g. 0.6000000000000001, so an alpha of exactly 153/255 = 0.6 is *below* the 7th
threshold); float32 outputs of the gradient filters; a float32 ``l_map`` in the whole-image
connectivity; float32 sums in the unknown-region script; and its "largest connected component"
that counts the background (label 0) as a candidate.

Degenerate but valid inputs (no unknown pixel, everything unknown, empty foreground, constant
alphas, 1x1 images) neither raise nor divide by zero. A *sum* over an empty set of pixels is 0;
a *mean over the unknown pixels* when there are none (``MSE-T`` for whole image, ``MSE`` for
unknown region) is ``nan``: the whole-image script divides by zero there, the unknown-region
script returns 0 through its ``+ 1e-8`` guard; we report both as undefined, and
``MattingEvaluator`` leaves such values out of its means. ``pred == gt`` gives 0 everywhere.
"""

from collections import OrderedDict
from typing import Dict

import cv2
import numpy as np
from scipy import ndimage

__all__ = ["PROTOCOLS", "METRIC_KEYS", "matting_metrics"]

PROTOCOLS = ("whole_image", "unknown_region")
METRIC_KEYS = {
    "whole_image": ("SAD", "MAD", "MSE", "Grad", "Conn", "SAD-T", "MSE-T"),
    "unknown_region": ("SAD", "MSE", "Grad", "Conn"),
}

# Reference quirk: both scripts build the connectivity thresholds with np.arange(0, 1.1, 0.1)
# (step 0.1 in the unknown-region script, ``np.arange(0, 1 + step, step)``): 11 values
# [0, 0.1, ..., 1.0] equal to ``i * 0.1`` in float64, not to the decimal numbers.
CONN_THRESHOLDS = np.arange(0, 1.1, 0.1)
# Pixels whose alpha exceeds the last level l(p) by less than this keep phi = 1 (both scripts).
CONN_THETA = 0.15
GRAD_SIGMA = 1.4
TRIMAP_VALUES = (0, 128, 255)
UNKNOWN = 128


def matting_metrics(pred, gt, trimap, protocol="whole_image") -> Dict[str, float]:
    """
    Compare a predicted alpha matte with the ground truth under one benchmark protocol.

    Args:
        pred, gt: (H, W) alpha mattes, either float arrays with values in [0, 1] or uint8
            8-bit codes (see the module docstring for how each is read).
        trimap: (H, W) integer or float array with values in {0, 128, 255} (background,
            unknown, foreground).
        protocol (str): "whole_image" (AM-2K / P3M benchmark code) or "unknown_region"
            (Composition-1k style, the paper repository's evaluation.py).

    Returns:
        OrderedDict[str, float]: ``METRIC_KEYS[protocol]`` -> value, with the scalings of the
        reference scripts (SAD, Conn and unknown-region Grad / 1000; whole-image Grad / 10).

    Raises:
        ValueError: unknown protocol, shapes that are not (H, W) or differ, empty arrays,
            unsupported dtypes, alpha values outside [0, 1] or not finite, trimap values
            outside {0, 128, 255}.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"matting_metrics: protocol must be one of {PROTOCOLS}, got {protocol!r}")
    pred = _check_alpha(pred, "pred")
    gt = _check_alpha(gt, "gt")
    trimap = _check_trimap(trimap)
    if not (pred.shape == gt.shape == trimap.shape):
        raise ValueError(
            "matting_metrics: pred, gt and trimap must have the same (H, W) shape, got "
            f"pred {pred.shape}, gt {gt.shape}, trimap {trimap.shape}"
        )
    if protocol == "whole_image":
        values = _whole_image_metrics(_as_unit_float64(pred), _as_unit_float64(gt), trimap)
    else:
        values = _unknown_region_metrics(_as_float32_codes(pred), _as_float32_codes(gt), trimap)
    return OrderedDict((key, float(values[key])) for key in METRIC_KEYS[protocol])


# ---------------------------------------------------------------------------------------------
# Input checks and conversions


def _check_alpha(alpha, name):
    alpha = np.asarray(alpha)
    if alpha.ndim != 2 or alpha.size == 0:
        raise ValueError(
            f"matting_metrics: {name} must be a non-empty (H, W) array, got shape {alpha.shape}"
        )
    if alpha.dtype == np.uint8:
        return alpha
    if not np.issubdtype(alpha.dtype, np.floating):
        raise ValueError(
            f"matting_metrics: {name} must be floats in [0, 1] or uint8 8-bit codes, got dtype "
            f"{alpha.dtype}"
        )
    if not np.isfinite(alpha).all():
        raise ValueError(f"matting_metrics: {name} contains NaN or infinite values")
    low, high = float(alpha.min()), float(alpha.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"matting_metrics: {name} must lie in [0, 1], found values in [{low:g}, {high:g}] "
            "(8-bit alphas must be passed as uint8 or divided by 255)"
        )
    return alpha


def _check_trimap(trimap):
    trimap = np.asarray(trimap)
    if trimap.ndim != 2 or trimap.size == 0:
        raise ValueError(
            f"matting_metrics: trimap must be a non-empty (H, W) array, got shape {trimap.shape}"
        )
    if trimap.dtype != np.uint8:
        if not (
            np.issubdtype(trimap.dtype, np.integer) or np.issubdtype(trimap.dtype, np.floating)
        ):
            raise ValueError(f"matting_metrics: trimap has unsupported dtype {trimap.dtype}")
        as_uint8 = np.clip(np.nan_to_num(trimap), 0, 255).astype(np.uint8)
        if not np.array_equal(as_uint8, trimap):
            raise ValueError(
                "matting_metrics: trimap values must be exactly 0, 128 or 255 (found values "
                "that are not 8-bit integers); snap it first, e.g. alphafree_d2.data.io.snap_trimap"
            )
        trimap = as_uint8
    counts = np.bincount(trimap.ravel(), minlength=256)
    counts[list(TRIMAP_VALUES)] = 0
    if counts.any():
        found = np.flatnonzero(counts)
        raise ValueError(
            "matting_metrics: trimap values must be in {0, 128, 255}, found also "
            f"{found[:8].tolist()}{' ...' if found.size > 8 else ''}; snap it first, e.g. "
            "alphafree_d2.data.io.snap_trimap"
        )
    return trimap


def _as_unit_float64(alpha):
    # core/test.py: ``np.array(Image.open(alpha_path)) / 255.`` for ground truth (float64) and a
    # float64 prediction from skimage's resize.
    if alpha.dtype == np.uint8:
        return alpha / 255.0
    return alpha.astype(np.float64, copy=False)


def _as_float32_codes(alpha):
    # evaluation.py: ``cv2.imread(path, 0).astype(np.float32)``, values 0..255.
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32)
    return (alpha.astype(np.float64) * 255.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Whole image: GFM / P3M core/evaluate.py


def _whole_image_metrics(pred, gt, trimap):
    """pred, gt: float64 (H, W) in [0, 1]; trimap uint8 {0, 128, 255}."""
    num_pixels = pred.shape[0] * pred.shape[1]
    abs_sum = np.sum(np.abs(pred - gt))
    values = {
        "SAD": abs_sum / 1000,
        "MAD": abs_sum / num_pixels,
        "MSE": np.sum((pred - gt) ** 2) / num_pixels,
        "Grad": _gradient_error_whole_image(pred, gt),
        "Conn": _connectivity_error_whole_image(pred, gt),
    }
    # SAD-T / MSE-T: the prediction is forced to the trimap's known values, errors are summed
    # over the whole image (known pixels where gt is not exactly 0 / 1 still count).
    forced = pred.copy()
    forced[trimap == 255] = 1.0
    forced[trimap == 0] = 0.0
    values["SAD-T"] = np.sum(np.abs(forced - gt)) / 1000
    num_unknown = np.count_nonzero(trimap == UNKNOWN)
    # The reference falls back to "pixels neither 0 nor 255", which is also 0 for a trimap in
    # {0, 128, 255}, and then divides by zero: we report nan (see the module docstring).
    values["MSE-T"] = np.sum((forced - gt) ** 2) / num_unknown if num_unknown else np.nan
    return values


def _gradient_error_whole_image(pred, gt):
    # Reference quirk: the Gaussian-derivative responses are written to float32 arrays
    # (``output=np.float32``), so the magnitudes and the sum are float32. scipy filters axis 0,
    # stores it in that float32 output, then filters axis 1: calling gaussian_filter the same
    # way gives the same bits.
    def magnitude(alpha):
        d0 = ndimage.gaussian_filter(alpha, sigma=GRAD_SIGMA, order=[1, 0], output=np.float32)
        d1 = ndimage.gaussian_filter(alpha, sigma=GRAD_SIGMA, order=[0, 1], output=np.float32)
        return np.sqrt(d0**2 + d1**2)

    return np.sum(np.square(magnitude(pred) - magnitude(gt))) / 10


def _connectivity_error_whole_image(pred, gt):
    # Reference quirk: l_map is float32, so the thresholds stored in it are rounded to float32
    # before ``pred - l_map`` (float64) is formed.
    l_map = _connectivity_levels(np.minimum(pred, gt), np.float32, count_background=False)
    d_pred = pred - l_map
    d_gt = gt - l_map
    phi_pred = 1 - d_pred * (d_pred >= CONN_THETA).astype(np.float32)
    phi_gt = 1 - d_gt * (d_gt >= CONN_THETA).astype(np.float32)
    return np.sum(np.abs(phi_pred - phi_gt)) / 1000


# ---------------------------------------------------------------------------------------------
# Unknown region: poppuppy/alpha-free-matting evaluation.py


def _unknown_region_metrics(pred, gt, trimap):
    """pred, gt: float32 (H, W) codes in [0, 255]; trimap uint8 {0, 128, 255}."""
    unknown = trimap == UNKNOWN
    num_unknown = np.count_nonzero(unknown)
    # Reference quirk: float32 error maps and float32 sums of the masked full-size map (the
    # summation order of the full array is kept, so the float32 rounding is the same).
    error = (pred - gt) / np.float32(255.0)
    values = {
        "SAD": np.sum(np.abs(error) * unknown) / 1000,
        # The reference divides (a float32 sum, in float64) by ``count + 1e-8``; with no unknown
        # pixel it returns 0, we report nan.
        "MSE": (
            np.sum((error**2) * unknown) / (np.float64(num_unknown) + 1e-8)
            if num_unknown
            else np.nan
        ),
    }
    pred_unit = pred / np.float32(255.0)  # float32, as ``pred / 255.0`` on a float32 array
    gt_unit = gt / np.float32(255.0)
    if num_unknown == 0:
        values["Grad"] = values["Conn"] = 0.0
        return values
    values["Grad"] = _gradient_error_unknown(pred_unit, gt_unit, unknown)
    values["Conn"] = _connectivity_error_unknown(pred_unit, gt_unit, unknown)
    return values


def _gauss_gradient_kernels(sigma):
    """1D factors of the reference's 2D kernel hx[i, j] = g(i) * g'(j) / ||g (x) g'||_2."""
    # Half size from the reference: the kernel is cut where the Gaussian drops below 1e-2.
    epsilon = 1e-2
    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dgauss = -u * gauss / sigma**2
    # ||outer(a, b)||_F = ||a|| * ||b||; the reference normalises the 2D kernel by it.
    norm = np.sqrt(np.sum(np.outer(gauss, dgauss) ** 2))
    return gauss, dgauss / norm


def _gradient_error_unknown(pred, gt, unknown):
    """
    pred, gt: float32 (H, W) in [0, 1]; unknown: bool (H, W), not empty.
    Sum over the unknown pixels of the squared difference of gradient magnitudes, / 1000.
    """
    smooth, deriv = _gauss_gradient_kernels(GRAD_SIGMA)
    half = smooth.size // 2
    # Only the unknown pixels count: filter the box around them plus the kernel's reach. Inside
    # the image the margin holds the real neighbours; at the image border the crop ends where
    # the image does, so mode "nearest" repeats the same pixels as on the full image.
    rows = np.flatnonzero(unknown.any(axis=1))
    cols = np.flatnonzero(unknown.any(axis=0))
    box = (
        slice(max(rows[0] - half, 0), rows[-1] + half + 1),
        slice(max(cols[0] - half, 0), cols[-1] + half + 1),
    )

    # The reference convolves with the 9x9 rank-one kernel (mode "nearest") into float32
    # (scipy keeps the input's dtype). Two 1D passes in float64 give the same float64 values up
    # to rounding, then the same float32 cast: at most 1-ulp float32 differences on rare pixels.
    def magnitude(alpha):
        alpha = alpha[box].astype(np.float64)
        along_0 = ndimage.convolve1d(alpha, smooth, axis=0, mode="nearest")
        along_1 = ndimage.convolve1d(alpha, smooth, axis=1, mode="nearest")
        grad_x = ndimage.convolve1d(along_0, deriv, axis=1, mode="nearest").astype(np.float32)
        grad_y = ndimage.convolve1d(along_1, deriv, axis=0, mode="nearest").astype(np.float32)
        return np.sqrt(grad_x**2 + grad_y**2)

    # Boolean indexing keeps raster order, so the float32 sum adds the same values in the same
    # order as the reference's ``error_map[trimap == 128]``.
    return np.sum(((magnitude(pred) - magnitude(gt)) ** 2)[unknown[box]]) / 1000.0


def _connectivity_error_unknown(pred, gt, unknown):
    """pred, gt: float32 (H, W) in [0, 1]; connectivity error summed over unknown pixels / 1000."""
    # l_map is float64 here (``np.ones_like(pred, dtype=float)``). Thresholds are compared in
    # float64 (numpy >= 2 semantics of ``float32_array >= np.float64``; for 8-bit codes numpy
    # 1's float32 comparison gives the same result).
    l_map = _connectivity_levels(
        np.minimum(pred, gt).astype(np.float64), np.float64, count_background=True
    )
    # Elementwise work only on the unknown pixels, in raster order: same values, same sum.
    levels, pred, gt = l_map[unknown], pred[unknown], gt[unknown]
    d_pred = pred - levels
    d_gt = gt - levels
    phi_pred = 1 - d_pred * (d_pred >= CONN_THETA)
    phi_gt = 1 - d_gt * (d_gt >= CONN_THETA)
    return np.sum(np.abs(phi_pred - phi_gt)) / 1000.0


# ---------------------------------------------------------------------------------------------
# Connectivity: the level map l(p)


def _connectivity_levels(both, dtype, count_background):
    """
    The references' ``l_map``: for each pixel, the threshold *before* the first one at which it
    leaves the largest 4-connected component of {pred >= t} & {gt >= t}; 1 if it never leaves.

    Args:
        both: (H, W) float64, min(pred, gt): a pixel is in both thresholded masks iff
            ``both >= t``.
        dtype: dtype of the references' l_map (float32 whole image, float64 unknown region).
        count_background (bool): the unknown-region script picks the most frequent label
            *including* the background label 0 (see ``_largest_component``).

    Same values as the references' loop, faster: connected components from OpenCV with their
    areas (no per-region objects), no distance transform (the whole-image script computes one
    per threshold and never uses it), and the loop stops once it can change nothing (the masks
    shrink as t grows: after an empty mask every later one is empty; once every pixel has its
    level, later iterations assign nothing).
    """
    # left_at[p] = i > 0: p first left the largest component at threshold i; 0: never left.
    left_at = np.zeros(both.shape, dtype=np.uint8)
    inside = np.ones(both.shape, dtype=bool)  # in every largest component so far
    for i in range(1, CONN_THRESHOLDS.size):
        omega = _largest_component(both >= CONN_THRESHOLDS[i], count_background)
        if omega is None:  # empty mask: the references skip it (and all later ones are empty)
            break
        leaving = inside & ~omega
        left_at[leaving] = i
        inside &= omega
        if not inside.any():
            break
    levels = np.empty(CONN_THRESHOLDS.size, dtype=dtype)
    levels[0] = 1  # never left: ``l_map[l_map == -1] = 1``
    levels[1:] = CONN_THRESHOLDS[:-1]  # left at i: thresh_steps[i - 1]
    return levels[left_at]


def _largest_component(mask, count_background):
    """
    The references' largest 4-connected component of a boolean mask, as a boolean mask.

    Returns None when ``mask`` is empty (no component; the references then change nothing).
    Ties are broken like skimage's ``label`` + ``argmax``: the lowest label wins, and skimage
    numbers components in raster order of their first pixel.

    Reference quirk (unknown region, ``count_background=True``): the script takes
    ``argmax(bincount(labels))`` which includes label 0, the pixels *outside* the mask. When
    they outnumber every component (or tie with the largest), the "largest component" is the
    complement of the mask.
    """
    mask_size = np.count_nonzero(mask)
    if mask_size == 0:
        return None
    if count_background and 2 * mask_size <= mask.size:
        # The background has at least as many pixels as all components together, so it wins
        # (label 0 also wins ties): no need to label.
        return ~mask
    num, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    # Areas by label (cheaper than connectedComponentsWithStats, which also builds boxes and
    # centroids); label 0 counts the pixels outside the mask.
    areas = np.bincount(labels[mask], minlength=num)
    areas[0] = mask.size - mask_size
    first = 0 if count_background else 1
    best = areas[first:].max()
    tied = np.flatnonzero(areas[first:] == best) + first
    chosen = tied[0]  # label 0, if tied, comes first in the reference's bincount
    if chosen != 0 and tied.size > 1:
        # OpenCV does not promise raster-order labels: order the tied ones by first pixel.
        flat = labels.ravel()
        chosen = min(tied, key=lambda label_id: int(np.argmax(flat == label_id)))
    return labels == chosen
