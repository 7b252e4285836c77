import copy
import logging

import numpy as np
import torch
from PIL import Image

from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .augmentation import SEG_BACKGROUND as _SEG_BG
from .augmentation import SEG_FOREGROUND as _SEG_FG
from .augmentation import SEG_UNKNOWN as _SEG_UNKNOWN
from .augmentation import build_matting_augmentations
from .io import get_max_pixels, read_alpha, read_image, read_trimap

__all__ = ["MattingDatasetMapper", "IGNORED_ALPHA"]

# The trimap travels through the transforms as a segmentation map with the classes of
# augmentation.py, so that whatever a transform fills in (padding, rotated corners; any other
# value) reads back as unknown.

# Alpha of the pixels that transforms add (crop padding, rotated corners): negative, so that the
# losses that read the ground-truth alpha leave them out (see modeling.losses.alpha_l1_loss).
IGNORED_ALPHA = -1.0


def _trimap_to_seg(trimap):
    """{0, 128, 255} uint8 trimap -> {1, 2, 3} uint8 segmentation map."""
    seg = np.full(trimap.shape, _SEG_UNKNOWN, dtype=np.uint8)
    seg[trimap == 0] = _SEG_BG
    seg[trimap == 255] = _SEG_FG
    return seg


def _seg_to_label(seg):
    """{1, 2, 3} segmentation map (plus fill values) -> float32 label {0, 0.5, 1}."""
    label = np.full(seg.shape, 0.5, dtype=np.float32)
    label[seg == _SEG_BG] = 0.0
    label[seg == _SEG_FG] = 1.0
    return label


# Transforms that change colours, not geometry: they leave the matte alone.
_PHOTOMETRIC = (T.BlendTransform, T.ColorTransform)


def _apply_geometry(transforms, array):
    """Apply the geometric transforms to a float (H, W) array with the image's interpolation;
    padding is filled with 0, photometric transforms are skipped."""
    for t in transforms.transforms:
        if isinstance(t, _PHOTOMETRIC):
            continue
        if isinstance(t, T.PadTransform):
            array = T.PadTransform(t.x0, t.y0, t.x1, t.y1, pad_value=0.0).apply_image(array)
        elif isinstance(t, T.ResizeTransform) and t.interp == Image.NEAREST:
            # detectron2 resizes float arrays with torch, whose "nearest" samples other pixels
            # than PIL's (used for the uint8 image): resize as a float PIL image instead.
            resized = Image.fromarray(np.asarray(array, np.float32), mode="F")
            array = np.asarray(resized.resize((t.new_w, t.new_h), Image.NEAREST))
        else:
            array = t.apply_image(array)
    return array


def _transform_alpha(transforms, alpha):
    """The float (H, W) matte through the geometric transforms, clipped to [0, 1]; pixels that
    the transforms added, or mixed with added ones by more than 1 % (padding, rotated corners),
    are ``IGNORED_ALPHA``."""
    covered = _apply_geometry(transforms, np.ones(alpha.shape, np.float32))
    alpha = np.clip(_apply_geometry(transforms, alpha), 0.0, 1.0)
    alpha[covered < 0.99] = IGNORED_ALPHA  # more than 1 % of the value is fill
    return alpha


