"""The command-line tools start and describe themselves."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "script",
    [
        "lazyconfig_train_net.py",
        "convert_pretrained.py",
        "alpha_to_trimap.py",
        "predict.py",
        "export.py",
        "demo_app.py",
        "install_detectron2.py",
    ],
)
def test_help(script):
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()
