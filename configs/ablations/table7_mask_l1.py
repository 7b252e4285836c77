# Table 7, row 1: a coarse segmentation mask as the label (Appendix B), L1 over every pixel,
# plus 10 * DDC. Prepare: python datasets/prepare_matting_trimaps.py am2k --mask
# Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.losses = {"mask_l1": 1.0, "ddc": 10.0}
dataloader.train.dataset.names = "am2k_train_mask"
train.output_dir = "./output/table7_mask_l1"