class MattingDatasetMapper:
    """
    Turn a matting dataset record into a model input, with the trimap as the label.

    Steps:

    1. Read the image (``file_name``) as uint8 RGB or BGR (``image_format``): grayscale is
       replicated, an alpha channel dropped, 16-bit scaled to 8-bit. Check its size against the
       record's ``height``/``width``.
    2. Read the trimap (``trimap_file_name``) and snap it to {0, 128, 255} with JPEG-safe thresholds
       (< 85 -> 0, >= 170 -> 255, otherwise 128); a 0/255 mask label stays binary. A record's
       ``trimap_encoding`` ("labels012" for 0/1/2 label maps) is passed to ``read_trimap``,
       which refuses files that do not read as trimaps. Read the alpha
       (``alpha_file_name``) as float in [0, 1] when the record has one. Raise if a label's size
       differs from the image's, naming both files.
    3. Apply ``augmentations`` (a ``T.AugmentationList``) to ``T.AugInput(image, sem_seg=...)``:
       the image with its own interpolation, the trimap as a segmentation map (nearest), so values
       stay exact. The same geometric transforms are applied to the alpha (bilinear; photometric
       ones such as ``T.RandomBrightness`` are skipped). Pixels that transforms add (crop
       padding, rotated corners) are unknown in the trimap and ``IGNORED_ALPHA`` (-1) in the
       alpha, so that no loss supervises them (the known loss ignores unknown pixels, the alpha
       losses negative alphas). Augmentations see the trimap as ``sem_seg`` with classes 1
       (background), 2 (unknown), 3 (foreground), e.g. :class:`UnknownCentredCrop`.
    4. Return a deep copy of the record plus ``"image"`` (uint8 tensor (3, H, W)), ``"trimap"``
       (float32 (1, H, W), values exactly {0, 0.5, 1}) and ``"alpha"`` (float32 (1, H, W), in
       [0, 1] or ``IGNORED_ALPHA`` on added pixels, only when the record has
       ``alpha_file_name``). ``"height"``/``"width"`` keep the original image size.

    Training (``is_train=True``) requires a trimap. For testing, pass no augmentations: the
    output is the full image at its original size, for the evaluator.

    Every file is refused before decoding when it declares more than ``max_pixels`` pixels
    (:class:`~alphafree_d2.data.io.ImageTooLargeError`). The cap is an attribute of the mapper,
    so it holds in the data loader's worker processes however they are started.
    """

    @configurable
    def __init__(
        self, is_train: bool, *, augmentations, image_format: str = "RGB", max_pixels=None
    ):
        """
        Args:
            is_train: whether the mapper is used for training (a trimap label is then required).
            augmentations: list of ``T.Augmentation`` / ``T.Transform``, e.g. from
                :func:`build_matting_augmentations`; empty for testing.
            image_format: ``"RGB"`` or ``"BGR"``, channel order of the output image.
            max_pixels: the pixel cap of the files read (None: the process's cap when the
                mapper is made, :func:`alphafree_d2.data.io.get_max_pixels`; configs set it
                from ``dataloader.max_pixels``).
        """
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
        if max_pixels is None:
            max_pixels = get_max_pixels()
        elif not (isinstance(max_pixels, int) and not isinstance(max_pixels, bool)) or (
            max_pixels < 1
        ):
            raise ValueError(f"max_pixels must be None or an integer >= 1, got {max_pixels!r}")
        self.max_pixels = max_pixels
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info(
            f"[MattingDatasetMapper] Augmentations used in {mode}: {augmentations}"
        )

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        # yacs-style configs: the AM-2K recipe (crops centred on the unknown band) at
        # cfg.INPUT.CROP.SIZE when it is absolute.
        crop = cfg.INPUT.CROP.SIZE if cfg.INPUT.CROP.TYPE == "absolute" else (512, 512)
        augs = build_matting_augmentations("am2k", crop_size=tuple(crop)) if is_train else []
        return {"is_train": is_train, "augmentations": augs, "image_format": cfg.INPUT.FORMAT}

    def __call__(self, dataset_dict):
        """
        Args:
            dataset_dict (dict): a record from ``DatasetCatalog`` (see the class docstring).
        Returns:
            dict: the record plus "image", "trimap" and, when available, "alpha".
        """
        dataset_dict = copy.deepcopy(dataset_dict)
        image_file = dataset_dict["file_name"]
        image = read_image(image_file, self.image_format, max_pixels=self.max_pixels)
        utils.check_image_size(dataset_dict, image)

        trimap_file = dataset_dict.get("trimap_file_name")
        if trimap_file is None and self.is_train:
            raise KeyError(
                f"{image_file}: the record has no 'trimap_file_name'; training needs a trimap label"
            )
        encoding = dataset_dict.get("trimap_encoding", "gray")
        cap = self.max_pixels
        trimap = None if trimap_file is None else read_trimap(trimap_file, encoding, cap)
        alpha_file = dataset_dict.get("alpha_file_name")
        alpha = None if alpha_file is None else read_alpha(alpha_file, cap)
        for label, label_file in ((trimap, trimap_file), (alpha, alpha_file)):
            if label is not None and label.shape != image.shape[:2]:
                raise ValueError(
                    f"size mismatch: image {image_file} is {image.shape[1]}x{image.shape[0]} (WxH) "
                    f"but its label {label_file} is {label.shape[1]}x{label.shape[0]}"
                )

        aug_input = T.AugInput(image, sem_seg=None if trimap is None else _trimap_to_seg(trimap))
        transforms = self.augmentations(aug_input)
        image = aug_input.image

        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if trimap is not None:
            dataset_dict["trimap"] = torch.from_numpy(_seg_to_label(aug_input.sem_seg))[None]
        if alpha is not None:
            alpha = _transform_alpha(transforms, alpha).astype(np.float32)
            dataset_dict["alpha"] = torch.from_numpy(np.ascontiguousarray(alpha))[None]
        return dataset_dict
