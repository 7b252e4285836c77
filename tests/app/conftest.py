"""Fixtures of the demo page's tests: tiny randomly initialised models (LazyConfig files and
checkpoints, see ``alphafree_d2.utils.testing.TINY_CONFIG``: two automatic, one trimap-guided, one whose
decoder weights are NaN), the headless browser, and the ``browser`` marker.

Without the demo extra, selenium or Chromium these tests are skipped; ALPHAFREE_REQUIRE_DEMO=1
(set by .ci/run) turns a missing piece into an error instead.
"""

import importlib.util
import os
import shutil
from types import SimpleNamespace

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.matting_checkpointer import MattingCheckpointer
from alphafree_d2.utils.testing import TINY_CONFIG, randomise, tiny_config

TINY_TRIMAP_CONFIG = tiny_config(in_chans=4)
# Chromium resolves every *.test name to this machine: pages of "another site" for the tests of
# DNS rebinding and cross-site requests.
BROWSER_HOST_RULES = "MAP *.test 127.0.0.1"


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


def _save_tiny(root, config_text, name, seed, poison=False):
    config_file = root / f"{name}.py"
    config_file.write_text(config_text)
    torch.manual_seed(seed)
    model = randomise(instantiate(LazyConfig.load(str(config_file)).model), seed=seed).eval()
    if poison:  # a diverged run: every decoder weight NaN
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.fill_(float("nan"))
    MattingCheckpointer(model, str(root)).save(name)
    return str(config_file), str(root / f"{name}.pth")


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory):
    """config_file and two checkpoints (checkpoints[0], [1]) of differently seeded tiny models."""
    root = tmp_path_factory.mktemp("tiny_demo_models")
    checkpoints = [_save_tiny(root, TINY_CONFIG, f"model_{seed}", seed)[1] for seed in (0, 1)]
    return SimpleNamespace(config_file=str(root / "model_0.py"), checkpoints=checkpoints)


@pytest.fixture(scope="session")
def tiny_trimap(tmp_path_factory):
    """config_file and checkpoint of a tiny trimap-guided model."""
    root = tmp_path_factory.mktemp("tiny_trimap_model")
    config_file, checkpoint = _save_tiny(root, TINY_TRIMAP_CONFIG, "trimap_model", 2)
    return SimpleNamespace(config_file=config_file, checkpoint=checkpoint)


@pytest.fixture(scope="session")
def nan_checkpoint(tmp_path_factory):
    """config_file and checkpoint of a tiny automatic model whose decoder weights are NaN."""
    root = tmp_path_factory.mktemp("tiny_nan_model")
    config_file, checkpoint = _save_tiny(root, TINY_CONFIG, "nan_model", 3, poison=True)
    return SimpleNamespace(config_file=config_file, checkpoint=checkpoint)


@pytest.fixture(scope="session")
def tiny_predictors(tiny_pair):
    """MattingPredictor of each tiny checkpoint, on CPU."""
    from alphafree_d2.inference import MattingPredictor

    cfg = LazyConfig.load(tiny_pair.config_file)
    return [MattingPredictor(cfg, path, device="cpu") for path in tiny_pair.checkpoints]


@pytest.fixture(scope="session")
def trimap_predictor(tiny_trimap):
    """MattingPredictor of the tiny trimap-guided model, on CPU."""
    from alphafree_d2.inference import MattingPredictor

    cfg = LazyConfig.load(tiny_trimap.config_file)
    return MattingPredictor(cfg, tiny_trimap.checkpoint, device="cpu")


@pytest.fixture
def app_log(caplog):
    """caplog, also receiving the package's records when detectron2's setup_logger (run by the
    tool's main in this process) has stopped them from propagating to the root logger."""
    import logging

    logger = logging.getLogger("alphafree_d2")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def missing_browser(what):
    message = f"{what}; install it to run the demo page's browser tests"
    if os.environ.get("ALPHAFREE_REQUIRE_DEMO") == "1":
        pytest.fail(message + " (ALPHAFREE_REQUIRE_DEMO=1 makes this a failure)")
    pytest.skip(message)


def _find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium (one for the session), 1400 x 1200, downloads into ``downloads``."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing_browser("selenium is not installed (pip install -e .[test])")
    chromium, chromedriver = _find_chromium(), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        missing_browser(
            "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
        )
    root = tmp_path_factory.mktemp("browser")
    downloads = root / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1200",
        f"--user-data-dir={root / 'profile'}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--host-resolver-rules={BROWSER_HOST_RULES}",
        "--no-proxy-server",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    service = Service(executable_path=chromedriver, log_output=str(root / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        yield SimpleNamespace(driver=driver, downloads=downloads)
    finally:
        driver.quit()
