"""python -m benchmarks.loss_policies: the commands it builds, its tables and figure, and one smoke
run through the real training script (tiny model, 2 iterations; about 30-40 s on 2 CPU cores)."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.loss_policies import cli as loss_policies
from benchmarks.loss_policies import figure, plan
from benchmarks.loss_policies import tables as report

ROOT = Path(__file__).resolve().parents[2]


def _write_fake_real_dir(root, count=2):
    """Tiny 'photos' with alpha and trimap, matched by stem, like alphamatting-dev."""
    rng = np.random.default_rng(0)
    for sub in ("image", "alpha", "trimap"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        h, w = 72 + 8 * i, 96
        yy, xx = np.mgrid[:h, :w]
        alpha = np.clip(1.5 - np.hypot(yy - h / 2, xx - w / 2) / 12.0, 0, 1)
        image = rng.uniform(0, 255, (h, w, 3)) * (1 - alpha[..., None]) + 200 * alpha[..., None]
        trimap = np.full((h, w), 128, np.uint8)
        trimap[alpha == 1] = 255
        trimap[alpha == 0] = 0
        cv2.imwrite(str(root / "image" / f"p{i}.png"), image.astype(np.uint8))
        cv2.imwrite(str(root / "alpha" / f"p{i}.png"), np.rint(alpha * 255).astype(np.uint8))
        cv2.imwrite(str(root / "trimap" / f"p{i}.png"), trimap)


def test_dry_run_commands(tmp_path, capsys):
    real = tmp_path / "real"
    _write_fake_real_dir(real)
    out = tmp_path / "out"
    args = ["--dry-run", "--output", str(out), "--real-dir", str(real), "--iters", "100"]
    assert loss_policies.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    commands = [line for line in lines if "_train_entry.py" in line]
    # 7 policies x 2 seeds, each a training and an evaluation command
    assert len(commands) == 28
    train = [c for c in commands if "--resume" in c]
    assert len(train) == 14 and all("train.max_iter=100" in c for c in train)
    # 100 iterations x batch 4 / 64 images = 6.25 epochs; lr steps at 60 % and 90 %
    assert all("lr_multiplier.milestones_epochs=[3.75,5.625]" in c for c in train)
    alpha = [c for c in train if "runs/alpha_l1/" in c][0]
    assert "model.criterion.losses.alpha_l1=1.0" in alpha
    assert "model.criterion.losses.known=0.0" in alpha and "model.criterion.losses.ddc=0.0" in alpha
    unknown = [c for c in train if "runs/known_ddc_unknown/" in c][0]
    assert "model.criterion.region=unknown" in unknown
    mask = [c for c in train if "runs/mask_l1_ddc/" in c][0]
    assert f"dataloader.train.dataset.names={loss_policies.MASK_DATASET}" in mask
    evals = [c for c in commands if "--eval-only" in c]
    assert all(f"dataloader.test.dataset.names={loss_policies.REAL_DATASET}" in c for c in evals)
    assert not (out / "runs").exists()  # nothing ran


def test_quote_paths_for_overrides():
    assert plan._quote("/a/b_c-1.2/d") == "/a/b_c-1.2/d"
    assert plan._quote("/a b/it's") == "'/a b/it\\'s'"


def test_aggregate_and_table():
    seeds = [
        {k: 1.0 for k in (*report.PAPER_COLUMNS, "SAD-K")},
        {k: 3.0 for k in (*report.PAPER_COLUMNS, "SAD-K")},
    ]
    stats = report.aggregate(seeds)
    assert (
        stats["SAD"][0] == 2.0
        and math.isclose(stats["SAD"][1], math.sqrt(2))
        and stats["SAD"][2] == 2
    )
    table = report.markdown_table([("L_known", "Trimap", "T4 r1", stats)], {"zero": seeds[0]})
    header, rule, row, ref = table.splitlines()
    assert header.split("|")[4:12] == [
        " SAD ",
        " MAD ",
        " MSE ",
        " Grad ",
        " Conn ",
        " SAD-T ",
        " MSE-T ",
        " SAD-K ",
    ]
    assert "2.00 ± 1.41" in row and "2.0000 ± 1.4142" in row
    assert ref.startswith("| *reference: zero*")


def test_detail_box_finds_the_transition():
    gt = np.zeros((60, 90), np.float32)
    gt[:, 70:] = np.linspace(0, 1, 20)[None]  # a soft band at the right
    trimap = np.where(gt >= 1, 255, np.where(gt <= 0, 0, 128)).astype(np.uint8)
    x0, y0, side = figure.detail_box(gt, trimap)
    assert side == 20 and x0 + side > 70


@pytest.mark.slow
def test_smoke_run(tmp_path):
    real = tmp_path / "real"
    _write_fake_real_dir(real)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable, "-m", "benchmarks.loss_policies", "--smoke",
        "--policies", "known_ddc", "mask_l1_ddc", "--real-dir", str(real), "--output", str(out),
        "--figure-images", "2", "--figure-width", "64",
    ]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=str(tmp_path), env=env
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = (out / "results.md").read_text()
    assert results.count("| SAD | MAD | MSE | Grad | Conn | SAD-T | MSE-T | SAD-K |") == 2
    assert "| L1 mask + L_DDC | Mask |" in results and "reference: all background" in results
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["dataset"], r["policy"]) for r in rows if r["seed"]} == {
        (d, p) for d in ("demo_val", "real") for p in ("known_ddc", "mask_l1_ddc")
    }
    assert len(os.listdir(out / "labels" / "demo_train_mask")) == 64 + 1  # + generation.json
    for name in ("figure_demo_val.png", "figure_real.png"):
        figure = cv2.imread(str(out / name))
        # image | 2 policies | ground truth, 64 px tiles with 3 px gaps
        assert figure.shape[1] == 4 * 64 + 3 * 3
    info = json.loads((out / "runs" / "known_ddc" / "seed0" / "benchmark_run.json").read_text())
    assert (out / "runs" / "known_ddc" / "seed0" / "model_final.pth").is_file()

    # A second invocation reuses the finished runs; other settings are refused.
    again = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=str(tmp_path), env=env
    )
    assert again.returncode == 0, again.stderr[-3000:]
    info2 = json.loads((out / "runs" / "known_ddc" / "seed0" / "benchmark_run.json").read_text())
    assert info2 == info
    other = subprocess.run(
        [*cmd, "--scale-range", "0.5", "2.0"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=str(tmp_path),
        env=env,
    )
    assert other.returncode != 0 and "--overwrite" in other.stderr


@pytest.mark.parametrize("missing", ["alpha"])
def test_real_dir_must_have_three_folders(tmp_path, missing):
    real = tmp_path / "real"
    _write_fake_real_dir(real)
    for f in (real / missing).iterdir():
        f.unlink()
    (real / missing).rmdir()
    with pytest.raises(SystemExit, match=f"{missing} is missing"):
        loss_policies._check_real_dir(str(real))


def test_crop_policy_option(tmp_path, capsys):
    from alphafree_d2.data import CROP_POLICIES

    assert loss_policies.CROP_POLICIES == CROP_POLICIES
    for policy in CROP_POLICIES:
        args = ["--dry-run", "--output", str(tmp_path), "--policies", "known"]
        assert loss_policies.main([*args, "--crop-policy", policy]) == 0
        train = [c for c in capsys.readouterr().out.splitlines() if "--resume" in c]
        assert train and all(
            f"dataloader.train.mapper.augmentations.crop_policy={policy}" in c for c in train
        )


def test_a_finished_run_is_reused_after_the_entry_script_moved():
    from benchmarks.loss_policies import run

    cmd = [sys.executable, "/new/place/_train_entry.py", "--config-file", "c.py", "train.seed=0"]
    assert run._same_settings("/old/_train_entry.py --config-file c.py train.seed=0", cmd)
    assert not run._same_settings("/old/_train_entry.py --config-file c.py train.seed=1", cmd)
