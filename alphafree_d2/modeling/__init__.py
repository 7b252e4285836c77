"""Models and losses. Importing this registers :class:`ViTMatte` in detectron2's
``META_ARCH_REGISTRY``."""
from .decoder import DetailCapture
from .losses import (
    LOSSES,
    PAPER_POLICIES,
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

__all__ = [k for k in globals() if not k.startswith("_")]
