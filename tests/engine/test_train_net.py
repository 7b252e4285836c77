"""tools/lazyconfig_train_net.py end to end on CPU: train, evaluate, refuse to overwrite, resume
cleanly after a crash, --eval-only in its own folder, config mistakes, two GLOO processes, two
"machines"; the folder lock, --resume with changed configs, initial weights of another config,
the evaluation set's pre-flight, expected errors as one line (exit 2, no traceback). A tiny model
on the built-in demo data. Crashes and Ctrl+C are simulated deterministically
(tests/engine/crashing_train_net.py exits right after a chosen iteration, or sends itself SIGINT
inside a checkpoint write), never by timing a kill.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alphafree_d2.engine import RunLock
from alphafree_d2.engine.run_folder import LOCK_FILE

# End-to-end runs in subprocesses: deselect with -m 'not slow' (docs/engineering.md).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "tools/lazyconfig_train_net.py")
CRASHING = str(ROOT / "tests/engine/crashing_train_net.py")
CONFIG = str(ROOT / "configs/demo_ddc.py")
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


def run(*args, check=True, timeout=600, crash_after=None, config=CONFIG, env=None):
    """The script (or, with ``crash_after=N``, the script dying right after iteration N;
    ``crash_after="sigint-in-save"``: Ctrl+C inside the first checkpoint write)."""
    entry = [SCRIPT] if crash_after is None else [CRASHING, str(crash_after)]
    done = subprocess.run(
        [sys.executable, *entry, "--config-file", config, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
    )
    if check and done.returncode != (137 if isinstance(crash_after, int) else 0):
        raise AssertionError(
            f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def metrics(output_dir):
    lines = (Path(output_dir) / "metrics.json").read_text().splitlines()
    return [json.loads(line) for line in lines]


def train_iterations(output_dir):
    return [r["iteration"] for r in metrics(output_dir) if "loss_known" in r]


def refused(done, *phrases):
    """An expected refusal: exit status 2, the phrases in its one error line, no traceback."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    error = done.stderr[done.stderr.rindex("error: ") :]
    for phrase in phrases:
        assert phrase in error, (phrase, done.stderr[-3000:])
    return last


