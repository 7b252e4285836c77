"""The output folder of a run (alphafree_d2.engine.run_folder): an exclusive lock for the run's
life, released when its process dies, naming the holder to a second run; ``--resume`` compares
the config with the run's config.yaml, refuses model changes, keeps the previous config."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from detectron2.config import LazyConfig

from alphafree_d2.engine import OutputFolderError, RunLock, check_resume_config, load_config
from alphafree_d2.engine.run_folder import LOCK_FILE, _read_config_yaml, config_changes

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/demo_ddc.py")
TRIMAP_CONFIG = str(ROOT / "configs/demo_ddc_trimap.py")

_HOLDER = textwrap.dedent("""
    import sys
    from alphafree_d2.engine.run_folder import RunLock
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()  # holds the lock until its stdin closes or it is killed
""")


def test_a_second_run_is_refused_until_the_first_process_dies(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputFolderError) as info:
            RunLock(str(folder)).acquire()
        message = str(info.value)
        assert str(folder) in message and f"pid {holder.pid} on" in message
        assert "nothing was written" in message
        holder.send_signal(signal.SIGKILL)  # no clean-up: the kernel releases the lock
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    with RunLock(str(folder)) as lock:
        assert (folder / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on")
        assert lock.path == str(folder / LOCK_FILE)


def test_a_refused_run_leaves_the_folder_as_it_was(tmp_path):
    folder = tmp_path / "new" / "run"
    with pytest.raises(ValueError):
        with RunLock(str(folder)):
            raise ValueError("refused after locking")
    assert not (tmp_path / "new").exists()  # the folders made for the lock are gone
    folder.mkdir(parents=True)
    with RunLock(str(folder)):
        pass  # a finished run leaves its lock file
    before = (folder / LOCK_FILE).read_bytes(), (folder / LOCK_FILE).stat().st_mtime_ns
    with pytest.raises(ValueError):
        with RunLock(str(folder)):
            raise ValueError("refused")
    after = (folder / LOCK_FILE).read_bytes(), (folder / LOCK_FILE).stat().st_mtime_ns
    assert after == before and sorted(os.listdir(folder)) == [LOCK_FILE]


def _run_folder(tmp_path, config=CONFIG, overrides=()):
    """A folder with config.yaml as the train script writes it (device and schedule filled)."""
    cfg = load_config(config, list(overrides))
    cfg.train.device = "cpu"
    cfg.train.update(max_iter=600, iters_per_epoch=8.0, eval_period=200)
    cfg.train.checkpointer.period = 200
    folder = tmp_path / "run"
    folder.mkdir()
    LazyConfig.save(cfg, str(folder / "config.yaml"))
    return folder


def _new(config=CONFIG, overrides=()):
    cfg = load_config(config, list(overrides))
    cfg.train.device = "cpu"
    return cfg


def test_the_same_config_has_no_changes(tmp_path):
    folder = _run_folder(tmp_path)
    assert check_resume_config(_new(), str(folder)) == []
    # A value written out that equals the target's default is no change either.
    assert check_resume_config(_new(overrides=["model.decoder.in_feature=last_feat"]),
                               str(folder)) == []  # fmt: skip
    assert sorted(os.listdir(folder)) == ["config.yaml"]


def test_training_changes_are_listed_and_the_old_config_kept(tmp_path, capsys):
    folder = _run_folder(tmp_path)
    old_text = (folder / "config.yaml").read_text()
    changes = check_resume_config(
        _new(overrides=["model.criterion.losses.ddc=5", "optimizer.lr=0.01", "train.epochs=90",
                        "dataloader.train.mapper.augmentations.crop_size=96",
                        "model.criterion.kernel_size=7"]),
        str(folder),
    )  # fmt: skip
    keys = [key for key, _, _ in changes]
    assert keys == ["dataloader.train.mapper.augmentations.crop_size",
                    "model.criterion.kernel_size", "model.criterion.losses.ddc", "optimizer.lr",
                    "train.epochs"]  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("warning: --resume with training settings that differ")
    assert "model.criterion.losses.ddc: 10.0 -> 5" in err and "config-1.yaml" in err
    assert (folder / "config-1.yaml").read_text() == old_text
    check_resume_config(_new(overrides=["optimizer.lr=0.02"]), str(folder))
    assert (folder / "config-2.yaml").is_file()  # history, oldest first


@pytest.mark.parametrize(
    "config, overrides, keys",
    [
        (TRIMAP_CONFIG, [], ["model.backbone.in_chans", "model.decoder.head_channels",
                             "model.decoder.image_channels", "model.trimap_input"]),
        (CONFIG, ["model.backbone.embed_dim=128"], ["model.backbone.embed_dim"]),
        (CONFIG, ["model.pixel_mean=[0,0,0]", "optimizer.lr=0.5"], ["model.pixel_mean"]),
    ],
)  # fmt: skip
def test_model_changes_are_refused_naming_the_keys(tmp_path, config, overrides, keys):
    folder = _run_folder(tmp_path)
    with pytest.raises(OutputFolderError) as info:
        check_resume_config(_new(config, overrides), str(folder))
    message = str(info.value)
    for key in keys:
        assert key in message
    assert "nothing was written" in message and f"--config-file {folder / 'config.yaml'}" in message
    assert sorted(os.listdir(folder)) == ["config.yaml"]


def test_derived_schedule_and_folder_spelling_are_not_changes(tmp_path):
    folder = _run_folder(tmp_path)
    model, training = config_changes(
        _read_config_yaml(str(folder / "config.yaml")),
        _new(overrides=[f"train.output_dir={folder}/../run"]),
    )
    assert model == [] and training == []
