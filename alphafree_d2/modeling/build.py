"""Builders of the matting decoder and loss head from a yacs config (the keys of
:func:`alphafree_d2.add_alphafree_config`), used by :meth:`ViTMatte.from_config`."""

from typing import Dict

from detectron2.layers import ShapeSpec

from .decoder import DetailCapture
from .losses import MattingCriterion

__all__ = ["build_matting_criterion", "build_matting_decoder"]


def build_matting_decoder(cfg, input_shape: Dict[str, ShapeSpec]) -> DetailCapture:
    """:class:`DetailCapture` on the backbone's single output.

    Args:
        input_shape: the backbone's ``output_shape()``: one feature name -> its channels.
    """
    if len(input_shape) != 1:
        raise ValueError(
            f"the matting decoder reads one backbone feature, the backbone gives {list(input_shape)}"
        )
    ((name, shape),) = input_shape.items()
    return DetailCapture(
        shape.channels,
        in_feature=name,
        image_channels=matting_input_channels(cfg),
        conv_channels=list(cfg.MODEL.MATTING_DECODER.CONV_CHANNELS),
        fusion_channels=list(cfg.MODEL.MATTING_DECODER.FUSION_CHANNELS),
    )


def matting_input_channels(cfg) -> int:
    """Channels of the network input: the image's (``len(MODEL.PIXEL_MEAN)``), plus one for the
    trimap in trimap-guided mode (``MODEL.VITMATTE.TRIMAP_INPUT``)."""
    return len(cfg.MODEL.PIXEL_MEAN) + int(cfg.MODEL.VITMATTE.TRIMAP_INPUT)


def build_matting_criterion(cfg) -> MattingCriterion:
    """:class:`MattingCriterion` from ``MODEL.MATTING_LOSS`` (names and weights pair up)."""
    loss = cfg.MODEL.MATTING_LOSS
    if len(loss.NAMES) != len(loss.WEIGHTS):
        raise ValueError(
            f"MODEL.MATTING_LOSS.NAMES {list(loss.NAMES)} and WEIGHTS {list(loss.WEIGHTS)} differ "
            "in length: give one weight per loss"
        )
    return MattingCriterion(
        dict(zip(loss.NAMES, loss.WEIGHTS)),
        kernel_size=loss.KERNEL_SIZE,
        region=loss.REGION,
        padding=loss.PADDING,
    )
