# AM-2K (Li et al. 2022): 1800 training images with generated trimap labels, 200 validation
# images with ground-truth alpha and trimaps. Training crops: random scale in [0.5, 2], random
# 512x512 crop, horizontal flip (paper Sec. 4.1); the crop is centred on a random unknown pixel
# and small images are enlarged, as in the official code ("unknown_centred"). Evaluation: whole
# image, AM-2K/P3M protocol.
from omegaconf import OmegaConf

from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, get_detection_dataset_dicts

from alphafree_d2.data import (
    MattingDatasetMapper,
    build_matting_augmentations,
    build_matting_train_loader,
)
from alphafree_d2.evaluation import MattingEvaluator

dataloader = OmegaConf.create()

# Pixel cap of every image file read (dataset registration, pre-flight, the mappers in the
# loader workers, the evaluator): a file that declares more pixels is refused before decoding,
# naming it, its size and the cap. None: the package default, 100 megapixels.
dataloader.max_pixels = None

# detectron2's train loader, after a quick pre-flight check of the training set (missing or
# unreadable files, size mismatches, trimaps without known pixels): preflight=False skips it.
dataloader.train = L(build_matting_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="am2k_train", filter_empty=False),
    mapper=L(MattingDatasetMapper)(
        is_train=True,
        augmentations=L(build_matting_augmentations)(
            recipe="am2k", crop_size=512, crop_policy="unknown_centred"
        ),
        image_format="RGB",
        max_pixels="${dataloader.max_pixels}",
    ),
    total_batch_size=16,
    # Fixed-size crops: no aspect-ratio grouping (it would need width/height per crop).
    aspect_ratio_grouping=False,
    num_workers=4,
    preflight=True,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="am2k_val", filter_empty=False),
    mapper=L(MattingDatasetMapper)(
        is_train=False, augmentations=[], image_format="RGB", max_pixels="${dataloader.max_pixels}"
    ),
    num_workers=2,
)

dataloader.evaluator = L(MattingEvaluator)(
    dataset_name="${..test.dataset.names}",
    protocol="whole_image",
    output_dir="${train.output_dir}/inference",
    max_pixels="${dataloader.max_pixels}",
)
