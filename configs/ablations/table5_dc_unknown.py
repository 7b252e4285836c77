# Table 5: DC loss on the trimap's unknown band only (with the known loss). "DC whole" is
# table4_known_dc.py. Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.losses = {"known": 1.0, "dc": 10.0}
model.criterion.region = "unknown"
train.output_dir = "./output/table5_dc_unknown"
