"""Reproducible trimap labels (and coarse segmentation-mask labels) from alpha mattes.

Trimap labels follow the paper (Sec. 4.1, "alpha erosion"): the foreground (alpha == 1) and the
background (alpha == 0) of a ground-truth matte are eroded *separately* with elliptical kernels
whose sizes are drawn in [1, 30] for each image (or fixed: Appendix A / Table 6 uses 10, 20, 30);
what neither eroded mask covers is unknown. Mask labels follow Appendix B: the matte thresholded
at a random level, then randomly eroded and/or dilated.

Conventions:

- "alpha == 1" means the largest code of the file's bit depth (255 in an 8-bit file, 65535 in a
  16-bit file, >= 1.0 in a float file) and "alpha == 0" means code 0, with no tolerance: a pixel
  at 254/255 is unknown. For 8-bit files this is what the paper's ``alpha2trimap.py`` computes
  with ``int(alpha + 1e-5)``. :func:`alphafree_d2.data.io.read_alpha` maps these codes to exactly
  1.0 and 0.0, so the tests below are exact float comparisons.
- Kernel sizes are measured at a *reference resolution*: the paper's code resizes each matte to
  640 x 640, erodes with a k x k ellipse, and resizes back. Here the erosion runs at the native
  resolution with the ellipse that this amounts to, ``k * W / 640`` wide and ``k * H / 640`` high
  (at least 1 px), so the band width relative to the image matches the paper without resampling
  the matte twice. ``reference_size=None`` measures kernels in native pixels instead.
- Randomness: each image gets its own generator, derived from the seed and the image *name* (file
  stem) through SHA-256 (:func:`rng_for`), so outputs do not depend on the order, the number of
  worker processes, or the folder the files live in.
- Output files: single-channel 8-bit PNGs named ``<stem>.png`` with values {0, 128, 255}
  (masks: {0, 255}).

:func:`alpha_to_trimap_official` instead reproduces the official code's ``alpha2trimap.py``
step by step (the matte itself resized to 640 x 640 with a random interpolation, kernels in
[1, 29], the trimap resized back with nearest), seeded like the rest of this module.
"""

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
from tqdm import tqdm

from ..utils.file_io import write_json, write_png
from .io import IMAGE_EXTENSIONS, read_alpha

__all__ = [
    "DEFAULT_KERNEL_SIZE_RANGE",
    "DEFAULT_REFERENCE_SIZE",
    "rng_for",
    "erode",
    "dilate",
    "mask_to_trimap",
    "alpha_to_trimap",
    "alpha_to_mask",
    "OFFICIAL_INTERPOLATIONS",
    "OFFICIAL_KERNEL_SIZE_RANGE",
    "draw_official_trimap_params",
    "official_trimap",
    "alpha_to_trimap_official",
    "list_images",
    "record_generation",
    "generate_trimaps",
]

logger = logging.getLogger(__name__)

DEFAULT_KERNEL_SIZE_RANGE = (1, 30)
DEFAULT_REFERENCE_SIZE = 640
GENERATION_FILE = "generation.json"


