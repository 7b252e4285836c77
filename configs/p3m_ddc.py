# The paper's P3M-10K recipe (Sec. 4.1, Table 3): as am2k_ddc.py, but 500 epochs, random
# 512x512 crop only (centred on an unknown pixel, as in am2k_ddc.py), evaluated on P3M-500-NP.
# 500 epochs = 294406 iterations x 16 images / 9421 images; lr x0.1 at epoch 300 (iteration
# 176644) and x0.05 at epoch 450 (iteration 264980); warmup 250 iterations from 0.001.
from .am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "p3m10k_train"
dataloader.train.mapper.augmentations.recipe = "p3m"
dataloader.test.dataset.names = "p3m500np_val"

train.epochs = 500
train.eval_period_epochs = 50
train.checkpointer.period_epochs = 50
train.output_dir = "./output/p3m_ddc"
lr_multiplier.milestones_epochs = [300, 450]
