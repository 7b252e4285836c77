"""Training augmentations of the paper (Sec. 4.1, "Training setting"), as detectron2 Augmentations.

- AM-2K: random scale with a factor in [0.5, 2], random 512 x 512 crop, horizontal flip (p=0.5).
- P3M-10K: random 512 x 512 crop only.

"Random scale" means what the paper's code (``RandomScale`` in poppuppy/alpha-free-matting, from
the GCA-Matting/ViTMatte family of loaders) does: one factor ``s ~ U(0.5, 2)`` multiplies the
image's *own* height and width. detectron2's ``T.ResizeScale`` is different: it scales a fixed
target box and fits the image into it, so the output size does not depend on the input size
(large-scale jitter). Hence the small :class:`RandomScale` below.

Where the crop goes is a *crop policy*:

- ``"unknown_centred"``: what the paper's official loader does (its ``RandomCrop``, inherited
  from ViTMatte): the crop is centred on a random unknown trimap pixel, small images are enlarged
  instead of padded, and an image without any unknown pixel is resized to the crop
  (:class:`UnknownCentredCrop`). Crops then nearly always contain a transition band, the only
  place where the DDC loss has something to learn.
- ``"uniform"``: ``T.RandomCrop("absolute", size)`` (independent uniform offsets along x and y)
  followed by ``T.FixedSizeCrop(size, pad=True)``, which then only pads inputs smaller than the
  crop (the mapper marks that padding so that no loss supervises it). ``T.FixedSizeCrop`` alone
  is not used for cropping because it draws one offset fraction for both axes, so its crops only
  slide along the image diagonal.
"""

import numpy as np
from PIL import Image

from detectron2.data import transforms as T

__all__ = [
    "CROP_POLICIES",
    "SEG_BACKGROUND",
    "SEG_UNKNOWN",
    "SEG_FOREGROUND",
    "RandomScale",
    "UnknownCentredCrop",
    "build_matting_augmentations",
]

# Classes of the trimap while it travels through the transforms as ``sem_seg`` (see
# MattingDatasetMapper): any other value (what a transform fills in) reads back as unknown.
SEG_BACKGROUND, SEG_UNKNOWN, SEG_FOREGROUND = 1, 2, 3

CROP_POLICIES = ("unknown_centred", "uniform")


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


