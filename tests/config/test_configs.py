"""Every config file loads with LazyConfig and its model instantiates (full-size ones too,
without data); the data/evaluator parts resolve to real objects."""

from pathlib import Path

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

import alphafree_d2

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.py") if "common" not in p.parts
)


def test_there_are_configs():
    assert "configs/am2k_ddc.py" in CONFIGS and "configs/demo_ddc.py" in CONFIGS


@pytest.mark.parametrize("path", CONFIGS)
def test_config_loads_and_model_instantiates(path):
    cfg = LazyConfig.load(str(ROOT / path))
    for key in ("model", "dataloader", "optimizer", "lr_multiplier", "train"):
        assert key in cfg, f"{path} lacks {key}"
    model = instantiate(cfg.model)
    assert isinstance(model, alphafree_d2.ViTMatte)
    # The optimizer builds on this model, with layer-wise lr decay unless switched off.
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    assert isinstance(optimizer, torch.optim.AdamW)
    layer_decay = cfg.optimizer.params.lr_factor_func is not None
    assert (len({g["lr"] for g in optimizer.param_groups}) > 1) == layer_decay
    # The config is serialisable (detectron2 saves it as config.yaml in the output folder).
    LazyConfig.to_py(cfg)


# Which config trains which loss policy of the paper's Tables 1, 4, 5 and 7 (lambda = 10 for
# DC/DDC, Sec. 4.1; the affinity weight is ours): losses and region of model.criterion.
PAPER_CRITERIA = {
    "configs/ablations/table1_alpha_l1.py": ({"alpha_l1": 1.0}, "whole"),
    "configs/ablations/table4_known.py": ({"known": 1.0}, "whole"),
    "configs/ablations/table4_known_affinity.py": ({"known": 1.0, "affinity": 10.0}, "whole"),
    "configs/ablations/table4_known_dc.py": ({"known": 1.0, "dc": 10.0}, "whole"),
    "configs/am2k_ddc.py": ({"known": 1.0, "ddc": 10.0}, "whole"),
    "configs/ablations/table5_dc_unknown.py": ({"known": 1.0, "dc": 10.0}, "unknown"),
    "configs/ablations/table5_ddc_unknown.py": ({"known": 1.0, "ddc": 10.0}, "unknown"),
    "configs/ablations/table7_mask_l1.py": ({"mask_l1": 1.0, "ddc": 10.0}, "whole"),
    "configs/ablations/table7_mask_bce.py": ({"mask_bce": 1.0, "ddc": 10.0}, "whole"),
}


@pytest.mark.parametrize("path", sorted(PAPER_CRITERIA))
def test_paper_configs_train_the_tables_loss_policies(path):
    criterion = instantiate(LazyConfig.load(str(ROOT / path)).model.criterion)
    losses, region = PAPER_CRITERIA[path]
    assert criterion.losses == losses and criterion.region == region and criterion.kernel_size == 11
