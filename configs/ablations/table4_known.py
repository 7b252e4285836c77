# Table 4, row 1: known loss only (Fig. 2a). Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.losses = {"known": 1.0}
train.output_dir = "./output/table4_known"