class UnknownCentredCrop(T.Augmentation):
    """A fixed-size crop centred on a random unknown pixel of the trimap; never pads.

    Reads the trimap as ``sem_seg`` (classes as in :class:`MattingDatasetMapper`), like
    ``T.RandomCrop_CategoryAreaConstraint`` does. For an input of H x W and a crop of h x w:

    1. **Enlarge small inputs.** While ``H <= h`` or ``W <= w``, resize by the factor
       ``1.1 * max(h / H0, w / W0)`` (H0 x W0: the input's size; for a square crop this is
       1.1 x crop / short side), sides truncated to integers; image with ``interp``, trimap and
       alpha as the mapper does (nearest, bilinear).
    2. **No unknown pixel at all** (after step 1): resize the whole input to h x w instead of
       cropping (aspect ratio not kept).
    3. **Candidates**: the unknown pixels of a 4x-subsampled trimap (every 4th row and column,
       ``stride``) whose crop fits inside the image, i.e. at least ``h // 2`` / ``w // 2`` px from
       the top/left and ``h - h // 2`` / ``w - w // 2`` px from the bottom/right borders.
    4. With at least ``min_candidates`` of them, one is drawn uniformly and the crop is placed
       with its top-left at (y - h // 2, x - w // 2): that pixel is the crop's centre pixel.
       With fewer, the crop's offsets are drawn uniformly (as ``T.RandomCrop``).

    The output is always h x w. The paper's official code does the same with two differences of
    detail: it lists candidates on a nearest-resized quarter-size trimap (whose samples are not
    exactly every 4th pixel when a side is not a multiple of 4), and draws the image's
    interpolation at random.
    """

    def __init__(
        self,
        crop_size,
        *,
        unknown_value: int = SEG_UNKNOWN,
        stride: int = 4,
        min_candidates: int = 10,
        enlarge_factor: float = 1.1,
        interp: int = Image.BILINEAR,
    ):
        """
        Args:
            crop_size (int or (h, w)): output size in pixels.
            unknown_value: value of unknown pixels in ``sem_seg``.
            stride: subsampling of the trimap when listing candidate centres (official code: 4).
            min_candidates: fewer candidates than this falls back to a uniform crop (official: 10).
            enlarge_factor: small inputs grow to this multiple of the crop (official: 1.1; > 1).
            interp: PIL interpolation of the image when it is resized.
        """
        super().__init__()
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        crop_size = tuple(int(v) for v in crop_size)
        if len(crop_size) != 2 or min(crop_size) < 1:
            raise ValueError(f"crop_size must be a positive int or (h, w), got {crop_size}")
        if enlarge_factor <= 1 or stride < 1:
            raise ValueError(
                f"need enlarge_factor > 1 and stride >= 1, got {enlarge_factor}, {stride}"
            )
        self._init(locals())

    def get_transform(self, image, sem_seg):
        if sem_seg is None:
            raise ValueError(
                "UnknownCentredCrop needs the trimap as sem_seg (MattingDatasetMapper passes it)"
            )
        ch, cw = self.crop_size
        h0, w0 = image.shape[:2]
        h, w = h0, w0
        transforms = []
        ratio = self.enlarge_factor * max(ch / h0, cw / w0)
        while h <= ch or w <= cw:
            new_h, new_w = int(h * ratio), int(w * ratio)
            transforms.append(T.ResizeTransform(h, w, new_h, new_w, self.interp))
            h, w = new_h, new_w
        unknown = sem_seg == self.unknown_value
        if transforms:
            unknown = T.TransformList(transforms).apply_segmentation(unknown.astype(np.uint8)) > 0
        if not unknown.any():
            return T.ResizeTransform(h0, w0, ch, cw, self.interp)

        top, left = ch // 2, cw // 2
        s = self.stride
        # grid points y = s * i with top <= y <= h - (ch - top), likewise x
        y_first, x_first = -(-top // s), -(-left // s)
        grid = unknown[y_first * s : h - (ch - top) + 1 : s, x_first * s : w - (cw - left) + 1 : s]
        ys, xs = np.nonzero(grid)
        if len(ys) >= self.min_candidates:
            k = np.random.randint(len(ys))
            y0 = (ys[k] + y_first) * s - top
            x0 = (xs[k] + x_first) * s - left
        else:
            y0 = np.random.randint(h - ch + 1)
            x0 = np.random.randint(w - cw + 1)
        transforms.append(T.CropTransform(int(x0), int(y0), cw, ch, orig_w=w, orig_h=h))
        return T.TransformList(transforms)


def build_matting_augmentations(
    recipe="am2k",
    crop_size=512,
    scale_range=(0.5, 2.0),
    flip_prob=0.5,
    pad_value=128.0,
    crop_policy="unknown_centred",
):
    """The paper's training augmentations as a list for :class:`MattingDatasetMapper`.

    Args:
        recipe: ``"am2k"`` (the paper's text for AM-2K): ``[RandomScale(*scale_range), crop,
            T.RandomFlip(horizontal=True)]``; ``"p3m"`` (the paper's text for P3M-10K) and
            ``"crop_only"`` (the official code's loader for both datasets): ``[crop]``.
        crop_size (int or (h, w)): output size in pixels (paper: 512).
        crop_policy: ``"unknown_centred"``: crop is ``[UnknownCentredCrop(crop_size)]``;
            ``"uniform"``: ``[T.RandomCrop("absolute", crop_size), T.FixedSizeCrop(crop_size,
            pad=True)]`` (see the module docstring).
        scale_range: (min, max) factor of :class:`RandomScale` (am2k only).
        flip_prob: probability of ``T.RandomFlip(horizontal=True)`` (am2k only).
        pad_value: image value (0-255) of the padding ``T.FixedSizeCrop`` adds to inputs smaller
            than the crop (bottom/right; ``"uniform"`` only). The mapper labels padding as unknown
            (trimap 0.5) whatever ``seg_pad_value`` says, and marks it in the alpha so that no
            loss supervises it.

    Returns:
        list[detectron2.data.transforms.Augmentation]

    In a LazyConfig::

        L(MattingDatasetMapper)(
            is_train=True,
            augmentations=L(build_matting_augmentations)(
                recipe="am2k", crop_size=512, crop_policy="unknown_centred"
            ),
        )
    """
    if isinstance(crop_size, int):
        crop_size = (crop_size, crop_size)
    crop_size = tuple(crop_size)
    if crop_policy == "unknown_centred":
        crop = [UnknownCentredCrop(crop_size)]
    elif crop_policy == "uniform":
        crop = [
            T.RandomCrop("absolute", crop_size),
            T.FixedSizeCrop(crop_size, pad=True, pad_value=float(pad_value)),
        ]
    else:
        raise ValueError(
            f"unknown crop_policy {crop_policy!r}: expected one of {', '.join(CROP_POLICIES)}"
        )
    if recipe == "am2k":
        return [RandomScale(*scale_range), *crop, T.RandomFlip(prob=flip_prob, horizontal=True)]
    if recipe in ("p3m", "crop_only"):
        return crop
    raise ValueError(
        f"unknown augmentation recipe {recipe!r}: expected 'am2k', 'p3m' or 'crop_only'"
    )
