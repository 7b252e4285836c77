"""configs/am2k_ddc_official.py: the official code's recipe where it differs from the paper's text
(am2k_ddc.py), with the schedule arithmetic its comment states."""

from pathlib import Path

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.data import UnknownCentredCrop
from alphafree_d2.engine.schedule import epochs_to_iters

ROOT = Path(__file__).resolve().parents[2]
AM2K_TRAIN_IMAGES = 1800


def _load(name):
    return LazyConfig.load(str(ROOT / "configs" / name))


def _schedule(cfg):
    ipe = AM2K_TRAIN_IMAGES / cfg.dataloader.train.total_batch_size
    max_iter = epochs_to_iters(cfg.train.epochs, ipe)
    cfg.lr_multiplier.iters_per_epoch, cfg.lr_multiplier.max_iter = ipe, max_iter
    multiplier = instantiate(cfg.lr_multiplier)  # of the fraction it / max_iter, as LRMultiplier
    values = [multiplier(it / max_iter) for it in range(max_iter)]
    steps = [it for it in range(251, max_iter) if values[it] < values[it - 1]]
    return max_iter, steps


def test_official_recipe_differs_only_where_the_code_does():
    paper, official = _load("am2k_ddc.py"), _load("am2k_ddc_official.py")
    assert _schedule(paper) == (11250, [6750, 10125])
    assert _schedule(official) == (5625, [3375, 5062])  # int(1800 / 16 / 2 * 100) etc.
    assert official.dataloader.train.total_batch_size == 32  # 16 per GPU x 2 GPUs
    assert official.optimizer.lr == paper.optimizer.lr == 5e-4
    assert official.train.amp.enabled and official.train.amp.dtype == "float16"
    assert official.dataloader.train.dataset.names == "am2k_train_trimap_official"
    augs = instantiate(official.dataloader.train.mapper.augmentations)
    assert [type(a) for a in augs] == [UnknownCentredCrop]  # crop only: no scale, no flip
    assert augs[0].crop_size == (512, 512)
    paper_augs = instantiate(paper.dataloader.train.mapper.augmentations)
    assert len(paper_augs) == 3 and isinstance(paper_augs[1], UnknownCentredCrop)
    assert official.model.criterion.losses == paper.model.criterion.losses
    assert official.lr_multiplier.warmup_iters == paper.lr_multiplier.warmup_iters == 250
