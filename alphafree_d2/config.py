"""yacs-config support, for detectron2 projects that build models with ``build_model(cfg)`` and
train with ``DefaultTrainer`` (``examples/yacs_train_net.py``).

LazyConfig files under ``configs/`` are the primary interface; this module only adds the keys
that :meth:`ViTMatte.from_config <alphafree_d2.modeling.ViTMatte.from_config>` and
:meth:`MattingDatasetMapper.from_config <alphafree_d2.data.MattingDatasetMapper.from_config>`
read. The model keys take their defaults from ``configs/common/model.py`` (the checkout's, next to
the package: ``pip install -e .``), read when :func:`add_alphafree_config` runs, so the two
describe the same model by construction::

    cfg = get_cfg(); add_alphafree_config(cfg)
    model = build_model(cfg)  # ViTMatte-S, known + 10 * DDC, K = 11
"""

import inspect
import os

from detectron2.config import CfgNode as CN

__all__ = ["add_alphafree_config"]

# The LazyConfig whose ``model`` gives the yacs model defaults.
MODEL_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "common", "model.py"
)


def _load_lazy_model():
    """``model`` of :data:`MODEL_CONFIG` (a LazyConfig node, not instantiated)."""
    from detectron2.config import LazyConfig

    if not os.path.isfile(MODEL_CONFIG):
        raise FileNotFoundError(
            f"add_alphafree_config reads its model defaults from {MODEL_CONFIG}, which is "
            f"missing: install alphafree_d2 from its checkout with `pip install -e .`"
        )
    return LazyConfig.load(MODEL_CONFIG).model


def _arg(node, name):
    """Argument ``name`` of a LazyCall node: its value in the node, else the default of the
    callable it calls."""
    if name in node:
        return node[name]
    return inspect.signature(node._target_).parameters[name].default


def _set_model_keys(cfg, model):
    """The yacs model keys from the LazyConfig ``model`` node (a ViTMatte call)."""
    # ImageNet statistics in 0-255 units; their length is the backbone's input channels.
    cfg.MODEL.PIXEL_MEAN = [float(v) for v in model.pixel_mean]
    cfg.MODEL.PIXEL_STD = [float(v) for v in model.pixel_std]
    cfg.MODEL.SIZE_DIVISIBILITY = int(model.size_divisibility)
    cfg.INPUT.FORMAT = model.input_format
    cfg.MODEL.VITMATTE = CN()
    # Trimap-guided mode: the trimap is a 4th input channel of the ViT and the detail stream.
    cfg.MODEL.VITMATTE.TRIMAP_INPUT = bool(_arg(model, "trimap_input"))

    # detectron2's ViT (modeling/backbone.py; qkv bias and LayerNorm eps 1e-6 as in the file).
    vit = model.backbone
    cfg.MODEL.VIT = CN()
    cfg.MODEL.VIT.IMG_SIZE = int(vit.img_size)
    cfg.MODEL.VIT.PATCH_SIZE = int(vit.patch_size)
    cfg.MODEL.VIT.EMBED_DIM = int(vit.embed_dim)
    cfg.MODEL.VIT.DEPTH = int(vit.depth)
    cfg.MODEL.VIT.NUM_HEADS = int(vit.num_heads)
    cfg.MODEL.VIT.MLP_RATIO = float(vit.mlp_ratio)
    cfg.MODEL.VIT.WINDOW_SIZE = int(vit.window_size)
    cfg.MODEL.VIT.WINDOW_BLOCK_INDEXES = list(vit.window_block_indexes)
    cfg.MODEL.VIT.RESIDUAL_BLOCK_INDEXES = list(vit.residual_block_indexes)
    cfg.MODEL.VIT.DROP_PATH_RATE = float(vit.drop_path_rate)
    cfg.MODEL.VIT.USE_REL_POS = bool(vit.use_rel_pos)
    cfg.MODEL.VIT.PRETRAIN_IMG_SIZE = int(vit.pretrain_img_size)
    cfg.MODEL.VIT.OUT_FEATURE = vit.out_feature

    # ViTMatte's detail-capture decoder (modeling/decoder.py).
    cfg.MODEL.MATTING_DECODER = CN()
    cfg.MODEL.MATTING_DECODER.CONV_CHANNELS = list(_arg(model.decoder, "conv_channels"))
    cfg.MODEL.MATTING_DECODER.FUSION_CHANNELS = list(_arg(model.decoder, "fusion_channels"))

    # The trimap loss head (modeling/losses.py): weighted sum of named losses.
    criterion = model.criterion
    cfg.MODEL.MATTING_LOSS = CN()
    cfg.MODEL.MATTING_LOSS.NAMES = list(criterion.losses)
    cfg.MODEL.MATTING_LOSS.WEIGHTS = [float(w) for w in criterion.losses.values()]
    cfg.MODEL.MATTING_LOSS.KERNEL_SIZE = int(_arg(criterion, "kernel_size"))
    cfg.MODEL.MATTING_LOSS.REGION = _arg(criterion, "region")
    cfg.MODEL.MATTING_LOSS.PADDING = _arg(criterion, "padding")


def add_alphafree_config(cfg):
    """Add the ``MODEL.VIT``, ``MODEL.MATTING_DECODER`` and ``MODEL.MATTING_LOSS`` keys and set
    the detectron2 keys the matting model, mapper and loaders read. Defaults: the model of
    ``configs/common/model.py`` (the paper's ViTMatte-S with known + 10 * DDC, K = 11), trained
    on 512 x 512 crops (Sec. 4.1)."""
    cfg.MODEL.META_ARCHITECTURE = "ViTMatte"
    cfg.MODEL.BACKBONE.NAME = "build_matting_vit_backbone"
    _set_model_keys(cfg, _load_lazy_model())

    # Training crops for MattingDatasetMapper (the AM-2K recipe at this absolute size).
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = [512, 512]
    # Fixed-size crops: grouping by aspect ratio would only look at the original image sizes.
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = False
