# The demo job in ViTMatte's native trimap-guided mode: image + trimap (4 channels) into the ViT
# and the detail-capture stream, the trimap also the only label (L = L_known + 10 * L_DDC).
# At evaluation the dataset's evaluation trimap is the input, and alpha is taken from it where
# it is known. Everything else as configs/demo_ddc.py.
from .demo_ddc import dataloader, lr_multiplier, model, optimizer, train

model.trimap_input = True
model.backbone.in_chans = 4
model.decoder.image_channels = 4

train.output_dir = "./output/demo_ddc_trimap"
# 16 channels in the decoder's head (the paper configs' and transformers' VitMatteHead width, so
# the model exports with tools/export.py --format hf); the automatic demo keeps 8.
model.decoder.head_channels = 16
