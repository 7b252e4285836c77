"""Models and losses. Importing this registers :class:`ViTMatte` in detectron2's
``META_ARCH_REGISTRY`` and detectron2's ViT in ``BACKBONE_REGISTRY`` (for yacs configs)."""

from .backbone import build_matting_vit_backbone
from .backends import check_backend
from .build import build_matting_criterion, build_matting_decoder
from .decoder import DetailCapture
from .losses import (
    LOSSES,
    MattingCriterion,
    NeighbourSelection,
    affinity_loss,
    alpha_l1_loss,
    dc_loss,
    ddc_loss,
    known_loss,
    mask_bce_loss,
    mask_l1_loss,
    select_neighbours,
)
from .meta_arch import ViTMatte

__all__ = [
    "DetailCapture",
    "LOSSES",
    "MattingCriterion",
    "NeighbourSelection",
    "ViTMatte",
    "affinity_loss",
    "build_matting_criterion",
    "build_matting_decoder",
    "build_matting_vit_backbone",
    "check_backend",
    "alpha_l1_loss",
    "dc_loss",
    "ddc_loss",
    "known_loss",
    "mask_bce_loss",
    "mask_l1_loss",
    "select_neighbours",
]
