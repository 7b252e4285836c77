# The README's main job: a small ViTMatte trained from scratch on the built-in procedural demo
# data (demo_train: 64 composites, demo_val: 12), trimap labels only, L = L_known + 10 * L_DDC.
# Sized for 2 CPU cores: ViT with 4 blocks of width 96 on 256x256 crops.
# 40 epochs = 320 iterations x 8 images / 64 images; lr x0.1 at epoch 30 (iteration 240),
# x0.05 at epoch 36 (iteration 288); warmup 20 iterations.
from functools import partial

from detectron2.modeling.backbone.vit import get_vit_lr_decay_rate

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

optimizer.params.lr_factor_func = partial(get_vit_lr_decay_rate, num_layers=4, lr_decay_rate=0.65)

dataloader.train.dataset.names = "demo_train"
dataloader.train.mapper.augmentations.crop_size = 256
dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 2
dataloader.test.dataset.names = "demo_val"
dataloader.test.num_workers = 0

train.epochs = 40
train.eval_period_epochs = 20
train.checkpointer.period_epochs = 10
train.log_period = 10
train.output_dir = "./output/demo_ddc"
train.init_checkpoint = ""  # from scratch: no download needed

lr_multiplier.milestones_epochs = [30, 36]
lr_multiplier.warmup_iters = 20
