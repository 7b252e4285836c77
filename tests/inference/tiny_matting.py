"""Helpers of tests/inference: a tiny matting model config, randomisation, random images.

The model is the demo architecture made smaller (ViT: 2 blocks of width 32, window 4 with
padding, global attention with relative positions, position embedding resized from a 4x4 grid)
so that every size-dependent path of detectron2's ViT is exercised. Relative-position tables,
position embeddings and BatchNorm statistics are randomised so that they matter to the output.
"""

import textwrap

import numpy as np
import torch

TINY_CONFIG = textwrap.dedent("""
    from functools import partial

    from torch import nn

    from detectron2.config import LazyCall as L
    from detectron2.modeling.backbone.vit import ViT

    from alphafree_d2.modeling.decoder import DetailCapture
    from alphafree_d2.modeling.meta_arch import ViTMatte

    model = L(ViTMatte)(
        backbone=L(ViT)(
            img_size=128,
            patch_size=16,
            in_chans=3,
            embed_dim=32,
            depth=2,
            num_heads=2,
            mlp_ratio=2,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            window_size=4,
            window_block_indexes=[0],
            residual_block_indexes=[1],
            use_rel_pos=True,
            pretrain_img_size=64,
            out_feature="last_feat",
        ),
        decoder=L(DetailCapture)(
            in_channels=32, conv_channels=[8, 16, 16], fusion_channels=[16, 16, 8, 8],
            head_channels=8,
        ),
        criterion=L(nn.Identity)(),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
        input_format="RGB",
        size_divisibility=32,
    )
    train = dict(init_checkpoint="", device="auto")
    """)


def randomise(model, seed=0):
    """Give the position tables and the BatchNorm statistics random values (in place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos" in name or "pos_embed" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def random_image(h, w, channels=3, seed=0, dtype=np.uint8):
    """Seeded random image: (h, w) when channels == 1, else (h, w, channels)."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, top + 1, size=shape, dtype=dtype)


def tiny_config(in_chans=3, head_channels=8):
    """TINY_CONFIG for ``in_chans`` 3 (automatic) or 4 (trimap-guided) and a head width
    (transformers' ViTMatte needs 16)."""
    text = TINY_CONFIG.replace("head_channels=8", f"head_channels={head_channels}")
    if in_chans == 4:
        text = text.replace("in_chans=3", "in_chans=4")
        text = text.replace("in_channels=32, conv", "in_channels=32, image_channels=4, conv")
        text = text.replace('input_format="RGB",', 'input_format="RGB",\n    trimap_input=True,')
    return text
