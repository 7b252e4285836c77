# Fine-tune a pretrained trimap-guided ViTMatte-S on your own photos and trimaps, with trimap
# labels only: L = L_known + 10 * L_DDC, K = 11 (the paper's loss, Eq. 11), AdamW with
# layer-wise lr decay 0.65 over the 12 ViT blocks (configs/common/optim.py). The weights come
# from transformers or the original release (docs/transformers.md):
#   python tools/convert_pretrained.py --format hf-vitmatte HF_FOLDER pretrained/vitmatte_s.pth
# Its printed settings that differ from this file (e.g. the processor's normalisation,
# model.pixel_mean / model.pixel_std) go on the command line. The architecture is ViTMatte-S as
# transformers' hustvl/vitmatte-small-*: ViT-S/16, window 14, global blocks 2, 5, 8, 11, 4 input
# channels, decoder (48, 96, 192) / (256, 128, 64, 32) / 16, so the result exports back with
# tools/export.py --format hf.
# Data: my_matting_train (photos + trimaps) and my_matting_val (+ ground-truth alpha) under
# $DETECTRON2_DATASETS/my_matting/ (datasets/README.md), or any registered datasets:
# dataloader.train.dataset.names=NAME dataloader.test.dataset.names=NAME.
# A short schedule: 10 epochs (e.g. 200 photos: 250 iterations x 8 images / 200 images), lr x0.1
# at epoch 6 and x0.05 at epoch 9, warmup 50 iterations; lr 5e-5, a tenth of training from DINO.
from .common.data import dataloader
from .common.model import model
from .common.optim import optimizer
from .common.schedule import lr_multiplier
from .common.train import train

model.trimap_input = True
model.backbone.in_chans = 4
model.decoder.image_channels = 4
model.decoder.head_channels = 16  # transformers' VitMatteHead width (the default, stated)

optimizer.lr = 5e-5

dataloader.train.dataset.names = "my_matting_train"
dataloader.train.total_batch_size = 8
dataloader.test.dataset.names = "my_matting_val"

train.epochs = 10
train.eval_period_epochs = 5
train.checkpointer.period_epochs = 5
train.output_dir = "./output/finetune_vitmatte_ddc"
train.init_checkpoint = "pretrained/vitmatte_s.pth"
train.amp.enabled = True  # float16 autocast on CUDA; float32 on CPU

lr_multiplier.milestones_epochs = [6, 9]
lr_multiplier.warmup_iters = 50
