"""Trimap-guided inference: MattingPredictor(image, trimap), the high-resolution policy, export
with a second input and tools/predict.py --trimap; clear errors when the trimap is missing."""

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.matting_checkpointer import MattingCheckpointer
from alphafree_d2.inference.export import (
    compare_onnx,
    compare_torchscript,
    export_onnx,
    export_torchscript,
    random_images,
)
from alphafree_d2.inference.highres import HighResolutionPolicy, predict_alpha_highres
from alphafree_d2.inference.predictor import MattingPredictor
from alphafree_d2.utils.testing import (
    load_script,
    random_image,
    randomise,
    tiny_config,
    write_image,
)

ROOT = Path(__file__).resolve().parents[2]
TRIMAP_CONFIG = tiny_config(in_chans=4)


@pytest.fixture(scope="module")
def guided(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_trimap_model")
    config_file = root / "tiny_trimap_config.py"
    config_file.write_text(TRIMAP_CONFIG)
    cfg = LazyConfig.load(str(config_file))
    torch.manual_seed(0)
    model = randomise(instantiate(cfg.model)).eval()
    assert model.trimap_input
    MattingCheckpointer(model, str(root)).save("model_final")
    cfg.train.init_checkpoint = str(root / "model_final.pth")
    return SimpleNamespace(
        config_file=str(config_file), checkpoint=cfg.train.init_checkpoint, cfg=cfg, model=model
    )


def random_trimap(h, w, seed=0):
    """uint8 (h, w): background left, foreground right, unknown middle, noisy values."""
    rng = np.random.default_rng(seed)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, : w // 3] = rng.integers(0, 60, (h, w // 3))  # snapped to 0
    trimap[:, 2 * w // 3 :] = 255
    return trimap


def as_label(trimap):
    label = np.full(trimap.shape, 0.5, np.float32)
    label[trimap < 85] = 0.0
    label[trimap >= 170] = 1.0
    return torch.from_numpy(label)[None, None]


def test_predictor_with_a_trimap(guided):
    predictor = MattingPredictor(guided.cfg, device="cpu")
    assert predictor.trimap_input
    image, trimap = random_image(37, 53, seed=1), random_trimap(37, 53, seed=1)
    alpha = predictor(image, trimap)
    assert alpha.shape == (37, 53) and alpha.dtype == np.float32
    label = as_label(trimap)[0, 0].numpy()
    known = label != 0.5
    np.testing.assert_array_equal(alpha[known], label[known])
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        reference = guided.model.predict_alpha(x, as_label(trimap))[0, 0].numpy()
    np.testing.assert_allclose(alpha, reference, atol=1e-6)


def test_a_trimap_guided_model_without_trimap_fails_clearly(guided, tiny):
    predictor = MattingPredictor(guided.cfg, device="cpu")
    with pytest.raises(ValueError, match=r"trimap-guided.*pass the trimap"):
        predictor(random_image(32, 32))
    with pytest.raises(ValueError, match="same size"):
        predictor(random_image(32, 32), random_trimap(32, 40))
    automatic = MattingPredictor(tiny.cfg, device="cpu")
    with pytest.raises(ValueError, match="takes no trimap"):
        automatic(random_image(32, 32), random_trimap(32, 32))


@torch.no_grad()
@pytest.mark.parametrize("mode", ["guided", "resize"])
def test_high_resolution_policy_with_a_trimap(guided, mode):
    image = torch.from_numpy(random_image(300, 500, seed=2)).permute(2, 0, 1)[None].float()
    trimap = as_label(random_trimap(300, 500, seed=2))
    policy = HighResolutionPolicy(max_megapixels=0.03, mode=mode, tile_size=128, tile_margin=64)
    alpha = predict_alpha_highres(guided.model, image, policy, trimap)
    assert alpha.shape == (1, 1, 300, 500)
    known = trimap != 0.5
    assert torch.equal(alpha[known], trimap[known])
    assert 0 <= alpha.min() and alpha.max() <= 1
    if mode == "guided":  # tiles equal one untiled decoder pass, also with the trimap channel
        one_tile = HighResolutionPolicy(max_megapixels=0.03, tile_size=1024)
        untiled = predict_alpha_highres(guided.model, image, one_tile, trimap)
        assert (alpha - untiled).abs().max() < 1e-5


def test_torchscript_and_onnx_with_a_trimap_input(guided, tmp_path):
    path = tmp_path / "model.torchscript.pt"
    traced = export_torchscript(guided.model, str(path), random_images((64, 96)))
    diffs = compare_torchscript(guided.model, torch.jit.load(str(path)), [(70, 50), (160, 96)])
    assert max(diffs.values()) < 1e-5, diffs
    # The exported module takes the trimap as 0-255 and keeps its known regions.
    image, trimap = random_images((40, 60)), torch.from_numpy(random_trimap(40, 60))[None, None]
    with torch.no_grad():
        alpha = traced(image, trimap)
    label = as_label(trimap[0, 0].numpy())
    assert torch.equal(alpha[label != 0.5], label[label != 0.5])
    onnx_path = tmp_path / "model.onnx"
    export_onnx(guided.model, str(onnx_path), random_images((64, 96)), exporter="torchscript")
    diffs = compare_onnx(guided.model, str(onnx_path), [(70, 50), (160, 96)], batch=2)
    assert max(diffs.values()) < 1e-5, diffs


@pytest.mark.slow
def test_export_tool_writes_the_trimap_input(guided, tmp_path):
    tool = load_script("tools/export.py")
    out = tmp_path / "export"
    argv = ["--config-file", guided.config_file, "--output", str(out), "--format", "onnx",
            "--export-size", "96x128", "--check-sizes", "70x50",
            f"train.init_checkpoint={guided.checkpoint}"]  # fmt: skip
    assert tool.main(argv) == 0
    report = json.loads((out / "export.json").read_text())
    assert report["trimap"]["shape"] == ["batch", 1, "height", "width"]
    assert max(report["max_abs_diff"]["onnxruntime_cpu"].values()) < 1e-5
    import onnx

    inputs = onnx.load(str(out / "model.onnx")).graph.input
    assert [i.name for i in inputs] == ["image", "trimap"]


def test_predict_tool_with_trimaps(guided, tmp_path, capsys):
    predict = load_script("tools/predict.py")
    photos, trimaps = tmp_path / "photos", tmp_path / "trimaps"
    write_image(photos / "a.png", random_image(40, 56, seed=1))
    write_image(photos / "b.jpg", random_image(33, 47, seed=2))
    write_image(photos / "c.png", random_image(30, 30, seed=3))  # no trimap: reported
    write_image(trimaps / "a.png", random_trimap(40, 56, seed=1))
    write_image(trimaps / "b.png", random_trimap(33, 47, seed=2))
    base = ["--config-file", guided.config_file, "--no-progress",
            f"train.init_checkpoint={guided.checkpoint}"]  # fmt: skip
    out = tmp_path / "out"
    code = predict.main(
        ["--input", str(photos), "--output", str(out), "--trimap", str(trimaps), *base]
    )
    assert code == 1  # c.png has no trimap
    assert "no trimap" in capsys.readouterr().err
    alpha = cv2.imread(str(out / "alpha" / "a.png"), cv2.IMREAD_UNCHANGED)
    trimap = random_trimap(40, 56, seed=1)
    assert np.all(alpha[trimap >= 170] == 255) and np.all(alpha[trimap < 85] == 0)
    assert (out / "alpha" / "b.png").is_file() and not (out / "alpha" / "c.png").exists()
    # One file for one image.
    single = tmp_path / "single"
    code = predict.main(["--input", str(photos / "a.png"), "--output", str(single),
                         "--trimap", str(trimaps / "a.png"), *base])  # fmt: skip
    assert code == 0
    assert np.array_equal(cv2.imread(str(single / "alpha" / "a.png"), cv2.IMREAD_UNCHANGED), alpha)
    # Without --trimap, a trimap-guided model is refused before any image is processed.
    code = predict.main(["--input", str(photos), "--output", str(tmp_path / "none"), *base])
    assert code == 2 and "pass --trimap" in capsys.readouterr().err
    assert not (tmp_path / "none" / "alpha").exists()


def _phone_photo(path, stored, orientation):
    """Save RGB ``stored`` pixels as a PNG that viewers show turned by EXIF ``orientation``."""
    from PIL import ExifTags, Image

    pil = Image.fromarray(stored)
    exif = pil.getexif()
    exif[ExifTags.Base.Orientation] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    pil.save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", [3, 5, 6, 7, 8])
def test_a_trimap_in_the_stored_orientation_is_turned_like_its_photo(tmp_path, orientation):
    from PIL import ImageOps

    from alphafree_d2.inference.batch import read_input_image, read_input_trimap

    photo = _phone_photo(tmp_path / "p.png", random_image(30, 20, seed=4), orientation)
    stored = random_trimap(30, 20, seed=4)
    write_image(tmp_path / "stored.png", stored)
    turned = np.asarray(ImageOps.exif_transpose(_with_orientation(stored, orientation)))
    upright_shape = read_input_image(str(photo)).shape[:2]
    assert turned.shape == upright_shape
    np.testing.assert_array_equal(read_input_trimap(str(tmp_path / "stored.png"), str(photo)),
                                  np.where(turned < 85, 0, np.where(turned >= 170, 255, 128)))  # fmt: skip
    if orientation >= 5:  # turned by 90 degrees: a trimap drawn on the photo as shown fits as is
        write_image(tmp_path / "shown.png", turned)
        np.testing.assert_array_equal(
            read_input_trimap(str(tmp_path / "shown.png"), str(photo)),
            np.where(turned < 85, 0, np.where(turned >= 170, 255, 128)),
        )
    # Another size: the message says that the photo is turned, and both of its sizes.
    write_image(tmp_path / "other.png", random_trimap(25, 25))
    with pytest.raises(ValueError, match=f"EXIF orientation {orientation} turns the stored 20x30"):
        read_input_trimap(str(tmp_path / "other.png"), str(photo))


def _with_orientation(array, orientation):
    from PIL import ExifTags, Image

    pil = Image.fromarray(array)
    pil.getexif()[ExifTags.Base.Orientation] = orientation
    return pil


def test_predict_tool_with_a_turned_photo_and_a_stored_trimap(guided, tmp_path, capsys):
    """The trimap is 20x30 as stored, like the photo; the photo is shown (and matted) 30x20."""
    predict = load_script("tools/predict.py")
    photo = _phone_photo(tmp_path / "photos" / "p.png", random_image(20, 30, seed=5), 6)
    trimap = random_trimap(20, 30, seed=5)
    write_image(tmp_path / "trimaps" / "p.png", trimap)
    out = tmp_path / "out"
    code = predict.main(["--config-file", guided.config_file, "--input", str(photo), "--output",
                         str(out), "--trimap", str(tmp_path / "trimaps"), "--no-progress",
                         f"train.init_checkpoint={guided.checkpoint}"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    alpha = cv2.imread(str(out / "alpha" / "p.png"), cv2.IMREAD_UNCHANGED)
    turned = np.rot90(trimap, k=-1)  # orientation 6: shown turned 90 degrees clockwise
    assert alpha.shape == (30, 20)
    assert np.all(alpha[turned >= 170] == 255) and np.all(alpha[turned < 85] == 0)