def rng_for(seed, name):
    """A numpy Generator that depends only on ``seed`` (int) and ``name`` (str).

    Python's ``hash()`` is salted per process, so it is not used; SHA-256 of the name is.
    """
    digest = hashlib.sha256(str(name).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def _ellipse(size, shape, reference_size):
    """Elliptical structuring element for a kernel of ``size`` px at ``reference_size``."""
    if size < 1:
        raise ValueError(f"kernel size must be >= 1, got {size}")
    if reference_size is None:
        kw = kh = int(size)
    else:
        h, w = shape[:2]
        kw = max(1, int(np.floor(size * w / reference_size + 0.5)))
        kh = max(1, int(np.floor(size * h / reference_size + 0.5)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kw, kh))


def erode(mask, size, reference_size=DEFAULT_REFERENCE_SIZE):
    """Erode a boolean mask (H, W) with an elliptical kernel; pixels outside the image count as
    inside the mask, so regions touching the border stay there. Returns bool (H, W)."""
    kernel = _ellipse(size, mask.shape, reference_size)
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def dilate(mask, size, reference_size=DEFAULT_REFERENCE_SIZE):
    """Dilate a boolean mask (H, W) with an elliptical kernel. Returns bool (H, W)."""
    kernel = _ellipse(size, mask.shape, reference_size)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _draw_size(rng, kernel_size, kernel_size_range):
    if kernel_size is not None:
        return int(kernel_size)
    low, high = kernel_size_range
    if not 1 <= low <= high:
        raise ValueError(
            f"kernel_size_range must satisfy 1 <= low <= high, got {kernel_size_range}"
        )
    return int(rng.integers(low, high, endpoint=True))


def mask_to_trimap(
    fg,
    bg=None,
    *,
    rng=None,
    kernel_size=None,
    kernel_size_range=DEFAULT_KERNEL_SIZE_RANGE,
    reference_size=DEFAULT_REFERENCE_SIZE,
):
    """Trimap from a foreground mask (and a background mask, default: its complement).

    Both masks are eroded separately; each kernel size is ``kernel_size`` when given, otherwise
    drawn from ``rng`` uniformly in ``kernel_size_range`` (inclusive), foreground first. For a
    binary mask the unknown band is about ``(k_fg + k_bg) / 2`` reference pixels wide and centred
    on the mask boundary.

    Args:
        fg, bg: bool arrays (H, W).
        rng: ``np.random.Generator``; required unless ``kernel_size`` is given.
    Returns:
        uint8 (H, W) with values {0, 128, 255}.
    """
    fg = np.asarray(fg, dtype=bool)
    bg = ~fg if bg is None else np.asarray(bg, dtype=bool)
    if kernel_size is None and rng is None:
        raise ValueError("mask_to_trimap needs `rng` when `kernel_size` is not fixed")
    fg_size = _draw_size(rng, kernel_size, kernel_size_range)
    bg_size = _draw_size(rng, kernel_size, kernel_size_range)
    trimap = np.full(fg.shape, 128, dtype=np.uint8)
    trimap[erode(fg, fg_size, reference_size)] = 255
    trimap[erode(bg, bg_size, reference_size)] = 0
    return trimap


def alpha_to_trimap(
    alpha,
    *,
    rng=None,
    kernel_size=None,
    kernel_size_range=DEFAULT_KERNEL_SIZE_RANGE,
    reference_size=DEFAULT_REFERENCE_SIZE,
):
    """Trimap label from a matte: erode {alpha == 1} and {alpha == 0} separately (module doc).

    Args:
        alpha: float array (H, W) in [0, 1], as returned by ``read_alpha``.
        rng, kernel_size, kernel_size_range, reference_size: see :func:`mask_to_trimap`.
    Returns:
        uint8 (H, W) with values {0, 128, 255}; every 255 pixel has alpha == 1 and every 0 pixel
        has alpha == 0.
    """
    alpha = np.asarray(alpha, dtype=np.float32)
    return mask_to_trimap(
        alpha >= 1.0,
        alpha <= 0.0,
        rng=rng,
        kernel_size=kernel_size,
        kernel_size_range=kernel_size_range,
        reference_size=reference_size,
    )


def alpha_to_mask(
    alpha,
    *,
    rng,
    threshold_range=(0.01, 1.0),
    kernel_size_range=DEFAULT_KERNEL_SIZE_RANGE,
    reference_size=DEFAULT_REFERENCE_SIZE,
):
    """Coarse segmentation-mask label from a matte (paper, Appendix B).

    The matte is thresholded at a level drawn uniformly in ``threshold_range``; then one of four
    equally likely perturbations is applied: erode, dilate, erode then dilate, or dilate then
    erode, each with an elliptical kernel drawn in ``kernel_size_range``.

    Returns:
        uint8 (H, W) with values {0, 255}.
    """
    alpha = np.asarray(alpha, dtype=np.float32)
    mask = alpha >= rng.uniform(*threshold_range)
    ops = {0: (erode,), 1: (dilate,), 2: (erode, dilate), 3: (dilate, erode)}[int(rng.integers(4))]
    for op in ops:
        mask = op(mask, _draw_size(rng, None, kernel_size_range), reference_size)
    return mask.astype(np.uint8) * 255


# The official alpha2trimap.py: one of these interpolations drawn per matte for its 640 x 640
# resize, and kernel sizes np.random.randint(1, 30), i.e. 1..29 inclusive.
OFFICIAL_INTERPOLATIONS = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)
OFFICIAL_KERNEL_SIZE_RANGE = (1, 29)


