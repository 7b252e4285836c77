"""tools/predict.py never answers a wrong result with exit 0 and never loses data: options after
the overrides (the README's command), non-ASCII paths, outputs that would be inputs refused
before anything is written, NaN mattes an error for their image, Ctrl+C stops the batch with
the finished outputs intact, bad numbers refused before anything starts."""

import hashlib
import os
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from alphafree_d2.inference import batch
from alphafree_d2.inference.predictor import MattingPredictor
from alphafree_d2.utils.testing import load_script, random_image, write_image

ROOT = Path(__file__).resolve().parents[2]


predict = load_script("tools/predict.py")


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def state(folder):
    """Every file and folder under ``folder`` with the hash of its content."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        )
        for p in sorted(Path(folder).rglob("*"))
    }


def test_the_readme_command_with_options_after_the_override(tiny, tmp_path, capsys):
    photo = write_image(tmp_path / "photos" / "p.jpg", random_image(24, 32, seed=1))
    out = tmp_path / "out"
    code = predict.main(["--config-file", tiny.config_file, "--input", str(photo), "--output",
                         str(out), f"train.init_checkpoint={tiny.checkpoint}", "--composite",
                         "white", "--16bit", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert read(out / "alpha" / "p.png").dtype == np.uint16
    assert read(out / "composite" / "p.png").shape == (24, 32, 3)


def test_non_ascii_checkpoint_and_output_paths(tiny, tmp_path):
    checkpoint = tmp_path / "modèles" / "modèle é.pth"
    checkpoint.parent.mkdir()
    shutil.copy(tiny.checkpoint, checkpoint)
    photo = write_image(tmp_path / "phötos" / "bild ü.png", random_image(16, 20, seed=2))
    out = tmp_path / "sortie ü"
    code = predict.main([f"train.init_checkpoint={checkpoint}", "--config-file", tiny.config_file,
                         "--input", str(photo), "--output", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    assert read(out / "alpha" / "bild ü.png").shape == (16, 20)


def _photos(folder, names=("p.png", "q.png")):
    for i, name in enumerate(names):
        write_image(folder / name, random_image(12, 16, seed=i))
    return folder


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize(
    "case",
    ["input_is_output_folder", "input_file_in_output_folder", "symlink_to_output_folder",
     "dotdot_to_output_folder", "hard_link_is_an_output", "input_folder_inside_output_folder",
     "trimap_folder_is_output_folder", "background_is_an_output"],
)  # fmt: skip
def test_outputs_never_resolve_to_inputs(tiny, tmp_path, capsys, case, overwrite):
    out = tmp_path / "out"
    extra = []
    if case == "input_is_output_folder":  # photos where the mattes of their stems go
        inputs = [_photos(out / "alpha")]
    elif case == "input_file_in_output_folder":
        inputs = [_photos(out / "cutout") / "q.png"]
    elif case == "symlink_to_output_folder":
        _photos(out / "alpha")
        (tmp_path / "link").symlink_to(out / "alpha", target_is_directory=True)
        inputs = [tmp_path / "link"]
    elif case == "dotdot_to_output_folder":
        _photos(out / "alpha")
        (out / "cutout").mkdir()
        inputs = [out / "cutout" / ".." / "alpha"]
    elif case == "hard_link_is_an_output":
        photos = _photos(tmp_path / "photos")
        (out / "alpha").mkdir(parents=True)
        os.link(photos / "p.png", out / "alpha" / "p.png")  # an earlier run's "output"
        inputs = [photos]
    elif case == "input_folder_inside_output_folder":
        inputs = [_photos(out / "alpha" / "originals")]
    elif case == "trimap_folder_is_output_folder":
        inputs = [_photos(tmp_path / "photos")]
        _photos(out / "alpha")
        extra = ["--trimap", str(out / "alpha")]
    else:  # the background of the composites is a composite output
        inputs = [_photos(tmp_path / "photos")]
        _photos(out / "composite")
        extra = ["--composite", str(out / "composite" / "p.png")]
    before = state(tmp_path)
    argv = ["--config-file", tiny.config_file, "--input", *map(str, inputs), "--output",
            str(out), "--no-progress", *extra, f"train.init_checkpoint={tiny.checkpoint}"]  # fmt: skip
    code = predict.main(argv + (["--overwrite"] if overwrite else []))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: the " in err and "nothing was written" in err
    assert state(tmp_path) == before


def test_outputs_beside_the_inputs_are_fine(tiny, tmp_path):
    """No false alarm: the outputs' folders inside the photos' folder."""
    photos = _photos(tmp_path / "photos")
    args = ["--config-file", tiny.config_file, "--no-progress",
            f"train.init_checkpoint={tiny.checkpoint}"]  # fmt: skip
    assert predict.main(["--input", str(photos), "--output", str(photos), *args]) == 0
    assert sorted(p.name for p in (photos / "alpha").iterdir()) == ["p.png", "q.png"]
    # Run again on the same folder: the outputs' folders are not inputs (not recursive).
    assert predict.main(["--input", str(photos), "--output", str(photos), *args]) == 0


@pytest.fixture(scope="module")
def nan_checkpoint(tiny, tmp_path_factory):
    model = tiny.model
    state_dict = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k in state_dict if k.startswith("decoder.") and k.endswith("weight"))
    state_dict[key][...] = float("nan")
    folder = tmp_path_factory.mktemp("nan")
    torch.save({"model": state_dict}, folder / "diverged.pth")
    return folder / "diverged.pth"


def test_nan_alpha_is_an_error_for_that_image(tiny, nan_checkpoint, tmp_path, capsys):
    from alphafree_d2.inference.predictor import NonFiniteAlphaError

    with pytest.raises(NonFiniteAlphaError, match="non-finite"):
        MattingPredictor(tiny.cfg, str(nan_checkpoint), "cpu")(random_image(16, 16, seed=3))
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    code = predict.main(["--config-file", tiny.config_file, "--input", str(photos), "--output",
                         str(out), "--no-progress", f"train.init_checkpoint={nan_checkpoint}"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "0 written" in captured.out
    assert f"{photos / 'p.png'}: NonFiniteAlphaError: the model's alpha has" in captured.err
    assert not list(out.rglob("*.png"))


class _InterruptedSolver:
    """A predictor that gets Ctrl+C on its second image, inside "compiled code" that swallows
    the KeyboardInterrupt into a SystemError, as pymatting's numba solver does."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        if self.calls == 2:
            try:
                os.kill(os.getpid(), signal.SIGINT)  # the handler runs at the next bytecode
                for _ in range(1000):
                    pass
            except KeyboardInterrupt:
                raise SystemError("CPUDispatcher(...) returned a result with an exception set")
        return np.full(image.shape[:2], 0.5, np.float32)