def file_hashes(folder, skip=()):
    """{relative path: sha256} of every file under ``folder`` outside the ``skip`` subfolders."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] not in skip
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    done = run(*TINY, "train.max_iter=6", "train.checkpointer.period_epochs=0.25",
               "train.amp.enabled=True", f"train.output_dir={out}")  # fmt: skip
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


def test_runs_start_without_third_party_noise(trained):
    _, done = trained
    log = done.stdout + done.stderr
    assert "FutureWarning" not in log and "is deprecated" not in log
    # AMP from a CUDA recipe on CPU: said once, as what happens.
    assert log.count("this CPU run trains in float32") == 1
    assert "CPU: 1 process(es) on this machine" in log


def test_a_new_run_refuses_to_overwrite(trained):
    out, _ = trained
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    done = run(*TINY, "train.max_iter=6", f"train.output_dir={out}", check=False)
    refused(done, "--resume", "nothing was overwritten")
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_eval_only_writes_its_own_folder(trained):
    out, _ = trained
    # As the README shows it: the run's own config, so train.output_dir is the run's folder.
    # It locks its own folder, so it also runs while a training run holds the run's folder.
    with RunLock(str(out)):
        before = file_hashes(out, skip={"eval"})
        done = run(*TINY, f"train.init_checkpoint={out / 'model_final.pth'}",
                   f"train.output_dir={out}", "--eval-only")  # fmt: skip
        assert file_hashes(out, skip={"eval"}) == before  # nothing of the training run changed
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in done.stdout + done.stderr
    assert "SAD-T=" in done.stdout + done.stderr
    own = out / "eval" / "model_final-demo_val"
    assert (own / "config.yaml").is_file() and "Matting evaluation" in (own / "log.txt").read_text()
    assert list((own / "inference").glob("*.csv"))


def test_eval_only_refuses_a_partial_checkpoint(trained, tmp_path):
    out, _ = trained
    state = torch.load(out / "model_final.pth", weights_only=True)["model"]
    backbone = tmp_path / "backbone_only.pth"
    torch.save({"model": {k: v for k, v in state.items() if k.startswith("backbone.")}}, backbone)
    args = [
        "--eval-only",
        *TINY,
        f"train.init_checkpoint={backbone}",
        f"train.output_dir={tmp_path}",
    ]
    done = run(*args, check=False)
    refused(done, "backbone_only.pth does not hold the config's model: it lacks", "decoder.",
            "--allow-partial-checkpoint")  # fmt: skip
    assert "copypaste" not in done.stdout + done.stderr
    # The explicit flag: warned, evaluated; non-ASCII paths in the overrides work.
    renamed = tmp_path / "épine dorsale.pth"
    shutil.copy(backbone, renamed)
    args = ["--eval-only", *TINY, f"train.init_checkpoint={renamed}",
            f"train.output_dir={tmp_path / 'sortie ü'}"]  # fmt: skip
    done = run("--allow-partial-checkpoint", *args)
    assert "Going on anyway" in done.stdout + done.stderr
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in done.stdout + done.stderr
    own = tmp_path / "sortie ü" / "eval" / "épine dorsale-demo_val"
    assert (own / "config.yaml").is_file() and list((own / "inference").glob("*.csv"))


def test_a_config_mistake_stops_at_once(tmp_path):
    # (every kind of mistake: tests/engine/test_config_checks.py)
    done = run(*TINY, "train.max_itr=5", f"train.output_dir={tmp_path / 'x'}", check=False)
    refused(done, "no setting 'train.max_itr'; did you mean 'train.max_iter'?")
    assert not (tmp_path / "x").exists()


def test_missing_init_checkpoint_fails_at_once(tmp_path):
    done = run(*TINY, "train.init_checkpoint=pretrained/none.pth",
               f"train.output_dir={tmp_path / 'x'}", check=False)  # fmt: skip
    refused(done, "pretrained/none.pth does not exist", "convert_pretrained.py")
    assert "Starting training" not in done.stdout + done.stderr
    assert not (tmp_path / "x").exists()


def test_crash_before_the_first_checkpoint(tmp_path):
    """A run that dies before any checkpoint leaves records; a new run must not append to them,
    and --resume starts again from iteration 0 with each iteration logged once."""
    out = tmp_path / "run"
    run(*TINY, "train.max_iter=8", f"train.output_dir={out}", crash_after=2)
    assert train_iterations(out) == [0, 1, 2] and not (out / "last_checkpoint").exists()
    before = file_hashes(out)
    done = run(*TINY, "train.max_iter=8", f"train.output_dir={out}", check=False)
    refused(done, "stopped before its first checkpoint", "--resume")
    assert file_hashes(out) == before
    done = run("--resume", *TINY, "train.max_iter=4", f"train.output_dir={out}")
    assert "Starting training from iteration 0" in done.stdout + done.stderr
    assert train_iterations(out) == [0, 1, 2, 3]


def test_resume_after_a_crash_is_clean(tmp_path):
    """Crash after iteration 6 with checkpoints every 2 iterations (kept: 2), a checkpoint write
    cut short on disk; --resume redoes iteration 6 and goes on to 10."""
    out = tmp_path / "run"
    common = [
        *TINY,
        "train.checkpointer.period_epochs=0.125",
        "train.checkpointer.max_to_keep=2",
        f"train.output_dir={out}",
    ]  # fmt: skip  (64 images / batch 4: period 2)
    run(*common, "train.max_iter=20", crash_after=6)
    assert (out / "last_checkpoint").read_text() == "model_0000005.pth"
    assert sorted(p.name for p in out.glob("model_*.pth")) == [
        "model_0000003.pth",
        "model_0000005.pth",
    ]
    assert train_iterations(out) == list(range(7))  # iteration 6 logged, not checkpointed
    # What a kill during torch.save or the last_checkpoint update leaves (atomic_write's names),
    # and a file of the user's that only looks similar.
    leftovers = [".model_0000007.pth.tmp-k1ll3d", ".last_checkpoint.tmp-a8c2x1"]
    for name in leftovers + [".my_notes.tmp-1"]:
        (out / name).write_bytes(b"partial")

    done = run("--resume", *common, "train.max_iter=10")
    log = done.stdout + done.stderr
    assert "Starting training from iteration 6" in log
    assert train_iterations(out) == list(range(10))  # each iteration once, the redone 6 too
    assert len([r for r in metrics(out) if "matting/SAD" in r]) == 1  # the final evaluation
    # max_to_keep=2 counts the checkpoints from before the resume.
    assert sorted(p.name for p in out.glob("model_*.pth")) == [
        "model_0000007.pth",
        "model_0000009.pth",
        "model_final.pth",
    ]
    assert not [n for n in leftovers if (out / n).exists()]
    assert (out / ".my_notes.tmp-1").exists()


def test_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    done = run(*TINY, "train.max_iter=3", f"train.output_dir={out}",
               "dataloader.max_pixels=12345678", "--num-gpus", "2", "--dist-url", "auto")  # fmt: skip
    log = done.stdout + done.stderr
    assert "World size: 2" in log
    assert train_iterations(out) == [0, 1, 2]
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in log
    assert "CPU: 2 process(es) on this machine" in log  # the per-process thread count
    rank1 = (out / "log.txt.rank1").read_text()
    assert "CPU: 2 process(es) on this machine" in rank1
    # The config's pixel cap reached the second process (a process-global cap set in the
    # launching process would not: spawned processes start fresh).
    assert "more than 12,345,678 pixels are refused" in rank1
    assert (out / LOCK_FILE).read_text().startswith("pid ")  # held by the launching process


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines(tmp_path):
    """Two "machines" on localhost, one GLOO process each, meet at a TCP address and train and
    evaluate together. The port is free when chosen; if something takes it before machine 0
    listens there, the pair is started again on another port (at most 3 tries). Every process
    has a deadline, so the test cannot hang."""
    for attempt in range(3):
        out = tmp_path / f"try{attempt}"
        url = f"tcp://127.0.0.1:{_free_port()}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    SCRIPT,
                    "--config-file",
                    CONFIG,
                    "--num-machines",
                    "2",
                    "--machine-rank",
                    str(rank),
                    "--dist-url",
                    url,
                    *TINY,
                    "train.max_iter=3",
                    f"train.output_dir={out}",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            for rank in (0, 1)
        ]
        try:
            logs = [p.communicate(timeout=400)[0] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        if procs[0].returncode != 0 and "address already in use" in logs[0].lower():
            continue
        break
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "Rank of current process: 0. World size: 2" in logs[0]
    assert "Rank of current process: 1. World size: 2" in (out / "log.txt.rank1").read_text()
    assert train_iterations(out) == [0, 1, 2]
    # The 12 validation images were shared between the machines and gathered on machine 0.
    assert "Matting evaluation of 'demo_val' (whole_image, 12 images)" in logs[0]
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in logs[0]


def test_a_locked_folder_is_refused(tmp_path):
    """Two runs at once in one folder: the second is refused, naming the folder and the pid
    of the first, with several processes too; --eval-only locks its own folder."""
    out = tmp_path / "run"
    with RunLock(str(out)):
        before = file_hashes(out)
        done = run(*TINY, f"train.output_dir={out}", "--num-gpus", "2", check=False)
        refused(done, f"output folder {out} is in use by another run (pid {os.getpid()} on")
        assert file_hashes(out) == before and "Starting training" not in done.stdout
    checkpoint = tmp_path / "weights.pth"
    torch.save({"model": {}}, checkpoint)
    own = out / "eval" / "weights-demo_val"
    with RunLock(str(own)):
        done = run("--eval-only", *TINY, f"train.output_dir={out}",
                   f"train.init_checkpoint={checkpoint}", check=False)  # fmt: skip
        refused(done, f"output folder {own} is in use by another run (pid {os.getpid()} on")


def test_resume_with_another_models_config_is_refused(trained):
    out, _ = trained
    before = file_hashes(out)
    done = run(*TINY, f"train.output_dir={out}", "--resume", check=False,
               config=str(ROOT / "configs/demo_ddc_trimap.py"))  # fmt: skip
    refused(done, "--resume: the config differs from the run's", "model.trimap_input: False -> True",
            "model.backbone.in_chans: 3 -> 4", "nothing was written")  # fmt: skip
    assert file_hashes(out) == before


def test_resume_with_training_changes_warns_and_keeps_history(tmp_path):
    out = tmp_path / "run"
    run(*TINY, "train.max_iter=2", f"train.output_dir={out}")
    first = (out / "config.yaml").read_text()
    done = run(*TINY, "train.max_iter=3", f"train.output_dir={out}", "model.criterion.losses.ddc=5",
               "--resume", "dataloader.train.mapper.augmentations.crop_size=96")  # fmt: skip
    assert "warning: --resume with training settings that differ" in done.stderr
    for change in ("dataloader.train.mapper.augmentations.crop_size: 64 -> 96",
                   "model.criterion.losses.ddc: 10.0 -> 5", "train.max_iter: 2 -> 3"):  # fmt: skip
        assert change in done.stderr
    assert (out / "config-1.yaml").read_text() == first  # the first run's config, kept
    assert "ddc: 5" in (out / "config.yaml").read_text()
    assert "Starting training from iteration 2" in done.stdout + done.stderr
    evaluations = [r["iteration"] for r in metrics(out) if "matting/SAD" in r]
    assert evaluations == [2, 3]  # the first run's final evaluation (at max_iter) stays


def test_initial_weights_of_another_matting_model_are_refused(tmp_path):
    """An automatic model initialised from a trimap-guided run's checkpoint: refused, naming
    the modules; with --allow-partial-checkpoint, one summary warning instead of fvcore's line
    per tensor, and training goes on."""
    from detectron2.config import instantiate

    from alphafree_d2.checkpoint import MattingCheckpointer
    from alphafree_d2.engine import load_config

    trimap_cfg = load_config(str(ROOT / "configs/demo_ddc_trimap.py"), TINY)
    MattingCheckpointer(instantiate(trimap_cfg.model), str(tmp_path)).save("trimap_run")
    args = [*TINY, f"train.init_checkpoint={tmp_path / 'trimap_run.pth'}",
            f"train.output_dir={tmp_path / 'auto'}", "train.max_iter=1"]  # fmt: skip
    done = run(*args, check=False)
    refused(done, "trimap_run.pth is a trained matting model of another config",
            "differ in shape", "backbone.patch_embed", "--allow-partial-checkpoint")  # fmt: skip
    assert "Starting training" not in done.stdout + done.stderr
    done = run(*args, "--allow-partial-checkpoint", f"train.output_dir={tmp_path / 'auto2'}")
    log = done.stdout + done.stderr
    assert "Skip loading parameter" not in log
    assert log.count("weights differ in shape and are skipped") == 1
    assert "Starting training from iteration 0" in log


def test_the_evaluation_set_is_checked_at_the_start(tmp_path):
    """A validation alpha of another size than its image stops the run at once, in every
    process, with one message (two processes here)."""
    from alphafree_d2.data.datasets.demo import DEMO_DIRNAME, ensure_demo_dataset

    source = ensure_demo_dataset(os.environ["DETECTRON2_DATASETS"])
    root = tmp_path / "datasets"
    shutil.copytree(source, root / DEMO_DIRNAME)
    bad = root / DEMO_DIRNAME / "val" / "alpha" / "demo_val_003.png"
    import cv2

    cv2.imwrite(str(bad), cv2.imread(str(bad), cv2.IMREAD_UNCHANGED)[:-5])
    done = run(*TINY, f"train.output_dir={tmp_path / 'run'}", "--num-gpus", "2",
               env={"DETECTRON2_DATASETS": str(root)}, check=False)  # fmt: skip
    refused(done, "Pre-flight check of the evaluation set 'demo_val'", str(bad))
    assert done.stderr.count("Pre-flight check of the evaluation set") == 1
    assert "Starting training" not in done.stdout + done.stderr


def test_an_unusable_datasets_root_is_named(tmp_path):
    done = run(*TINY, f"train.output_dir={tmp_path / 'run'}", check=False,
               env={"DETECTRON2_DATASETS": "/proc/nope"})  # fmt: skip
    refused(done, "DETECTRON2_DATASETS=/proc/nope", "must be a folder you can write to")
    assert not (tmp_path / "run").exists()


def test_ctrl_c_during_a_checkpoint_write(tmp_path):
    """torch.save reports an interrupt in its writer as "RuntimeError: ... unexpected pos":
    the run ends with "interrupted", exit status 130, no traceback, no partial checkpoint."""
    out = tmp_path / "run"
    done = run(*TINY, "train.max_iter=2", f"train.output_dir={out}", check=False,
               crash_after="sigint-in-save")  # fmt: skip
    assert done.returncode == 130, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == "interrupted (Ctrl+C)"
    assert "Traceback" not in done.stderr and "unexpected pos" not in done.stderr
    assert [p.name for p in out.iterdir() if ".pth" in p.name or "checkpoint" in p.name] == []
