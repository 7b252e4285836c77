"""Fixtures of the transformers bridge's tests: tiny randomly initialised models of both sides.

These tests need the hf extra (transformers, safetensors); without it each module is skipped
(pytest.importorskip). ALPHAFREE_REQUIRE_HF=1 (set by .ci/run) turns a missing extra into an
error instead.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "inference"))
from tiny_matting import randomise, tiny_config  # noqa: E402


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
    """{3: path, 4: path}: LazyConfig files of the tiny model (tests/inference/tiny_matting.py)
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


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """As in tests/inference: tiny tensors gain nothing from intra-op threads on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
