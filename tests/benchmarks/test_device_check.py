"""benchmarks/device_check.sh's CPU dry run: the same steps as on the GPU machine at tiny sizes
(the backend report, the CUDA tests collect and skip, the loss benchmarks and the AM-2K training
benchmark run and print their tables), each saved under --out, so the script is known to work
before a GPU is spent on it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# End-to-end runs in subprocesses: deselect with -m 'not slow' (docs/engineering.md).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_device_check_dry_run(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    out_dir = tmp_path / "results"
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--device", "cpu", "--out", str(out_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    steps = ("== 0. Backends", "== 1. CUDA tests", "== 2. DDC loss", "== 3. DDC loss, the torch",
             "== 4. AM-2K recipe")  # fmt: skip
    for step in steps:
        assert step in out
    # the backend report comes first and is saved with the results
    assert out.index("== 0. Backends") < out.index('"auto" on cpu: ') < out.index("== 1. CUDA")
    report = (out_dir / "0_backends.txt").read_text()
    assert "numba   | " in report and '"auto" on cpu: ' in report
    assert "deselected" in out or "skipped" in out  # the cuda tests collected
    assert "2x48x48   real |" in out  # the loss benchmark's row: Listing 1 vs ours
    assert "backend torch (bands of rows within 1 MiB)" in out
    assert "2x48x48 random |" in (out_dir / "3_ddc_loss_torch.txt").read_text()
    assert "Listing 1 (torch) |" in out and "ours (auto) |" in out
    saved = sorted(p.name for p in out_dir.iterdir())
    assert saved == ["0_backends.txt", "1_cuda_tests.txt", "2_ddc_loss_amp.txt",
                     "3_ddc_loss_torch.txt", "4_train_speed.txt", "machine.txt"]  # fmt: skip
