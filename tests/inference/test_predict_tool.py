"""tools/predict.py: outputs, skip/overwrite, bad inputs, duplicate stems, atomic writes."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from alphafree_d2.inference import batch
from alphafree_d2.utils.testing import load_script, random_image, write_image

ROOT = Path(__file__).resolve().parents[2]


predict = load_script("tools/predict.py")


@pytest.fixture
def photos(tmp_path):
    """A folder with an RGB jpg, a grayscale png, an RGBA png, a 16-bit png and a broken jpg."""
    folder = tmp_path / "photos"
    write_image(folder / "rgb.jpg", random_image(40, 56, seed=1))
    write_image(folder / "gray.png", random_image(33, 47, channels=1, seed=2))
    write_image(folder / "rgba.png", random_image(30, 20, channels=4, seed=3))
    write_image(folder / "deep.png", random_image(24, 24, seed=4, dtype=np.uint16))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (folder / "notes.txt").write_text("not an image, ignored")
    return folder


def run(tiny, inputs, output, *extra):
    # The override right after the --input list is told apart from the inputs.
    argv = [
        "--config-file",
        tiny.config_file,
        "--output",
        str(output),
        "--no-progress",
        *extra,
        "--input",
        *map(str, inputs),
        f"train.init_checkpoint={tiny.checkpoint}",
    ]
    return predict.main(argv)


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def stamps(folder):
    """Which file is where: each atomic write makes a new file (new inode and mtime)."""
    return {
        p.relative_to(folder): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in folder.rglob("*.png")
    }


def test_outputs_and_bad_inputs(tiny, photos, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    code = run(tiny, [photos, empty, tmp_path / "missing.jpg"], out, "--composite", "#00ff00")
    assert code == 1  # something failed, the rest was written
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "cannot be decoded as an image" in err
    assert f"{empty}: folder contains no images" in err
    assert f"{tmp_path / 'missing.jpg'}: no such file or folder" in err
    sizes = {"rgb": (40, 56), "gray": (33, 47), "rgba": (30, 20), "deep": (24, 24)}
    for stem, size in sizes.items():
        alpha = read(out / "alpha" / f"{stem}.png")
        assert alpha.shape == size and alpha.dtype == np.uint8
        cutout = read(out / "cutout" / f"{stem}.png")
        assert cutout.shape == (*size, 4)
        np.testing.assert_array_equal(cutout[..., 3], alpha)  # the cutout's alpha is the matte
        assert read(out / "composite" / f"{stem}.png").shape == (*size, 3)
    assert sorted(p.name for p in (out / "alpha").iterdir()) == sorted(f"{s}.png" for s in sizes)


def test_skip_overwrite_and_missing_outputs(tiny, photos, tmp_path, capsys):
    (photos / "broken.jpg").unlink()
    out = tmp_path / "out"
    assert run(tiny, [photos], out) == 0
    first = stamps(out)
    assert len(first) == 8
    # Everything exists: nothing is redone and the model is not even loaded.
    argv_missing_ckpt = [
        "--config-file",
        tiny.config_file,
        "--input",
        str(photos),
        "--output",
        str(out),
        "--no-progress",
        "train.init_checkpoint=/nonexistent.pth",
    ]
    assert predict.main(argv_missing_ckpt) == 0
    assert "0 written, 4 skipped" in capsys.readouterr().out
    assert stamps(out) == first
    # A deleted output is redone alone.
    (out / "cutout" / "rgb.png").unlink()
    assert run(tiny, [photos], out) == 0
    again = stamps(out)
    assert {k for k in first if again[k] != first[k]} == {Path("cutout/rgb.png")}
    # --overwrite redoes all.
    assert run(tiny, [photos], out, "--overwrite", "--16bit") == 0
    assert all(again[k] != v for k, v in stamps(out).items())
    assert read(out / "alpha" / "rgb.png").dtype == np.uint16


def test_duplicate_stems_are_not_processed(tiny, tmp_path, capsys):
    a = write_image(tmp_path / "a" / "cat.jpg", random_image(20, 20, seed=5))
    b = write_image(tmp_path / "b" / "cat.png", random_image(20, 20, seed=6))
    dog = write_image(tmp_path / "b" / "dog.png", random_image(20, 20, seed=7))
    out = tmp_path / "out"
    # The same file named twice (as a file and through its folder) is not a clash.
    assert run(tiny, [a, tmp_path / "b", dog], out) == 1
    err = capsys.readouterr().err
    assert f"{a}: its outputs (cat.png) would collide with those of {b}" in err
    assert f"{b}: its outputs (cat.png) would collide with those of {a}" in err
    assert not (out / "alpha" / "cat.png").exists()
    assert (out / "alpha" / "dog.png").exists()


def test_composite_over_an_image_and_bad_values(tiny, tmp_path, capsys):
    photo = write_image(tmp_path / "in" / "p.png", random_image(24, 32, seed=8))
    background = write_image(tmp_path / "beach.jpg", random_image(50, 70, seed=9))
    out = tmp_path / "out"
    assert run(tiny, [photo], out, "--composite", str(background)) == 0
    assert read(out / "composite" / "p.png").shape == (24, 32, 3)
    with pytest.raises(SystemExit):
        run(tiny, [photo], out, "--composite", "no-such-colour-or-file")
    assert "neither a colour" in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(tiny, tmp_path, capsys):
    photo = write_image(tmp_path / "in" / "p.png", random_image(24, 32, seed=8))
    argv = [
        "--config-file",
        tiny.config_file,
        "--input",
        str(photo),
        "--output",
        str(tmp_path / "out"),
        "train.init_checkpoint=/nonexistent/model_final.pth",
    ]
    assert predict.main(argv) == 2
    assert "/nonexistent/model_final.pth does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # the folders made for the check are removed again
    # ... but a folder the user had is kept, with its files
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert predict.main(argv) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]


def test_interrupted_write_leaves_no_png(tmp_path, monkeypatch):
    target = tmp_path / "alpha" / "x.png"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        batch.write_png(str(target), np.zeros((4, 4), np.uint8))
    assert os.listdir(target.parent) == []  # neither the PNG nor the temporary file
    monkeypatch.undo()
    batch.write_png(str(target), np.full((4, 4), 7, np.uint8))
    assert (read(target) == 7).all() and os.listdir(target.parent) == ["x.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.slow
def test_command_line(tiny, tmp_path):
    photo = write_image(tmp_path / "in" / "p.jpg", random_image(20, 30, seed=10))
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "predict.py"),
            "--config-file",
            tiny.config_file,
            "--input",
            str(photo),
            "--output",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            f"train.init_checkpoint={tiny.checkpoint}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "1 written" in done.stdout
    assert read(tmp_path / "out" / "cutout" / "p.png").shape == (20, 30, 4)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    from PIL import Image, ImageOps

    pixels = random_image(12, 20, seed=orientation)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.png"  # PNG: lossless, and PIL writes its EXIF chunk
    image.save(path, exif=exif.tobytes())
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(batch.read_input_image(str(path)), upright)


def test_single_pixel_image_gets_its_cutout(tiny, tmp_path, capsys, caplog):
    """On main, pymatting died after the alpha was written (no cutout, exit 1)."""
    import logging

    from alphafree_d2.inference import foreground

    photo = write_image(tmp_path / "in" / "dot.png", random_image(1, 1, seed=12))
    out = tmp_path / "out"
    assert run(tiny, [photo], out, "--composite", "white") == 0
    assert "1 written" in capsys.readouterr().out
    alpha = read(out / "alpha" / "dot.png")
    cutout = read(out / "cutout" / "dot.png")
    assert alpha.shape == (1, 1) and cutout.shape == (1, 1, 4)
    assert cutout[0, 0, 3] == alpha[0, 0]
    np.testing.assert_array_equal(cutout[0, 0, :3], read(photo)[0, 0])  # its own colour
    assert read(out / "composite" / "dot.png").shape == (1, 1, 3)

    logger = logging.getLogger(foreground.__name__)
    logger.addHandler(caplog.handler)  # the tool's logger setup stops propagation to the root
    try:
        image = np.full((1, 1, 3), 200, np.uint8)
        fg = foreground.estimate_foreground(image, np.full((1, 1), 0.5, np.float32), name="x.png")
    finally:
        logger.removeHandler(caplog.handler)
    np.testing.assert_allclose(fg, 200 / 255.0)
    assert "x.png: 1x1 px is too small for foreground estimation" in caplog.text


def test_unwritable_output_folder_stops_before_any_image(
    tiny, photos, tmp_path, capsys, monkeypatch
):
    (tmp_path / "a_file").write_text("a file where the output folder should go")
    out = tmp_path / "a_file" / "out"

    def never(*args, **kwargs):
        raise AssertionError("images were processed although the output cannot be written")

    monkeypatch.setattr(predict, "run_jobs", never)
    monkeypatch.setattr(predict, "MattingPredictor", never)  # not even the model is loaded
    assert run(tiny, [photos], out) == 2
    err = capsys.readouterr().err
    assert f"output folder {out / 'alpha'} cannot be created or written" in err


def test_unsupported_files_in_a_folder_are_listed(tiny, tmp_path, capsys):
    folder = tmp_path / "mixed"
    write_image(folder / "ok.png", random_image(16, 16, seed=13))
    (folder / "anim.gif").write_bytes(b"GIF89a")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden").write_text("system file: not listed")
    assert batch.unsupported_files([str(folder), str(folder / "ok.png")]) == [
        str(folder / "anim.gif"),
        str(folder / "notes.txt"),
    ]
    assert run(tiny, [folder], tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "ignored 2 files of unsupported types" in err
    assert str(folder / "anim.gif") in err and str(folder / "notes.txt") in err
    assert ".hidden" not in err
