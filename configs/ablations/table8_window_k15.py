# Table 8: DDC window size K = 15 (the K x K window and the K neighbours kept; default 11).
# Otherwise am2k_ddc.py (100 epochs = 11250 x 16 / 1800).
from ..am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

model.criterion.kernel_size = 15
train.output_dir = "./output/table8_window_k15"
