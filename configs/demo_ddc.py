# The README's main job: a small ViTMatte trained from scratch on the built-in procedural demo
# data (demo_train: 64 composites, demo_val: 12), trimap labels only, L = L_known + 10 * L_DDC.
# Sized for 2 CPU cores: ViT with 4 blocks of width 96 on 192x192 crops, about 0.5 s/iteration.
# 75 epochs = 600 iterations x 8 images / 64 images; lr x0.1 at epoch 45 (iteration 360),
# x0.05 at epoch 67.5 (iteration 540) (the paper's 60% / 90%); warmup 20 iterations.
from .common.data import dataloader
from .common.model import model
from .common.optim import optimizer
from .common.schedule import lr_multiplier
from .common.train import train

model.backbone.update(
    img_size=256,
    embed_dim=96,
    depth=4,
    num_heads=3,
    window_size=8,
    window_block_indexes=[0, 2],
    residual_block_indexes=[1, 3],
)
model.decoder.update(conv_channels=[16, 32, 64], fusion_channels=[64, 32, 16, 16], head_channels=8)

# Layer-wise lr decay protects a pretrained ViT during fine-tuning; from scratch, one lr for all.
optimizer.params.lr_factor_func = None
optimizer.lr = 1e-3

dataloader.train.dataset.names = "demo_train"
dataloader.train.mapper.augmentations.crop_size = 192
# Crops centred on the unknown band (as the paper configs): measured better than uniform crops on
# demo_val at this scale, equal within seeds on real photos (docs/results.md, "Crop policy").
dataloader.train.mapper.augmentations.crop_policy = "unknown_centred"
dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 2
dataloader.test.dataset.names = "demo_val"
dataloader.test.num_workers = 0

train.epochs = 75
train.eval_period_epochs = 25
train.checkpointer.period_epochs = 25
train.log_period = 10
train.output_dir = "./output/demo_ddc"
train.init_checkpoint = ""  # from scratch: no download needed

lr_multiplier.milestones_epochs = [45, 67.5]
lr_multiplier.warmup_iters = 20
