"""benchmarks/device_check.sh's CPU dry run: the same three steps as on the GPU machine at tiny
sizes (the CUDA tests collect and skip, the loss benchmark and the AM-2K training benchmark run
and print their tables), so the script is known to work before a GPU is spent on it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# End-to-end runs in subprocesses: deselect with -m 'not slow' (docs/engineering.md).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_device_check_dry_run():
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for step in ("== 1. CUDA tests", "== 2. DDC loss", "== 3. AM-2K recipe"):
        assert step in out
    assert "deselected" in out or "skipped" in out  # the cuda tests collected
    assert "2x48x48   real |" in out  # the loss benchmark's row: Listing 1 vs ours
    assert "Listing 1 (torch) |" in out and "ours (auto) |" in out
