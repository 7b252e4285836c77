# Table 1, row 1: the finely supervised baseline: the same model and schedule as am2k_ddc.py
# (100 epochs = 11250 iterations x 16 / 1800), trained with an L1 loss on the ground-truth alpha
# of every pixel instead of trimap labels (dataset am2k_train_alpha carries the mattes).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.losses = {"alpha_l1": 1.0}
dataloader.train.dataset.names = "am2k_train_alpha"
train.output_dir = "./output/table1_alpha_l1"
