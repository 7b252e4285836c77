"""How a matting model meets images larger than it can afford to see whole.

detectron2's ViT has global-attention blocks whose attention matrices grow with the square of
the number of 16x16 patches: a 3840x2160 photo is 32,640 tokens, and one (heads, N, N) float32
matrix of ViT-S is 25.6 GB (detectron2 materialises about three of them at once). The
detail-capture decoder, by contrast, is convolutional and costs memory linear in the pixels.

:class:`HighResolutionPolicy` ("guided", the default) therefore splits the work:

1. images with at most ``max_megapixels`` run unchanged through
   :meth:`~alphafree_d2.modeling.meta_arch.ViTMatte.predict_alpha` (the evaluation path);
2. larger images are padded as ``predict_alpha`` pads them, and the ViT sees a copy of the
   padded frame downscaled (bilinear, antialiased) to about ``max_megapixels`` - this is the
   global pass that decides what is foreground;
3. the decoder runs at full resolution on the full-resolution image, with the ViT feature map
   upsampled to its grid (the decoder resizes the feature map to its own grid anyway), in
   overlapping tiles: each tile carries ``tile_margin`` pixels of context on every side that are
   computed and thrown away, so the tiles' kept interiors equal an untiled decoder pass.

Memory is then bounded by the ViT at ``max_megapixels`` plus one decoder tile plus a few
full-resolution planes (the image, the alpha and the upsampled feature map).

Quality trade-off, stated plainly: the decoder was trained with ViT features at 1/16 of its
input resolution; above the budget it receives features from a coarser view (for a 4K photo with
the default 1 MP budget, one token covers ~60x60 pixels instead of 16x16), upsampled. Edges
still come from full-resolution image evidence through the detail stream, but whether a thin
structure (hair, fur, mesh) belongs to the foreground is decided at the coarser scale, so such
structures tend to come out softer or partly missed compared with a (memory-permitting)
full-resolution pass. Raise ``max_megapixels`` when memory allows. The alternative ``"resize"``
mode runs the whole model on the downscaled copy and upsamples alpha bilinearly: cheaper, but all
detail finer than the downscaled grid is lost (blurred edges). Neither mode has been measured
against ground truth on real 4K photos; ``benchmarks/inference.py`` measures their cost, and with
``--quality-checkpoint`` compares them with the full-resolution pass on the small demo_val images
downscaled for the ViT as a 4K photo is.
"""

import logging
import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..modeling.decoder import decode_tiled

# decode_tiled lives with the decoder (alphafree_d2.modeling.decoder); re-exported here.
__all__ = ["HighResolutionPolicy", "predict_alpha_highres", "decode_tiled"]

logger = logging.getLogger(__name__)

MODES = ("guided", "resize")


@dataclass(frozen=True)
class HighResolutionPolicy:
    """What to do with images above a pixel budget (see the module docstring).

    Attributes:
        max_megapixels: pixel budget of the ViT pass, in millions of pixels (1.0 ~ 1024x1024,
            4096 tokens). Images within it run at full resolution through ``predict_alpha``.
        mode: "guided" (ViT on a downscaled copy, decoder at full resolution in tiles) or
            "resize" (everything on the downscaled copy, alpha upsampled bilinearly).
        tile_size: side in pixels of the part of each decoder tile that is kept ("guided").
        tile_margin: context in pixels added on each side of a decoder tile and discarded. It
            must cover the decoder's receptive field (about 45 px for :class:`DetailCapture`
            with three conv stages) for tiles to equal an untiled pass.
    """

    max_megapixels: float = 1.0
    mode: str = "guided"
    tile_size: int = 1536
    tile_margin: int = 64

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"high-resolution mode must be one of {MODES}, got {self.mode!r}")
        if not self.max_megapixels > 0:
            raise ValueError(f"max_megapixels must be > 0, got {self.max_megapixels}")
        for name in ("tile_size", "tile_margin"):
            value = getattr(self, name)
            if value % 32 or value < (32 if name == "tile_size" else 0):
                raise ValueError(f"{name} must be a non-negative multiple of 32, got {value}")

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)


def _budget_size(height, width, max_pixels, multiple):
    """(h, w) with about ``max_pixels`` pixels, the aspect ratio of (height, width), each a
    multiple of ``multiple`` (at least one multiple)."""
    scale = math.sqrt(max_pixels / (height * width))
    return tuple(
        max(multiple, int(round(s * scale / multiple)) * multiple) for s in (height, width)
    )


def _resize(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _resize_trimap(trimap, size):
    """(B, 1, H, W) trimap in {0, 0.5, 1} -> ``size`` by nearest neighbour (values kept)."""
    return F.interpolate(trimap, size=size, mode="nearest-exact")


def _resize_input(x, size, image_channels=3):
    """Network input (image channels [+ trimap]) -> ``size``: the image bilinear and
    antialiased, the trimap by nearest neighbour."""
    small = _resize(x[:, :image_channels], size)
    if x.shape[1] == image_channels:
        return small
    return torch.cat([small, _resize_trimap(x[:, image_channels:], size)], dim=1)


def predict_alpha_highres(
    model, images, policy: HighResolutionPolicy = HighResolutionPolicy(), trimaps=None
):
    """Alpha for images of any size under ``policy`` (see the module docstring).

    Args:
        model: a :class:`~alphafree_d2.modeling.meta_arch.ViTMatte` in eval mode.
        images: (B, 3, H, W) float tensor, 0-255, ``model.input_format`` channel order, on the
            model's device.
        trimaps: (B, 1, H, W) float tensor in {0, 0.5, 1}, for a trimap-guided model
            (``model.trimap_input``). The downscaled copy for the ViT gets it resized by nearest
            neighbour; the known regions of the output come from the full-resolution trimap.

    Returns:
        alpha (B, 1, H, W) float tensor in [0, 1].
    """
    h, w = images.shape[-2:]
    if h * w <= policy.max_pixels:
        return model.predict_alpha(images, trimaps)
    d = model.size_divisibility
    mode = policy.mode
    if mode == "guided" and not model.supports_tiled_decoding:
        logger.warning(
            f"{type(model.decoder).__name__} is not a DetailCapture decoder: the guided "
            f"high-resolution mode needs a decoder that resizes the backbone feature to its own "
            f"grid; using mode='resize' instead."
        )
        mode = "resize"
    if mode == "resize":
        size = _budget_size(h, w, policy.max_pixels, 1)
        small_trimaps = None if trimaps is None else _resize_trimap(trimaps, size)
        alpha = model.predict_alpha(_resize(images, size), small_trimaps)
        alpha = F.interpolate(alpha, size=(h, w), mode="bilinear", align_corners=False)
        return model.known_regions(alpha.clamp(0, 1), trimaps)
    x, _ = model.preprocess(images, trimaps)
    small = _resize_input(x, _budget_size(*x.shape[-2:], policy.max_pixels, d))
    features = model.encode(small)
    alpha = model.decode(features, x, tile_size=policy.tile_size, tile_margin=policy.tile_margin)
    return model.known_regions(alpha[:, :, :h, :w], x)