def _batch_of_three(tmp_path):
    photos = _photos(tmp_path / "photos", ("a.png", "b.png", "c.png"))
    files, _ = batch.collect_inputs([str(photos)])
    jobs, _ = batch.plan_jobs(files, str(tmp_path / "out"), with_composite=False)
    return jobs


@pytest.fixture
def sigint_handler():
    """Sets the SIGINT handler for the test (a test run started in the background by a shell
    inherits SIGINT ignored) and restores the one before."""
    previous = signal.getsignal(signal.SIGINT)
    yield lambda handler: signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_the_batch(tmp_path, sigint_handler):
    sigint_handler(signal.default_int_handler)  # as in a terminal
    solver = _InterruptedSolver()
    result = batch.run_jobs(solver, _batch_of_three(tmp_path), progress=False)
    assert result.interrupted and result.written == 1 and not result.problems
    assert solver.calls == 2  # c.png was not started
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*"))
    assert written == ["alpha", "alpha/a.png", "cutout", "cutout/a.png"]  # no partial file
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_a_batch_that_ignores_ctrl_c_keeps_ignoring_it(tmp_path, sigint_handler):
    """Started under nohup or in the background (SIGINT ignored), the batch is not stopped by
    SIGINT and does not install a handler of its own."""
    sigint_handler(signal.SIG_IGN)
    solver = _InterruptedSolver()
    result = batch.run_jobs(solver, _batch_of_three(tmp_path), progress=False)
    assert not result.interrupted and result.written == 3 and not result.problems
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_ctrl_c_in_the_tool_exits_130(tiny, tmp_path, capsys, monkeypatch, sigint_handler):
    sigint_handler(signal.default_int_handler)  # as in a terminal
    photos = _photos(tmp_path / "photos", ("a.png", "b.png", "c.png"))
    monkeypatch.setattr(predict, "MattingPredictor", lambda *a, **k: _Automatic())
    out = tmp_path / "out"
    code = predict.main(["--config-file", tiny.config_file, "--input", str(photos), "--output",
                         str(out), "--no-progress", f"train.init_checkpoint={tiny.checkpoint}"])  # fmt: skip
    assert code == 130
    captured = capsys.readouterr()
    assert "1 written" in captured.out and "interrupted (Ctrl+C)" in captured.err
    assert (out / "alpha" / "a.png").is_file() and not (out / "alpha" / "b.png").exists()


class _Automatic(_InterruptedSolver):
    trimap_input = False


@pytest.mark.parametrize(
    "option",
    [["--max-megapixels", "0"], ["--max-megapixels", "nan"], ["--max-megapixels", "-2"],
     ["--max-megapixels", "inf"], ["--max-pixels", "0"], ["--max-pixels", "1.5"],
     ["--max-pixels", "many"]],
)  # fmt: skip
def test_impossible_numbers_stop_before_anything_starts(tiny, tmp_path, capsys, option):
    photos = _photos(tmp_path / "photos")
    with pytest.raises(SystemExit) as info:
        predict.main(["--config-file", tiny.config_file, "--input", str(photos), "--output",
                      str(tmp_path / "out"), *option])  # fmt: skip
    assert info.value.code == 2
    assert f"argument {option[0]}: expected a" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