def draw_official_trimap_params(rng, kernel_size_range=OFFICIAL_KERNEL_SIZE_RANGE):
    """The random choices of :func:`alpha_to_trimap_official`, in the official script's order:
    ``{"interpolation": one of OFFICIAL_INTERPOLATIONS, "fg_size": int, "bg_size": int}``, the
    sizes uniform in ``kernel_size_range`` (inclusive)."""
    interpolation = OFFICIAL_INTERPOLATIONS[int(rng.integers(len(OFFICIAL_INTERPOLATIONS)))]
    fg_size = _draw_size(rng, None, kernel_size_range)
    bg_size = _draw_size(rng, None, kernel_size_range)
    return {"interpolation": int(interpolation), "fg_size": fg_size, "bg_size": bg_size}


def official_trimap(alpha, *, interpolation, fg_size, bg_size, reference_size=640):
    """The official ``alpha2trimap`` with its random choices given.

    1. Resize the matte to ``reference_size`` x ``reference_size`` with ``interpolation`` (an
       OpenCV flag; cubic and Lanczos may overshoot [0, 1]).
    2. Foreground: alpha >= 1 - 1e-5; background: alpha <= 1e-5 (the script's
       ``int(alpha + 1e-5)`` and ``int(1 - alpha + 1e-5)``). Erode each with a ``k x k``
       elliptical kernel (``fg_size``, ``bg_size``), outside the image counting as inside.
    3. Unknown (128) where neither eroded mask is; background wins where both are.
    4. Resize back to the matte's size with nearest.

    Args:
        alpha: float array (H, W) in [0, 1] (8-bit codes / 255, as the script reads them).
    Returns:
        uint8 (H, W) with values {0, 128, 255}.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    h, w = alpha.shape
    small = cv2.resize(alpha, (reference_size, reference_size), interpolation=interpolation)
    fg = erode(small + 1e-5 >= 1.0, fg_size, reference_size=None)
    bg = erode(1.0 - small + 1e-5 >= 1.0, bg_size, reference_size=None)
    trimap = np.full(small.shape, 128, dtype=np.uint8)
    trimap[fg] = 255
    trimap[bg] = 0
    return cv2.resize(trimap, (w, h), interpolation=cv2.INTER_NEAREST)


def alpha_to_trimap_official(
    alpha, *, rng, kernel_size=None, kernel_size_range=OFFICIAL_KERNEL_SIZE_RANGE
):
    """Trimap label as the official ``alpha2trimap.py`` makes it, with the random choices drawn
    from ``rng`` (:func:`draw_official_trimap_params`); ``kernel_size`` fixes both kernels.
    Returns uint8 (H, W) with values {0, 128, 255} (see :func:`official_trimap`)."""
    params = draw_official_trimap_params(rng, kernel_size_range)
    if kernel_size is not None:
        params["fg_size"] = params["bg_size"] = int(kernel_size)
    return official_trimap(alpha, **params)


def list_images(folder):
    """``{stem: path}`` of the image files directly inside ``folder``, sorted by stem.

    Raises if the folder is missing or two files share a stem (``a.jpg`` and ``a.png``).
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    found = {}
    for entry in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(entry)
        if ext.lower() not in IMAGE_EXTENSIONS or not os.path.isfile(os.path.join(folder, entry)):
            continue
        if stem in found:
            raise ValueError(
                f"{folder}: two files have the stem {stem!r} ({os.path.basename(found[stem])}, "
                f"{entry}); names must be unique without their extension"
            )
        found[stem] = os.path.join(folder, entry)
    return dict(sorted(found.items()))


