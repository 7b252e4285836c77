# Table 5: DDC loss on the trimap's unknown band only (with the known loss). "DDC whole" is
# am2k_ddc.py. Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.region = "unknown"
train.output_dir = "./output/table5_ddc_unknown"
