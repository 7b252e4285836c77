"""Training augmentations of the paper (Sec. 4.1, "Training setting"), as detectron2 Augmentations.

- AM-2K: random scale with a factor in [0.5, 2], random 512 x 512 crop, horizontal flip (p=0.5).
- P3M-10K: random 512 x 512 crop only.

"Random scale" means what the paper's code (``RandomScale`` in poppuppy/alpha-free-matting, from
the GCA-Matting/ViTMatte family of loaders) does: one factor ``s ~ U(0.5, 2)`` multiplies the
image's *own* height and width. detectron2's ``T.ResizeScale`` is different: it scales a fixed
target box and fits the image into it, so the output size does not depend on the input size
(large-scale jitter). Hence the small :class:`RandomScale` below.

"Random crop" is ``T.RandomCrop("absolute", size)`` (independent uniform offsets along x and y)
followed by ``T.FixedSizeCrop(size, pad=True)``, which then only pads inputs smaller than the crop.
``T.FixedSizeCrop`` alone is not used for cropping because it draws one offset fraction for both
axes, so its crops only slide along the image diagonal.
"""

import numpy as np
from PIL import Image

from detectron2.data import transforms as T

__all__ = ["RandomScale", "build_matting_augmentations"]


class RandomScale(T.Augmentation):
    """Resize by a factor drawn uniformly in [min_scale, max_scale] of the input's own size
    (aspect ratio kept; output sides rounded, at least 1 px)."""

    def __init__(self, min_scale: float, max_scale: float, interp: int = Image.BILINEAR):
        """
        Args:
            min_scale, max_scale: range of the scale factor, 0 < min_scale <= max_scale.
            interp: PIL interpolation for the image (labels use nearest, see the mapper).
        """
        super().__init__()
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        self._init(locals())

    def get_transform(self, image):
        h, w = image.shape[:2]
        scale = np.random.uniform(self.min_scale, self.max_scale)
        new_h, new_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        return T.ResizeTransform(h, w, new_h, new_w, self.interp)


def build_matting_augmentations(
    recipe="am2k", crop_size=512, scale_range=(0.5, 2.0), flip_prob=0.5, pad_value=128.0
):
    """The paper's training augmentations as a list for :class:`MattingDatasetMapper`.

    Args:
        recipe: ``"am2k"``: ``[RandomScale(*scale_range), T.RandomCrop("absolute", crop_size),
            T.FixedSizeCrop(crop_size, pad=True), T.RandomFlip(horizontal=True)]``;
            ``"p3m"``: ``[T.RandomCrop("absolute", crop_size), T.FixedSizeCrop(crop_size, pad=True)]``.
        crop_size (int or (h, w)): output size in pixels (paper: 512).
        scale_range: (min, max) factor of :class:`RandomScale` (am2k only).
        flip_prob: probability of ``T.RandomFlip(horizontal=True)`` (am2k only).
        pad_value: image value (0-255) of the padding ``T.FixedSizeCrop`` adds to inputs smaller
            than the crop (bottom/right). The mapper labels padding as unknown (trimap 0.5) and
            alpha 0 whatever ``seg_pad_value`` says.

    Returns:
        list[detectron2.data.transforms.Augmentation]

    In a LazyConfig::

        L(MattingDatasetMapper)(
            is_train=True,
            augmentations=L(build_matting_augmentations)(recipe="am2k", crop_size=512),
        )
    """
    if isinstance(crop_size, int):
        crop_size = (crop_size, crop_size)
    crop = [
        T.RandomCrop("absolute", tuple(crop_size)),
        T.FixedSizeCrop(tuple(crop_size), pad=True, pad_value=float(pad_value)),
    ]
    if recipe == "am2k":
        return [RandomScale(*scale_range), *crop, T.RandomFlip(prob=flip_prob, horizontal=True)]
    if recipe == "p3m":
        return crop
    raise ValueError(f"unknown augmentation recipe {recipe!r}: expected 'am2k' or 'p3m'")
