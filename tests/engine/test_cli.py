"""The tools' command lines (alphafree_d2.engine.cli): config overrides before, between or after
the options in every tool; override values with non-ASCII letters and special characters read
exactly as typed; what hydra still cannot read is one ConfigError with the fix; expected
errors as one line and exit status 2."""

import argparse
import random
import subprocess
import sys
from pathlib import Path

import pytest

from alphafree_d2.engine import ConfigError, apply_overrides, load_config, parse_training_args
from alphafree_d2.engine.cli import expected_errors, parse_args, split_overrides
from alphafree_d2.utils.testing import load_script

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/demo_ddc.py")


def toy_parser():
    p = argparse.ArgumentParser()
    p.add_argument("--config-file")
    p.add_argument("--input", nargs="+")
    p.add_argument("--pair", nargs=2)
    p.add_argument("--composite")
    p.add_argument("--16bit", dest="sixteen_bit", action="store_true")
    p.add_argument("opts", nargs="*")
    return p


@pytest.mark.parametrize(
    "argv",
    [
        ["--config-file", "c.py", "--input", "a.jpg", "b.jpg", "k.x=1", "--composite", "white",
         "--16bit", "+k.y=é"],
        ["k.x=1", "--config-file", "c.py", "--16bit", "--input", "a.jpg", "b.jpg",
         "--composite=white", "+k.y=é"],
        ["--input", "a.jpg", "k.x=1", "b.jpg", "--16bit", "--composite", "white",
         "--config-file", "c.py", "--", "+k.y=é"],
        ["--inp", "a.jpg", "b.jpg", "--config-file=c.py", "k.x=1", "--comp", "white",
         "+k.y=é", "--16bit"],
    ],
)  # fmt: skip
def test_overrides_anywhere(argv):
    args = parse_args(toy_parser(), argv)
    assert args.input == ["a.jpg", "b.jpg"] and args.composite == "white" and args.sixteen_bit
    assert args.config_file == "c.py" and args.opts == ["k.x=1", "+k.y=é"]


def test_values_of_options_are_not_overrides(tmp_path):
    existing = tmp_path / "a=b.jpg"  # a file whose name reads like an override
    existing.write_bytes(b"x")
    options, overrides = split_overrides(
        toy_parser(),
        ["--composite", "k.x=1", "--pair", "p.q=1", "r=2", "--input", str(existing), "s.t=3"],
    )
    assert overrides == ["s.t=3"]
    assert options == ["--composite", "k.x=1", "--pair", "p.q=1", "r=2", "--input", str(existing)]


@pytest.mark.parametrize(
    "value",
    [
        "/tmp/ü", "/data/modèle é.pth", "out/run (2)", "/tmp/a=b", "C:\\runs\\x\\",
        "it's", 'say "hi"', "ümlaut's \\' mix", "日本語/パス", "emoji 🙂", "a:b", "$HOME/x",
    ],
)  # fmt: skip
def test_text_values_read_exactly_as_typed(value):
    cfg = load_config(CONFIG, [f"train.output_dir={value}", f"train.init_checkpoint={value}"])
    assert cfg.train.output_dir == value and cfg.train.init_checkpoint == value


def test_random_text_values_read_exactly_as_typed():
    """Variants: random strings of the characters hydra's grammar treats specially (not the
    backslash, which escapes the next one as hydra documents, nor '$', interpolation)."""
    rng = random.Random(0)
    alphabet = "ab/'\" üé()[]{}=:.-+*?#%@!~^&|<>;" + "é中"
    cfg = load_config(CONFIG)
    for _ in range(200):
        value = "x" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        if value.strip() != value or "," in value:
            continue  # hydra strips surrounding spaces; a comma is a sweep (see below)
        if value[1:2] in ("[", "{", "'", '"'):
            continue
        try:
            apply_overrides(cfg, [f"train.output_dir={value}"])
        except ConfigError as e:  # only the documented refusals
            assert "cannot be read" in str(e) or "sweep" in str(e), (value, e)
            continue
        assert cfg.train.output_dir == value


