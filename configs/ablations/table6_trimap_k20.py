# Table 6: training trimaps eroded with a fixed kernel of 20 (at the 640 px reference) instead of
# one drawn in [1, 30]. Prepare: python datasets/prepare_matting_trimaps.py am2k --kernel-size 20
# Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "am2k_train_trimap_k20"
train.output_dir = "./output/table6_trimap_k20"
