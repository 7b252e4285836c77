"""tools/lazyconfig_train_net.py end to end on CPU: train, evaluate, refuse to overwrite, resume,
survive a kill, --eval-only, two GLOO processes. A tiny model on the built-in demo data."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "tools/lazyconfig_train_net.py")
TINY = [
    "model.backbone.depth=2",
    "model.backbone.embed_dim=32",
    "model.backbone.num_heads=1",
    "model.backbone.window_block_indexes=[0]",
    "model.backbone.residual_block_indexes=[]",
    "dataloader.train.mapper.augmentations.crop_size=64",
    "dataloader.train.total_batch_size=4",
    "dataloader.train.num_workers=0",
    "model.criterion.kernel_size=5",
    "train.log_period=1",
]


def run(*args, check=True, timeout=600):
    done = subprocess.run(
        [sys.executable, SCRIPT, "--config-file", str(ROOT / "configs/demo_ddc.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def metrics(output_dir):
    lines = (Path(output_dir) / "metrics.json").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    done = run(*TINY, "train.max_iter=6", "train.checkpointer.period_epochs=0.25",
               f"train.output_dir={out}")  # fmt: skip
    return out, done


def test_training_logs_losses_checkpoints_and_evaluates(trained):
    out, done = trained
    records = metrics(out)
    train_records = [r for r in records if "loss_known" in r]
    assert [r["iteration"] for r in train_records] == list(range(6))
    assert all("loss_ddc" in r and "lr" in r for r in train_records)
    assert (out / "model_final.pth").is_file()
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    # The evaluator ran at the end: metrics in the log, in metrics.json and as a CSV.
    log = done.stdout + done.stderr
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in log
    assert "Matting evaluation of 'demo_val'" in log and "SAD-T=" in log  # the plugin's own line
    assert any("matting/SAD" in r for r in records)
    assert list((out / "inference").glob("*.csv"))
    assert list(out.glob("events.out.tfevents.*"))  # TensorBoard


def test_a_new_run_refuses_to_overwrite(trained):
    out, _ = trained
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    done = run(*TINY, "train.max_iter=6", f"train.output_dir={out}", check=False)
    assert done.returncode != 0
    assert "--resume" in done.stderr and "nothing was overwritten" in done.stderr
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_eval_only(trained):
    out, _ = trained
    done = run("--eval-only", *TINY, f"train.init_checkpoint={out / 'model_final.pth'}",
               f"train.output_dir={out / 'eval'}")  # fmt: skip
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in done.stdout + done.stderr
    assert "SAD-T=" in done.stdout + done.stderr


def test_missing_init_checkpoint_fails_at_once(tmp_path):
    done = run(*TINY, "train.init_checkpoint=pretrained/none.pth",
               f"train.output_dir={tmp_path / 'x'}", check=False)  # fmt: skip
    assert done.returncode != 0
    assert "convert_pretrained.py" in done.stderr
    assert "Starting training" not in done.stdout + done.stderr
    assert not (tmp_path / "x").exists()


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, SCRIPT, "--config-file", str(ROOT / "configs/demo_ddc.py"), *TINY,
            "train.max_iter=10000", "train.checkpointer.period_epochs=0.125",
            f"train.output_dir={out}"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # wait for the second checkpoint, then kill hard
            if (out / "model_0000003.pth").exists():
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint was written in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = (out / "last_checkpoint").read_text()
    iteration = int(last[len("model_") : -len(".pth")])
    assert iteration >= 3
    done = run("--resume", *TINY, f"train.max_iter={iteration + 3}",
               "train.checkpointer.period_epochs=0.125", f"train.output_dir={out}")  # fmt: skip
    log = done.stdout + done.stderr
    assert f"Starting training from iteration {iteration + 1}" in log
    assert (out / "model_final.pth").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    done = run("--num-gpus", "2", "--dist-url", "auto", *TINY, "train.max_iter=3", f"train.output_dir={out}")
    log = done.stdout + done.stderr
    assert "World size: 2" in log
    assert [r["iteration"] for r in metrics(out) if "loss_known" in r] == [0, 1, 2]
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in log
