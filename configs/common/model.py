# ViTMatte-S (Yao et al. 2024) for automatic matting: detectron2's ViT-S/16 on the RGB image
# (3 input channels: the trimap is a label, not an input) + the detail-capture decoder, trained
# with the paper's loss: L = L_known + 10 * L_DDC, K = 11 (Eq. 11, Sec. 4.1).
from functools import partial

from torch import nn

from detectron2.config import LazyCall as L
from detectron2.modeling.backbone.vit import ViT

from alphafree_d2.modeling import DetailCapture, MattingCriterion, ViTMatte

embed_dim, depth, num_heads = 384, 12, 6

model = L(ViTMatte)(
    backbone=L(ViT)(
        img_size=512,
        patch_size=16,
        in_chans=3,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.0,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        window_size=14,
        # Global attention in blocks 2, 5, 8, 11 (which also get a conv residual block).
        window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],
        residual_block_indexes=[2, 5, 8, 11],
        use_rel_pos=True,
        pretrain_img_size=224,
        out_feature="last_feat",
    ),
    decoder=L(DetailCapture)(in_channels="${..backbone.embed_dim}"),
    criterion=L(MattingCriterion)(losses={"known": 1.0, "ddc": 10.0}, kernel_size=11),
    # ImageNet statistics in 0-255 units, RGB order.
    pixel_mean=[123.675, 116.28, 103.53],
    pixel_std=[58.395, 57.12, 57.375],
    input_format="RGB",
    size_divisibility=32,
)
