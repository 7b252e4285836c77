"""examples/yacs_train_net.py: a yacs project trains and evaluates the demo with DefaultTrainer."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# End-to-end runs in subprocesses: deselect with -m 'not slow' (docs/engineering.md).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# A tiny model on 64x64 crops: the test checks the wiring, not the learning.
TINY = [
    "MODEL.DEVICE", "cpu",
    "MODEL.VIT.IMG_SIZE", "64",
    "MODEL.VIT.EMBED_DIM", "32",
    "MODEL.VIT.DEPTH", "2",
    "MODEL.VIT.NUM_HEADS", "2",
    "MODEL.VIT.WINDOW_SIZE", "4",
    "MODEL.VIT.WINDOW_BLOCK_INDEXES", "[0]",
    "MODEL.VIT.RESIDUAL_BLOCK_INDEXES", "[1]",
    "INPUT.CROP.SIZE", "[64, 64]",
    "SOLVER.IMS_PER_BATCH", "2",
    "SOLVER.MAX_ITER", "4",
    "SOLVER.STEPS", "(2, 3)",
    "SOLVER.WARMUP_ITERS", "1",
    "SOLVER.CHECKPOINT_PERIOD", "100",
    "TEST.EVAL_PERIOD", "0",
    "DATALOADER.NUM_WORKERS", "0",
]  # fmt: skip


def _run(tmp_path, *args):
    env = {**os.environ, "DETECTRON2_DATASETS": str(tmp_path / "datasets")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "yacs_train_net.py"),
            "--config-file",
            str(ROOT / "examples" / "demo_ddc.yaml"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _per_image(folder):
    with open(folder / "demo_val_whole_image_per_image.csv") as f:
        return list(csv.DictReader(f))


def test_yacs_default_trainer_trains_and_evaluates_the_demo(tmp_path):
    out = tmp_path / "out"
    done = _run(tmp_path, *TINY, "OUTPUT_DIR", str(out))

    # Trained: detectron2's metrics.json has the criterion's named losses, finite.
    with open(out / "metrics.json") as f:
        logged = [json.loads(line) for line in f]
    losses = [row for row in logged if "loss_known" in row]
    assert losses and all(0 <= row["loss_known"] < 10 and row["loss_ddc"] >= 0 for row in losses)
    assert (out / "model_final.pth").is_file()

    # Evaluated: the MattingEvaluator's per-image CSV covers demo_val, and the metrics reached
    # DefaultTrainer's results (logged in its copy-paste format).
    rows = _per_image(out / "inference")
    assert len(rows) == 12 and all(0 <= float(r["MAD"]) <= 1 for r in rows)
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in done.stdout + done.stderr

    # --eval-only with the trained weights reproduces the final evaluation.
    again = tmp_path / "again"
    weights = str(out / "model_final.pth")
    _run(tmp_path, "--eval-only", *TINY, "MODEL.WEIGHTS", weights, "OUTPUT_DIR", str(again))
    assert _per_image(again / "inference") == rows
