"""yacs-config support, for detectron2 projects that build models with ``build_model(cfg)`` and
train with ``DefaultTrainer`` (``examples/yacs_train_net.py``).

LazyConfig files under ``configs/`` are the primary interface; this module only adds the keys
that :meth:`ViTMatte.from_config <alphafree_d2.modeling.ViTMatte.from_config>` and
:meth:`MattingDatasetMapper.from_config <alphafree_d2.data.MattingDatasetMapper.from_config>`
read. Its defaults describe the same model as ``configs/common/model.py`` (a test checks that both
build the same parameters)::

    cfg = get_cfg(); add_alphafree_config(cfg)
    model = build_model(cfg)  # ViTMatte-S, known + 10 * DDC, K = 11
"""

from detectron2.config import CfgNode as CN

__all__ = ["add_alphafree_config"]


def add_alphafree_config(cfg):
    """Add the ``MODEL.VIT``, ``MODEL.MATTING_DECODER`` and ``MODEL.MATTING_LOSS`` keys and set
    the detectron2 keys the matting model, mapper and loaders read. Defaults: the paper's
    ViTMatte-S with known + 10 * DDC, K = 11, trained on 512 x 512 crops (Sec. 4.1)."""
    cfg.MODEL.META_ARCHITECTURE = "ViTMatte"
    cfg.MODEL.BACKBONE.NAME = "build_matting_vit_backbone"
    # ImageNet statistics in 0-255 units, RGB order; their length is the backbone's input channels.
    cfg.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]
    cfg.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]
    cfg.MODEL.SIZE_DIVISIBILITY = 32
    cfg.MODEL.VITMATTE = CN()
    # Trimap-guided mode: the trimap is a 4th input channel of the ViT and the detail stream.
    cfg.MODEL.VITMATTE.TRIMAP_INPUT = False
    cfg.INPUT.FORMAT = "RGB"

    # detectron2's ViT (modeling/backbone.py); global attention in blocks 2, 5, 8, 11.
    cfg.MODEL.VIT = CN()
    cfg.MODEL.VIT.IMG_SIZE = 512
    cfg.MODEL.VIT.PATCH_SIZE = 16
    cfg.MODEL.VIT.EMBED_DIM = 384
    cfg.MODEL.VIT.DEPTH = 12
    cfg.MODEL.VIT.NUM_HEADS = 6
    cfg.MODEL.VIT.MLP_RATIO = 4.0
    cfg.MODEL.VIT.WINDOW_SIZE = 14
    cfg.MODEL.VIT.WINDOW_BLOCK_INDEXES = [0, 1, 3, 4, 6, 7, 9, 10]
    cfg.MODEL.VIT.RESIDUAL_BLOCK_INDEXES = [2, 5, 8, 11]
    cfg.MODEL.VIT.DROP_PATH_RATE = 0.0
    cfg.MODEL.VIT.USE_REL_POS = True
    cfg.MODEL.VIT.PRETRAIN_IMG_SIZE = 224
    cfg.MODEL.VIT.OUT_FEATURE = "last_feat"

    # ViTMatte's detail-capture decoder (modeling/decoder.py).
    cfg.MODEL.MATTING_DECODER = CN()
    cfg.MODEL.MATTING_DECODER.CONV_CHANNELS = [48, 96, 192]
    cfg.MODEL.MATTING_DECODER.FUSION_CHANNELS = [256, 128, 64, 32]

    # The trimap loss head (modeling/losses.py): weighted sum of named losses.
    cfg.MODEL.MATTING_LOSS = CN()
    cfg.MODEL.MATTING_LOSS.NAMES = ["known", "ddc"]
    cfg.MODEL.MATTING_LOSS.WEIGHTS = [1.0, 10.0]
    cfg.MODEL.MATTING_LOSS.KERNEL_SIZE = 11
    cfg.MODEL.MATTING_LOSS.REGION = "whole"
    cfg.MODEL.MATTING_LOSS.PADDING = "zeros"

    # Training crops for MattingDatasetMapper (the AM-2K recipe at this absolute size).
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = [512, 512]
    # Fixed-size crops: grouping by aspect ratio would only look at the original image sizes.
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = False
