# The paper's AM-2K recipe (configs/am2k_ddc.py) in ViTMatte's native trimap-guided mode: image
# + trimap (4 channels) into the ViT and the detail-capture stream, the generated trimap both the
# input and the only label (L = L_known + 10 * L_DDC). At evaluation the AM-2K trimap is the
# input. The DINO weights have 3 input channels: convert them with --in-chans 4, which starts the
# trimap channel of the patch embedding at zero.
from .am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.trimap_input = True
model.backbone.in_chans = 4
model.decoder.image_channels = 4

train.output_dir = "./output/am2k_ddc_trimap"
# python tools/convert_pretrained.py --format dino --in-chans 4 \
#     dino_deitsmall16_pretrain.pth pretrained/dino_vit_s16_trimap.pth
train.init_checkpoint = "pretrained/dino_vit_s16_trimap.pth"
