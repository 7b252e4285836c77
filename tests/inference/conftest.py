"""Session fixture: the tiny model of ``alphafree_d2.utils.testing``, saved as a LazyConfig file
and a checkpoint."""

from types import SimpleNamespace

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.matting_checkpointer import MattingCheckpointer
from alphafree_d2.utils.testing import TINY_CONFIG, randomise


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """config_file, checkpoint, cfg (with train.init_checkpoint set) and the model (eval)."""
    root = tmp_path_factory.mktemp("tiny_model")
    config_file = root / "tiny_config.py"
    config_file.write_text(TINY_CONFIG)
    cfg = LazyConfig.load(str(config_file))
    torch.manual_seed(0)
    model = randomise(instantiate(cfg.model)).eval()
    MattingCheckpointer(model, str(root)).save("model_final")
    checkpoint = root / "model_final.pth"
    cfg.train.init_checkpoint = str(checkpoint)
    return SimpleNamespace(
        config_file=str(config_file), checkpoint=str(checkpoint), cfg=cfg, model=model
    )
