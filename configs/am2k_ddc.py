# The paper's AM-2K recipe (Sec. 4.1, Table 1 row 2 / Table 2): ViTMatte-S from DINO ViT-S/16,
# trimap labels only, L = L_known + 10 * L_DDC (K = 11), AdamW lr 5e-4, total batch 16.
# 100 epochs = 11250 iterations x 16 images / 1800 images; lr x0.1 at epoch 60 (iteration
# 6750) and x0.05 at epoch 90 (iteration 10125); warmup 250 iterations from 0.001.
from .common.data import dataloader
from .common.model import model
from .common.optim import optimizer
from .common.schedule import lr_multiplier
from .common.train import train

train.epochs = 100
train.output_dir = "./output/am2k_ddc"
# python tools/convert_pretrained.py --format dino dino_deitsmall16_pretrain.pth pretrained/dino_vit_s16.pth
train.init_checkpoint = "pretrained/dino_vit_s16.pth"
train.amp.enabled = True  # float16 autocast on CUDA; float32 on CPU unless train.amp.dtype=bfloat16
