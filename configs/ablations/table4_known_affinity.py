# Table 4, row 2: known + affinity loss (Eq. 2-4, Fig. 2b), weight 10 as for DDC (the paper gives
# no weight for this row: 10 is our choice).
# Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.losses = {"known": 1.0, "affinity": 10.0}
train.output_dir = "./output/table4_known_affinity"
