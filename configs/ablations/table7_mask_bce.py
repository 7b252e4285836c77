# Table 7, row 2: a coarse segmentation mask as the label with a binary cross-entropy loss
# (Appendix B), plus 10 * DDC. Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.losses = {"mask_bce": 1.0, "ddc": 10.0}
dataloader.train.dataset.names = "am2k_train_mask"
train.output_dir = "./output/table7_mask_bce"
