"""configs/finetune_vitmatte_ddc.py on the demo data, from a transformers ViTMatte converted by
tools/convert_pretrained.py with the settings it prints: the whole model comes from the
checkpoint, known + DDC train, and the checkpoint serves evaluation and prediction as it is."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint import load_torch_weights, load_trained_weights
from alphafree_d2.engine import apply_overrides
from alphafree_d2.inference import MattingPredictor
from alphafree_d2.inference.export import random_images, random_trimaps

pytest.importorskip("transformers")
from transformers import VitMatteForImageMatting, VitMatteImageProcessor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "finetune_vitmatte_ddc.py"
DEMO = [
    "dataloader.train.dataset.names=demo_train",
    "dataloader.test.dataset.names=demo_val",
    "dataloader.train.mapper.augmentations.crop_size=64",
    "dataloader.train.total_batch_size=2",
    "dataloader.train.num_workers=0",
    "dataloader.test.num_workers=0",
    "model.criterion.kernel_size=5",
    "train.log_period=1",
]


def run(script, *args):
    cmd = [sys.executable, str(ROOT / "tools" / script), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_finetune_config_trains_from_a_converted_transformers_model(tmp_path, save_random_hf):
    folder = tmp_path / "hf"
    save_random_hf(folder, chans=4, depth=2, out_stage=2)
    pretrained = tmp_path / "pretrained" / "vitmatte.pth"
    printed = run("convert_pretrained.py", "--format", "hf-vitmatte", folder, pretrained)
    # The settings line the tool prints, as a user copies it onto the command line.
    settings = (
        printed.split("the same network in this package's configs:\n")[1].splitlines()[0].split()
    )
    out = tmp_path / "run"
    run("lazyconfig_train_net.py", "--config-file", CONFIG, *settings, *DEMO,
        "train.max_iter=2", "optimizer.lr=1e-12", f"train.init_checkpoint={pretrained}",
        f"train.output_dir={out}")  # fmt: skip
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    losses = [r for r in records if "loss_ddc" in r]
    assert [r["iteration"] for r in losses] == [0, 1]
    assert all(0 < r["loss_known"] < 10 and 0 <= r["loss_ddc"] < 10 for r in losses)
    assert any("matting/SAD-T" in r for r in records)
    # Every weight started from the checkpoint (the lr is too small to move them).
    converted = load_torch_weights(str(pretrained))["model"]
    final = load_torch_weights(str(out / "model_final.pth"))["model"]
    for key, value in converted.items():
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            torch.testing.assert_close(final[key], value, atol=1e-6, rtol=0, msg=key)

    # The converted checkpoint as it is: complete for --eval-only, and MattingPredictor (the
    # engine of predict.py and the demo page) predicts transformers' alpha in the unknown band.
    cfg = LazyConfig.load(str(CONFIG))
    apply_overrides(cfg, settings)
    load_trained_weights(instantiate(cfg.model), str(pretrained))
    image = random_images((70, 90), seed=5)[0].permute(1, 2, 0).numpy()
    trimap = random_trimaps((70, 90), seed=5)[0, 0].numpy()
    ours = MattingPredictor(cfg, str(pretrained), device="cpu")(image, trimap)
    model = VitMatteForImageMatting.from_pretrained(folder, local_files_only=True).eval()
    inputs = VitMatteImageProcessor.from_pretrained(folder)(
        images=image, trimaps=trimap, return_tensors="pt"
    )
    with torch.no_grad():
        theirs = model(**inputs).alphas[0, 0, :70, :90].numpy()
    band = trimap == 128
    assert abs(ours - theirs)[band].mean() <= 1e-3
