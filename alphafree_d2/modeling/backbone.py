"""detectron2's ViT in ``BACKBONE_REGISTRY``, so that yacs configs build it with
``build_backbone(cfg)`` (detectron2 registers only its LazyConfig-free backbones there).

A new backbone for yacs configs is one more function registered here; LazyConfig files name the
class directly (``configs/common/model.py``).
"""

from functools import partial

from torch import nn

from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.vit import ViT

__all__ = ["build_matting_vit_backbone"]


@BACKBONE_REGISTRY.register()
def build_matting_vit_backbone(cfg, input_shape: ShapeSpec):
    """detectron2's :class:`ViT` from ``cfg.MODEL.VIT`` (see :func:`add_alphafree_config`).

    Args:
        input_shape: ``channels`` is the number of input channels (``len(MODEL.PIXEL_MEAN)``,
            as :func:`detectron2.modeling.build_backbone` passes it).

    Returns:
        ViT with one output, ``MODEL.VIT.OUT_FEATURE``: (B, EMBED_DIM, H / PATCH_SIZE,
        W / PATCH_SIZE).
    """
    v = cfg.MODEL.VIT
    return ViT(
        img_size=v.IMG_SIZE,
        patch_size=v.PATCH_SIZE,
        in_chans=input_shape.channels,
        embed_dim=v.EMBED_DIM,
        depth=v.DEPTH,
        num_heads=v.NUM_HEADS,
        mlp_ratio=v.MLP_RATIO,
        qkv_bias=True,
        drop_path_rate=v.DROP_PATH_RATE,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        window_size=v.WINDOW_SIZE,
        window_block_indexes=list(v.WINDOW_BLOCK_INDEXES),
        residual_block_indexes=list(v.RESIDUAL_BLOCK_INDEXES),
        use_rel_pos=v.USE_REL_POS,
        pretrain_img_size=v.PRETRAIN_IMG_SIZE,
        out_feature=v.OUT_FEATURE,
    )
