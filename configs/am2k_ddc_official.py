# The AM-2K recipe of the paper's official code (poppuppy/alpha-free-matting:
# configs/vitmatte_s_am2k_100ep.py, train.sh, data/am2k_dataset.py, alpha2trimap.py) where it
# differs from the paper's text (am2k_ddc.py):
# - augmentation: crop only (train_trans = [RandomCrop, ToTensor]; no random scale, no flip),
#   the crop centred on a random unknown pixel ("unknown_centred", as in am2k_ddc.py);
# - batch: 16 per GPU x 2 GPUs = 32 in total (paper: 4 x 4 = 16), the same lr 5e-4;
# - labels: trimaps made as alpha2trimap.py makes them, prepared once with
#   python datasets/prepare_matting_trimaps.py am2k --official
# Same as am2k_ddc.py: model, losses (known + 10 DDC, K = 11), AdamW and layer decay, warmup 250
# iterations, float16 AMP (the official trainer always autocasts), evaluation.
# 100 epochs = 5625 iterations x 32 images / 1800 images (the official int(1800 / 16 / 2 * 100));
# lr x0.1 at epoch 60 (iteration 3375) and x0.05 at epoch 90 (iteration 5062).
# Run: python tools/lazyconfig_train_net.py --config-file configs/am2k_ddc_official.py --num-gpus 2
from .am2k_ddc import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "am2k_train_trimap_official"
dataloader.train.mapper.augmentations.recipe = "crop_only"
dataloader.train.total_batch_size = 32
train.output_dir = "./output/am2k_ddc_official"
