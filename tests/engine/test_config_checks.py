"""Config overrides and settings are checked: unknown keys, wrong types and impossible values
stop at once with the name of the setting (alphafree_d2.engine.config_checks)."""

from pathlib import Path

import pytest

from detectron2.config import LazyConfig

from alphafree_d2.engine import ConfigError, apply_overrides

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg():
    return LazyConfig.load(str(ROOT / "configs/demo_ddc.py"))


def test_valid_overrides_apply(cfg):
    apply_overrides(cfg, [
        "train.max_iter=5", "train.epochs=0.5", "optimizer.lr=1e-4",
        "model.criterion.losses.dc=10",  # a new entry of the {name: weight} dict
        "dataloader.evaluator.save_predictions=True",  # an argument MattingEvaluator accepts
        "+train.my_note=hello",  # '+' adds a key on purpose
    ])  # fmt: skip
    assert cfg.train.max_iter == 5 and cfg.model.criterion.losses.dc == 10
    assert cfg.dataloader.evaluator.save_predictions is True and cfg.train.my_note == "hello"


@pytest.mark.parametrize(
    "override, closest",
    [
        ("train.max_itr=5", "train.max_iter"),
        ("dataloader.train.total_bach_size=4", "dataloader.train.total_batch_size"),
        ("model.criterion.kernel_sise=5", "model.criterion.kernel_size"),  # a LazyCall argument
        ("model.critrion.losses.ddc=1", "model.criterion.losses.ddc"),
    ],
)
def test_unknown_key_names_the_closest(cfg, override, closest):
    with pytest.raises(
        ConfigError, match=f"no setting '{override.split('=')[0]}'; did you mean '{closest}'"
    ):
        apply_overrides(cfg, [override])


@pytest.mark.parametrize(
    "override, setting",
    [
        ("train.max_iter=abc", "train.max_iter='abc'"),
        ("dataloader.train.total_batch_size=0", "dataloader.train.total_batch_size=0"),
        ("train.epochs=0", "train.epochs=0"),
        ("train.epochs=-3", "train.epochs=-3"),
        ("train.log_period=0", "train.log_period=0"),
        ("optimizer.lr=nan", "optimizer.lr=nan"),
        ("model.criterion.losses.ddc=inf", "model.criterion.losses.ddc=inf"),
        ("train.checkpointer.max_to_keep=0", "train.checkpointer.max_to_keep=0"),
    ],
)
def test_impossible_values_name_the_setting(cfg, override, setting):
    with pytest.raises(ConfigError, match=f"{setting}: expected"):
        apply_overrides(cfg, [override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.eval_period_epochs=soon", "train.eval_period_epochs is a number"),
        ("train.amp.enabled=yes", "train.amp.enabled is True or False"),
        ("model.criterion.losses.ddc=[1]", "model.criterion.losses.ddc is a number"),
    ],
)
def test_wrong_types_name_the_setting(cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(cfg, [override])


def test_explicit_max_iter_makes_epochs_unused(cfg):
    apply_overrides(cfg, ["train.max_iter=3", "train.epochs=0"])
    assert cfg.train.max_iter == 3
