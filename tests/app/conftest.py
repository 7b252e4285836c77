"""Fixtures of the demo page's tests: two tiny randomly initialised models (LazyConfig file and
checkpoints, see ``alphafree_d2.utils.testing.TINY_CONFIG``) and the ``browser`` marker.

Without the demo extra, selenium or Chromium these tests are skipped; ALPHAFREE_REQUIRE_DEMO=1
(set by .ci/run) turns a missing piece into an error instead.
"""

import importlib.util
import os
from types import SimpleNamespace

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.matting_checkpointer import MattingCheckpointer
from alphafree_d2.utils.testing import TINY_CONFIG, randomise


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: drives the demo page in headless Chromium (apt-get install chromium "
        "chromium-driver; pip install selenium); deselect with -m 'not browser'",
    )
    if os.environ.get("ALPHAFREE_REQUIRE_DEMO") == "1":
        missing = [
            name
            for name in ("starlette", "uvicorn", "httpx", "selenium")
            if importlib.util.find_spec(name) is None
        ]
        if missing:
            raise pytest.UsageError(
                f"ALPHAFREE_REQUIRE_DEMO=1 but {', '.join(missing)} not installed: "
                f"pip install -e .[demo,test]"
            )


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory):
    """config_file and two checkpoints (checkpoints[0], [1]) of differently seeded tiny models."""
    root = tmp_path_factory.mktemp("tiny_demo_models")
    config_file = root / "tiny_config.py"
    config_file.write_text(TINY_CONFIG)
    cfg = LazyConfig.load(str(config_file))
    checkpoints = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = randomise(instantiate(cfg.model), seed=seed).eval()
        MattingCheckpointer(model, str(root)).save(f"model_{seed}")
        checkpoints.append(str(root / f"model_{seed}.pth"))
    return SimpleNamespace(config_file=str(config_file), checkpoints=checkpoints)


@pytest.fixture(scope="session")
def tiny_predictors(tiny_pair):
    """MattingPredictor of each tiny checkpoint, on CPU."""
    from alphafree_d2.inference import MattingPredictor

    cfg = LazyConfig.load(tiny_pair.config_file)
    return [MattingPredictor(cfg, path, device="cpu") for path in tiny_pair.checkpoints]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """As in tests/inference: tiny tensors gain nothing from intra-op threads on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
