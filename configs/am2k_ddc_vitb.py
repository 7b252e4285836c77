# ViTMatte-B variant of am2k_ddc.py: ViT-B/16 (width 768, 12 heads) initialised from MAE.
# Same schedule: 100 epochs = 11250 iterations x 16 images / 1800 images.
from .am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.backbone.update(embed_dim=768, num_heads=12, drop_path_rate=0.1)
# python tools/convert_pretrained.py --format mae mae_pretrain_vit_base.pth pretrained/mae_vit_b16.pth
train.init_checkpoint = "pretrained/mae_vit_b16.pth"
train.output_dir = "./output/am2k_ddc_vitb"
