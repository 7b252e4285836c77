"""yacs-config support, for detectron2 projects that build models with ``build_model(cfg)``.

LazyConfig files under ``configs/`` are the primary interface; this module only lets a yacs
project do::

    cfg = get_cfg(); add_alphafree_config(cfg)
    cfg.MODEL.META_ARCHITECTURE = "ViTMatte"
    model = build_model(cfg)
"""
from functools import partial

from torch import nn

from detectron2.config import CfgNode as CN

__all__ = ["add_alphafree_config", "build_vitmatte_parts"]


def add_alphafree_config(cfg):
    """Add the ``MODEL.VIT``, ``MODEL.MATTING_DECODER`` and ``MODEL.MATTING_LOSS`` keys
    (defaults: the paper's ViTMatte-S with known + 10 * DDC, K = 11)."""
    cfg.INPUT.FORMAT = "RGB"
    cfg.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]
    cfg.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]
    cfg.MODEL.VIT = CN()
    cfg.MODEL.VIT.PATCH_SIZE = 16
    cfg.MODEL.VIT.EMBED_DIM = 384
    cfg.MODEL.VIT.DEPTH = 12
    cfg.MODEL.VIT.NUM_HEADS = 6
    cfg.MODEL.VIT.WINDOW_SIZE = 14
    cfg.MODEL.VIT.WINDOW_BLOCK_INDEXES = [0, 1, 3, 4, 6, 7, 9, 10]
    cfg.MODEL.VIT.RESIDUAL_BLOCK_INDEXES = [2, 5, 8, 11]
    cfg.MODEL.VIT.DROP_PATH_RATE = 0.0
    cfg.MODEL.VIT.USE_REL_POS = True
    cfg.MODEL.VIT.PRETRAIN_IMG_SIZE = 224
    cfg.MODEL.MATTING_DECODER = CN()
    cfg.MODEL.MATTING_DECODER.CONV_CHANNELS = [48, 96, 192]
    cfg.MODEL.MATTING_DECODER.FUSION_CHANNELS = [256, 128, 64, 32]
    cfg.MODEL.MATTING_LOSS = CN()
    cfg.MODEL.MATTING_LOSS.NAMES = ["known", "ddc"]
    cfg.MODEL.MATTING_LOSS.WEIGHTS = [1.0, 10.0]
    cfg.MODEL.MATTING_LOSS.KERNEL_SIZE = 11
    cfg.MODEL.MATTING_LOSS.REGION = "whole"
    cfg.MODEL.SIZE_DIVISIBILITY = 32


def build_vitmatte_parts(cfg):
    """The keyword arguments of :class:`~alphafree_d2.modeling.ViTMatte` from a yacs config."""
    from detectron2.modeling.backbone.vit import ViT

    from alphafree_d2.modeling.decoder import DetailCapture
    from alphafree_d2.modeling.losses import MattingCriterion

    v, loss = cfg.MODEL.VIT, cfg.MODEL.MATTING_LOSS
    if len(loss.NAMES) != len(loss.WEIGHTS):
        raise ValueError(
            f"MODEL.MATTING_LOSS.NAMES {loss.NAMES} and WEIGHTS {loss.WEIGHTS} differ in length"
        )
    backbone = ViT(
        img_size=512,
        patch_size=v.PATCH_SIZE,
        in_chans=3,
        embed_dim=v.EMBED_DIM,
        depth=v.DEPTH,
        num_heads=v.NUM_HEADS,
        drop_path_rate=v.DROP_PATH_RATE,
        window_size=v.WINDOW_SIZE,
        mlp_ratio=4,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        window_block_indexes=list(v.WINDOW_BLOCK_INDEXES),
        residual_block_indexes=list(v.RESIDUAL_BLOCK_INDEXES),
        use_rel_pos=v.USE_REL_POS,
        pretrain_img_size=v.PRETRAIN_IMG_SIZE,
        out_feature="last_feat",
    )
    decoder = DetailCapture(
        v.EMBED_DIM,
        conv_channels=cfg.MODEL.MATTING_DECODER.CONV_CHANNELS,
        fusion_channels=cfg.MODEL.MATTING_DECODER.FUSION_CHANNELS,
    )
    criterion = MattingCriterion(
        dict(zip(loss.NAMES, loss.WEIGHTS)), kernel_size=loss.KERNEL_SIZE, region=loss.REGION
    )
    return dict(
        backbone=backbone,
        decoder=decoder,
        criterion=criterion,
        pixel_mean=cfg.MODEL.PIXEL_MEAN,
        pixel_std=cfg.MODEL.PIXEL_STD,
        input_format=cfg.INPUT.FORMAT,
        size_divisibility=cfg.MODEL.SIZE_DIVISIBILITY,
    )