def record_generation(folder, params, *, overwrite=False, remedy="choose another folder"):
    """Create ``folder`` and record the generation ``params`` (a JSON-able dict) in its
    ``generation.json``. Raises if the folder already records other parameters, unless
    ``overwrite``, so that labels made with different settings are never mixed."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, GENERATION_FILE)
    if os.path.isfile(path) and not overwrite:
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous == params:
            return
        raise ValueError(f"{folder} holds labels generated with {previous}, not {params}: {remedy}")
    write_json(path, params)


def _generate_one(job):
    alpha_path, out_path, name, params = job
    alpha = read_alpha(alpha_path)
    rng = rng_for(params["seed"], name)
    if params["mode"] == "trimap_official":
        label = alpha_to_trimap_official(
            alpha,
            rng=rng,
            kernel_size=params["kernel_size"],
            kernel_size_range=params["kernel_size_range"],
        )
    elif params["mode"] == "mask":
        label = alpha_to_mask(
            alpha,
            rng=rng,
            kernel_size_range=params["kernel_size_range"],
            reference_size=params["reference_size"],
        )
    else:
        label = alpha_to_trimap(
            alpha,
            rng=rng,
            kernel_size=params["kernel_size"],
            kernel_size_range=params["kernel_size_range"],
            reference_size=params["reference_size"],
        )
    write_png(out_path, label)
    return name


def generate_trimaps(
    alpha_dir,
    output_dir,
    *,
    seed=0,
    kernel_size=None,
    kernel_size_range=None,
    reference_size=DEFAULT_REFERENCE_SIZE,
    mask=False,
    official=False,
    workers=1,
    overwrite=False,
    progress=True,
):
    """Write one label PNG per matte of ``alpha_dir`` into ``output_dir`` (``<stem>.png``).

    Trimaps by default (:func:`alpha_to_trimap`), the official script's trimaps with
    ``official=True`` (:func:`alpha_to_trimap_official`: always at 640 x 640, so
    ``reference_size`` does not apply), coarse masks with ``mask=True`` (:func:`alpha_to_mask`;
    ``kernel_size`` does not apply). ``kernel_size_range`` defaults to [1, 30], or [1, 29] with
    ``official=True`` (the script's ``randint(1, 30)``). Same seed and parameters give
    byte-identical files whatever ``workers`` is. The parameters are recorded in
    ``output_dir/generation.json``; existing outputs are kept unless ``overwrite``, and keeping
    outputs made with other parameters is refused.

    Returns:
        dict with ``total``, ``written`` and ``kept`` (existing outputs left as they were).
    """
    if mask and kernel_size is not None:
        raise ValueError(
            "kernel_size applies to trimaps; masks draw their kernels in kernel_size_range"
        )
    if mask and official:
        raise ValueError("mask=True and official=True do not combine: choose one kind of label")
    if kernel_size_range is None:
        kernel_size_range = OFFICIAL_KERNEL_SIZE_RANGE if official else DEFAULT_KERNEL_SIZE_RANGE
    if official:
        reference_size = 640
    params = {
        "mode": "mask" if mask else "trimap_official" if official else "trimap",
        "seed": int(seed),
        "kernel_size": None if kernel_size is None else int(kernel_size),
        "kernel_size_range": [int(v) for v in kernel_size_range],
        "reference_size": None if reference_size is None else int(reference_size),
    }
    alphas = list_images(alpha_dir)
    if not alphas:
        raise FileNotFoundError(
            f"{alpha_dir}: no alpha mattes ({', '.join(IMAGE_EXTENSIONS)}) in it"
        )
    record_generation(
        output_dir,
        params,
        overwrite=overwrite,
        remedy="pass overwrite=True (--overwrite) or choose another output folder",
    )

    jobs, kept = [], 0
    for name, path in alphas.items():
        out_path = os.path.join(output_dir, name + ".png")
        if os.path.exists(out_path) and not overwrite:
            kept += 1
        else:
            jobs.append((path, out_path, name, params))
    bar = tqdm(total=len(jobs), desc=f"{params['mode']}s", unit="img", disable=not progress)
    with bar:
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(
                    _generate_one, jobs, chunksize=max(1, len(jobs) // (8 * workers))
                ):
                    bar.update()
        else:
            for job in jobs:
                _generate_one(job)
                bar.update()
    if kept:
        logger.info(f"{output_dir}: kept {kept} existing labels (overwrite=True regenerates them)")
    return {"total": len(alphas), "written": len(jobs), "kept": kept}
