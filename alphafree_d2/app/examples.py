"""Example photos offered by the demo page: a few made or shipped with the package's own
dependencies (no download), plus the images of a folder the user names."""

import os
from typing import Callable, Dict

import numpy as np

from ..data.io import IMAGE_EXTENSIONS
from ..inference.batch import read_input_image

__all__ = ["builtin_examples", "folder_examples"]

# Photographs shipped with scikit-image (skimage.data), with fur or hair at their edges.
_SKIMAGE_PHOTOS = ("chelsea", "astronaut")
_COMPOSITE_SIZE = (320, 384)  # (height, width) of the procedural examples
_COMPOSITE_SEED = 0


def _composite(index: int) -> np.ndarray:
    from ..data.datasets.demo_render import render_demo_sample
    from ..data.trimap import rng_for

    rng = rng_for(_COMPOSITE_SEED, f"demo_app_{index}")
    image, _ = render_demo_sample(rng, *_COMPOSITE_SIZE)
    return image


def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)()[:, :, :3])


def builtin_examples() -> Dict[str, Callable[[], np.ndarray]]:
    """name -> loader of a uint8 (H, W, 3) RGB image: two procedural composites like the demo
    dataset's (``alphafree_d2.data.datasets.demo``, unseen samples) and the skimage photos."""
    examples = {f"composite_{i}": (lambda i=i: _composite(i)) for i in (1, 2)}
    for name in _SKIMAGE_PHOTOS:
        examples[name] = lambda name=name: _skimage_photo(name)
    return examples


def folder_examples(folder: str) -> Dict[str, Callable[[], np.ndarray]]:
    """file name -> loader, for the images directly in ``folder`` (sorted by name).

    Raises:
        ValueError: ``folder`` is not a folder or holds no image.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"--examples {folder}: not a folder")
    files = sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise ValueError(f"--examples {folder}: no images in it ({', '.join(IMAGE_EXTENSIONS)})")
    examples = {}
    for name in files:
        path = os.path.join(folder, name)
        examples[name] = lambda path=path: read_input_image(path)
    return examples
