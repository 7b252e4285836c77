"""Example photos offered by the demo page: a few made or shipped with the package's own
dependencies (no download), plus the images of a folder the user names, each with its trimap
when one is known."""

import functools
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from ..data.io import IMAGE_EXTENSIONS, read_trimap
from ..inference.batch import read_input_image

__all__ = ["Example", "builtin_examples", "folder_examples", "TRIMAP_FOLDER"]

# Photographs shipped with scikit-image (skimage.data), with fur or hair at their edges.
_SKIMAGE_PHOTOS = ("chelsea", "astronaut")
_COMPOSITE_SIZE = (320, 384)  # (height, width) of the procedural examples
_COMPOSITE_SEED = 0
_COMPOSITE_BAND = 12  # px: the unknown band of the procedural examples' trimaps
TRIMAP_FOLDER = "trimap"  # --examples DIR: DIR/trimap/<stem>.<ext> is the trimap of DIR/<stem>.*


@dataclass(frozen=True)
class Example:
    """An example photo: ``image()`` gives uint8 (H, W, 3) RGB, ``trimap()`` (when not None)
    uint8 (H, W) {0, 128, 255} at the same size. Both are called when first used."""

    image: Callable[[], np.ndarray]
    trimap: Optional[Callable[[], np.ndarray]] = None
    trimap_name: str = ""  # the trimap's file, for messages


@functools.lru_cache(maxsize=2)
def _composite(index: int):
    from ..data.datasets.demo_render import render_demo_sample
    from ..data.trimap import alpha_to_trimap, rng_for

    rng = rng_for(_COMPOSITE_SEED, f"demo_app_{index}")
    image, alpha = render_demo_sample(rng, *_COMPOSITE_SIZE)
    return image, alpha_to_trimap(alpha, kernel_size=_COMPOSITE_BAND, reference_size=None)


def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)()[:, :, :3])


def builtin_examples() -> Dict[str, Example]:
    """Two procedural composites like the demo dataset's (``alphafree_d2.data.datasets.demo``,
    unseen samples; trimap: their true alpha eroded by 12 px) and the skimage photos (no
    trimap)."""
    examples = {
        f"composite_{i}": Example(
            image=lambda i=i: _composite(i)[0],
            trimap=lambda i=i: _composite(i)[1],
            trimap_name=f"composite_{i} (its true alpha, eroded)",
        )
        for i in (1, 2)
    }
    for name in _SKIMAGE_PHOTOS:
        examples[name] = Example(image=lambda name=name: _skimage_photo(name))
    return examples


def _images(folder):
    return sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith(".")
        and name.lower().endswith(IMAGE_EXTENSIONS)
        and os.path.isfile(os.path.join(folder, name))
    )


def folder_examples(folder: str) -> Dict[str, Example]:
    """file name -> :class:`Example`, for the images directly in ``folder`` (sorted by name);
    ``folder/trimap/<stem>.<ext>`` (any image type, the first in
    :data:`~alphafree_d2.data.io.IMAGE_EXTENSIONS` order) is the trimap of ``<stem>.*``, read
    with :func:`~alphafree_d2.data.io.read_trimap`.

    Raises:
        ValueError: ``folder`` is not a folder or holds no image.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"--examples {folder}: not a folder")
    files = _images(folder)
    if not files:
        raise ValueError(f"--examples {folder}: no images in it ({', '.join(IMAGE_EXTENSIONS)})")
    trimap_folder = os.path.join(folder, TRIMAP_FOLDER)
    trimaps = {}
    if os.path.isdir(trimap_folder):
        for name in sorted(
            _images(trimap_folder),
            key=lambda n: IMAGE_EXTENSIONS.index(os.path.splitext(n)[1].lower()),
        ):
            trimaps.setdefault(os.path.splitext(name)[0], os.path.join(trimap_folder, name))
    examples = {}
    for name in files:
        path = os.path.join(folder, name)
        trimap = trimaps.get(os.path.splitext(name)[0])
        examples[name] = Example(
            image=lambda path=path: read_input_image(path),
            trimap=None if trimap is None else (lambda trimap=trimap: read_trimap(trimap)),
            trimap_name=trimap or "",
        )
    return examples
