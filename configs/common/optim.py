# AdamW, lr 5e-4, weight decay 0.1, layer-wise lr decay 0.65 over the 12 ViT blocks, no decay
# on the position embedding (paper Sec. 4.1, following ViTMatte).
from functools import partial

import torch

from detectron2.config import LazyCall as L
from detectron2.modeling.backbone.vit import get_vit_lr_decay_rate
from detectron2.solver import get_default_optimizer_params

optimizer = L(torch.optim.AdamW)(
    params=L(get_default_optimizer_params)(
        # params.model is set to the model object before the optimizer is instantiated.
        base_lr="${..lr}",
        weight_decay_norm=0.0,
        lr_factor_func=partial(get_vit_lr_decay_rate, num_layers=12, lr_decay_rate=0.65),
        overrides={"pos_embed": {"weight_decay": 0.0}},
    ),
    lr=5e-4,
    betas=(0.9, 0.999),
    weight_decay=0.1,
)
