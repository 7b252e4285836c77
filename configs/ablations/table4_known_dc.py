# Table 4, row 3 (and Table 5, "DC whole"): known + DC loss (Eq. 8, Fig. 2c), weight 10.
# Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800). Row 4 is am2k_ddc.py itself.
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.losses = {"known": 1.0, "dc": 10.0}
train.output_dir = "./output/table4_known_dc"