def test_numbers_and_lists_keep_their_types():
    cfg = load_config(CONFIG, ["train.max_iter=7", "optimizer.lr=2e-4", "train.amp.enabled=true",
                               "lr_multiplier.milestones_epochs=[10,20]"])  # fmt: skip
    assert cfg.train.max_iter == 7 and cfg.optimizer.lr == 2e-4 and cfg.train.amp.enabled is True
    assert list(cfg.lr_multiplier.milestones_epochs) == [10, 20]


@pytest.mark.parametrize(
    "override, says",
    [
        ("lr_multiplier.milestones_epochs=[10,20", "cannot be read"),
        ("train.output_dir=a,b", "sweep"),
        ("train.output_dir=[ü]", "cannot be read"),
        ("trä.x=1", "cannot be read"),
    ],
)
def test_unreadable_overrides_are_one_config_error(override, says):
    with pytest.raises(ConfigError, match=says) as info:
        load_config(CONFIG, [override])
    assert override in str(info.value) and "key=value" in str(info.value)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "nope.py"))


def test_every_tool_takes_options_after_overrides():
    predict = load_script("tools/predict.py")
    args = parse_args(predict.get_parser(), [
        "--config-file", CONFIG, "--input", "p.jpg", "--output", "out",
        "train.init_checkpoint=m.pth", "--composite", "white", "--16bit"])  # fmt: skip
    assert args.opts == ["train.init_checkpoint=m.pth"] and args.sixteen_bit
    assert args.composite == "white" and args.input == ["p.jpg"]

    export = load_script("tools/export.py")
    args = parse_args(export.get_parser(), [
        "--config-file", CONFIG, "train.init_checkpoint=m.pth", "--output", "e",
        "--check-sizes", "64x96", "train.device=cpu", "--format", "onnx"])  # fmt: skip
    assert args.check_sizes == [(64, 96)] and args.format == "onnx"
    assert args.opts == ["train.init_checkpoint=m.pth", "train.device=cpu"]

    demo_app = load_script("tools/demo_app.py")
    args = parse_args(demo_app.get_parser(), [
        "--config-file", CONFIG, "train.init_checkpoint=m.pth", "--port", "0",
        "--compare", CONFIG, "b.pth", "--max-pixels", "1e6"])  # fmt: skip
    assert args.compare == [CONFIG, "b.pth"] and args.port == 0 and args.max_pixels == 10**6
    assert args.opts == ["train.init_checkpoint=m.pth"]

    args = parse_training_args(["--config-file", CONFIG, "train.max_iter=3", "--resume",
                                "train.output_dir=o", "--num-gpus", "2", "--eval-only"])  # fmt: skip
    assert args.resume and args.eval_only and args.num_gpus == 2
    assert args.opts == ["train.max_iter=3", "train.output_dir=o"]


def test_expected_errors_are_one_line(monkeypatch, capsys):
    monkeypatch.delenv("ALPHAFREE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        with expected_errors():
            load_config(CONFIG, ["train.max_itr=5"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: override 'train.max_itr=5'") and "Traceback" not in err
    with pytest.raises(SystemExit) as info:
        with expected_errors():
            raise KeyboardInterrupt
    assert info.value.code == 130 and "interrupted" in capsys.readouterr().err
    with pytest.raises(RuntimeError):  # not an expected error: its traceback is kept
        with expected_errors():
            raise RuntimeError("a bug")
    monkeypatch.setenv("ALPHAFREE_DEBUG", "1")
    with pytest.raises(ConfigError):  # --debug / ALPHAFREE_DEBUG=1: the traceback
        with expected_errors():
            load_config(CONFIG, ["train.max_itr=5"])


def test_train_script_config_errors_are_one_line(tmp_path):
    """Also hydra's own parse errors, and with --debug the traceback."""
    base = [sys.executable, str(ROOT / "tools/lazyconfig_train_net.py"), "--config-file", CONFIG]
    out = tmp_path / "x"
    for bad in ("lr_multiplier.milestones_epochs=[1,2", "train.output_dir=a,b"):
        done = subprocess.run([*base, f"train.output_dir={out}", bad], capture_output=True,
                              text=True, timeout=300, cwd=ROOT)  # fmt: skip
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith(f"error: override '{bad}'") and "Traceback" not in done.stderr
        assert not out.exists()
    done = subprocess.run([*base, "train.max_itr=1", "--debug"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)  # fmt: skip
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr
