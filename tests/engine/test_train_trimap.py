"""configs/demo_ddc_trimap.py end to end on CPU: a tiny 4-channel model trains on the demo data
and is evaluated on demo_val with the evaluation trimaps as input."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from detectron2.data import DatasetCatalog

import alphafree_d2  # noqa: F401  (registers demo_val)
from alphafree_d2.data import read_trimap

# End-to-end runs in subprocesses: deselect with -m 'not slow' (docs/engineering.md).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "model.backbone.depth=2",
    "model.backbone.embed_dim=32",
    "model.backbone.num_heads=1",
    "model.backbone.window_block_indexes=[0]",
    "model.backbone.residual_block_indexes=[]",
    "dataloader.train.mapper.augmentations.crop_size=64",
    "dataloader.train.total_batch_size=2",
    "dataloader.train.num_workers=0",
    "model.criterion.kernel_size=5",
    "train.log_period=1",
]


def test_trimap_guided_demo_trains_and_evaluates(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "tools/lazyconfig_train_net.py"), "--config-file",
           str(ROOT / "configs/demo_ddc_trimap.py"), *TINY, "train.max_iter=3",
           "dataloader.evaluator.save_predictions=True", f"train.output_dir={out}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records if "loss_known" in r] == [0, 1, 2]
    assert any("matting/SAD-T" in r for r in records)
    # Evaluated with the evaluation trimaps as input: predictions equal them where known.
    record = sorted(DatasetCatalog.get("demo_val"), key=lambda r: r["image_id"])[0]
    prediction = out / "inference" / "predictions" / "demo_val" / f"{record['image_id']}.png"
    alpha = cv2.imread(str(prediction), cv2.IMREAD_UNCHANGED)
    trimap = read_trimap(record["trimap_file_name"])
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 255).all()
