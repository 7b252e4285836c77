"""Schedules in epochs: iterations follow the dataset size and the total batch size."""

from pathlib import Path

import pytest

from detectron2.config import LazyConfig
from detectron2.data import DatasetCatalog

from alphafree_d2.engine import epochs_to_iters, resolve_schedule, warmup_multistep_lr

ROOT = Path(__file__).resolve().parents[2]


def test_epochs_to_iters():
    assert epochs_to_iters(100, 1800 / 16) == 11250
    assert epochs_to_iters(0.01, 1800 / 16) == 1  # a positive budget is at least one step
    assert epochs_to_iters(0, 10) == 0


def test_warmup_multistep_values():
    ipe = 1800 / 16
    max_iter = epochs_to_iters(100, ipe)
    sched = warmup_multistep_lr(
        milestones_epochs=[60, 90], values=[1.0, 0.1, 0.05], iters_per_epoch=ipe,
        max_iter=max_iter, warmup_iters=250, warmup_factor=0.001,
    )  # fmt: skip

    def at(it):
        return sched(it / max_iter)

    assert at(0) == pytest.approx(0.001)
    assert 0.001 < at(125) < 1.0  # linear warmup
    assert at(250) == pytest.approx(1.0)
    assert at(6749) == pytest.approx(1.0)
    assert at(6750) == pytest.approx(0.1)  # epoch 60
    assert at(10124) == pytest.approx(0.1)
    assert at(10125) == pytest.approx(0.05)  # epoch 90


def test_shortened_runs_drop_milestones_they_never_reach():
    sched = warmup_multistep_lr(
        milestones_epochs=[60, 90], values=[1.0, 0.1, 0.05], iters_per_epoch=10, max_iter=100,
        warmup_iters=0,
    )  # fmt: skip
    assert sched(0.99) == pytest.approx(1.0)


@pytest.fixture
def fake_am2k_train():
    name = "test_schedule_1800_images"
    DatasetCatalog.register(name, lambda: [{"file_name": f"{i}.jpg"} for i in range(1800)])
    yield name
    DatasetCatalog.remove(name)


@pytest.mark.parametrize("batch", [16, 32, 8])
def test_resolve_schedule_keeps_epochs(fake_am2k_train, batch):
    cfg = LazyConfig.load(str(ROOT / "configs/am2k_ddc.py"))
    cfg.dataloader.train.dataset.names = fake_am2k_train
    cfg.dataloader.train.total_batch_size = batch
    assert resolve_schedule(cfg) == 1800
    assert cfg.train.max_iter == 100 * 1800 // batch
    assert cfg.train.eval_period == 10 * 1800 // batch
    assert cfg.train.checkpointer.period == 10 * 1800 // batch
    # The lr schedule config resolves against the same numbers.
    assert cfg.lr_multiplier.iters_per_epoch == 1800 / batch
    assert cfg.lr_multiplier.max_iter == cfg.train.max_iter


def test_explicit_max_iter_wins(fake_am2k_train):
    cfg = LazyConfig.load(str(ROOT / "configs/am2k_ddc.py"))
    cfg.dataloader.train.dataset.names = fake_am2k_train
    cfg.train.max_iter = 7
    resolve_schedule(cfg)
    assert cfg.train.max_iter == 7
