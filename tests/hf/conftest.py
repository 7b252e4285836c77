"""Fixtures of the transformers bridge's tests: tiny randomly initialised models of both sides.

These tests need the hf extra (transformers, safetensors); without it each module is skipped
(pytest.importorskip). ALPHAFREE_REQUIRE_HF=1 (set by .ci/run) turns a missing extra into an
error instead.
"""

import importlib.util
import os

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.utils.testing import randomise, tiny_config


def pytest_configure(config):
    if os.environ.get("ALPHAFREE_REQUIRE_HF") == "1":
        missing = [
            n for n in ("transformers", "safetensors") if importlib.util.find_spec(n) is None
        ]
        if missing:
            raise pytest.UsageError(
                f"ALPHAFREE_REQUIRE_HF=1 but {', '.join(missing)} not installed: pip install -e .[hf]"
            )


@pytest.fixture(scope="session")
def tiny_configs(tmp_path_factory):
    """{3: path, 4: path}: LazyConfig files of the tiny model (alphafree_d2/utils/testing.py)
    with 16 head channels, automatic and trimap-guided."""
    root = tmp_path_factory.mktemp("hf_tiny_configs")
    paths = {}
    for chans in (3, 4):
        paths[chans] = root / f"tiny_{chans}.py"
        paths[chans].write_text(tiny_config(chans, head_channels=16))
    return paths


@pytest.fixture(scope="session")
def tiny_models(tiny_configs):
    """{3: model, 4: model}: randomised (position tables, BatchNorm statistics), eval mode."""
    models = {}
    for chans, path in tiny_configs.items():
        torch.manual_seed(chans)
        models[chans] = randomise(instantiate(LazyConfig.load(str(path)).model), seed=chans)
    return {chans: m.eval() for chans, m in models.items()}


@pytest.fixture(scope="session")
def save_random_hf():
    """:func:`save_random_hf_vitmatte` (needs transformers)."""
    return save_random_hf_vitmatte


def save_random_hf_vitmatte(folder, chans=4, out_stage=3, depth=3, window=4, seed=0):
    """A small VitMatteForImageMatting, randomly initialised by transformers, with random
    BatchNorm statistics and position tables, saved with save_pretrained (as on the hub)."""
    from transformers import (
        VitDetConfig,
        VitMatteConfig,
        VitMatteForImageMatting,
        VitMatteImageProcessor,
    )

    torch.manual_seed(seed)
    backbone = VitDetConfig(
        num_channels=chans, image_size=128, pretrain_image_size=64, patch_size=16,
        hidden_size=32, num_hidden_layers=depth, num_attention_heads=2, mlp_ratio=2,
        use_relative_position_embeddings=True, window_size=window,
        window_block_indices=[0, 2], residual_block_indices=[1],
        out_features=[f"stage{out_stage}"],
    )  # fmt: skip
    config = VitMatteConfig(
        backbone_config=backbone,
        hidden_size=32,
        convstream_hidden_sizes=[8, 16, 16],
        fusion_hidden_sizes=[16, 16, 8, 8],
    )
    model = VitMatteForImageMatting(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos" in name or "position_embeddings" in name:
                p.normal_(0, 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.3)
    model.save_pretrained(folder)
    VitMatteImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder)
    return model
