"""A small transformers ViTMatte for the tests of tests/hf (needs transformers)."""

import torch
from transformers import (
    VitDetConfig,
    VitMatteConfig,
    VitMatteForImageMatting,
    VitMatteImageProcessor,
)


def save_random_hf_vitmatte(folder, chans=4, out_stage=3, depth=3, window=4, seed=0):
    """A small VitMatteForImageMatting, randomly initialised by transformers, with random
    BatchNorm statistics and position tables, saved with save_pretrained (as on the hub)."""
    torch.manual_seed(seed)
    backbone = VitDetConfig(
        num_channels=chans, image_size=128, pretrain_image_size=64, patch_size=16,
        hidden_size=32, num_hidden_layers=depth, num_attention_heads=2, mlp_ratio=2,
        use_relative_position_embeddings=True, window_size=window,
        window_block_indices=[0, 2], residual_block_indices=[1],
        out_features=[f"stage{out_stage}"],
    )  # fmt: skip
    config = VitMatteConfig(
        backbone_config=backbone,
        hidden_size=32,
        convstream_hidden_sizes=[8, 16, 16],
        fusion_hidden_sizes=[16, 16, 8, 8],
    )
    model = VitMatteForImageMatting(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos" in name or "position_embeddings" in name:
                p.normal_(0, 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.3)
    model.save_pretrained(folder)
    VitMatteImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder)
    return model
