"""MattingPredictor: numpy in, alpha out; weights loaded with clear errors."""

import copy
import warnings

import numpy as np
import pytest
import torch

from alphafree_d2.checkpoint.matting_checkpointer import CheckpointError
from alphafree_d2.inference.predictor import MattingPredictor
from alphafree_d2.utils import resolve_device
from alphafree_d2.utils.testing import random_image


@pytest.fixture(scope="module")
def predictor(tiny):
    return MattingPredictor(tiny.cfg, device="cpu")


def reference(model, rgb):
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        return model.predict_alpha(x)[0, 0].numpy()


def test_rgb_shape_range_and_equal_to_predict_alpha(predictor, tiny):
    image = random_image(37, 53)
    alpha = predictor(image)
    assert alpha.shape == (37, 53) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    np.testing.assert_allclose(alpha, reference(tiny.model, image), atol=1e-6)
    assert predictor.device == torch.device("cpu")
    assert not predictor.model.training


def test_read_only_image_is_not_modified_and_warns_nothing(predictor):
    """Decoded uploads and memory-mapped files arrive as read-only arrays."""
    image = random_image(21, 19, seed=3)
    read_only = image.copy()
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alpha = predictor(read_only)
    np.testing.assert_array_equal(alpha, predictor(image))
    np.testing.assert_array_equal(read_only, image)


def test_grayscale_and_rgba(predictor):
    gray = random_image(40, 30, channels=1, seed=1)
    alpha_gray = predictor(gray)
    assert alpha_gray.shape == (40, 30)
    np.testing.assert_array_equal(alpha_gray, predictor(np.repeat(gray[:, :, None], 3, axis=2)))
    rgba = random_image(40, 30, channels=4, seed=2)
    np.testing.assert_array_equal(predictor(rgba), predictor(rgba[:, :, :3]))


def test_bad_images_are_rejected(predictor):
    with pytest.raises(TypeError, match="uint8"):
        predictor(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        predictor(np.zeros((8, 8, 2), np.uint8))


def test_bgr_model_gets_bgr(tiny):
    cfg = copy.deepcopy(tiny.cfg)
    cfg.model.input_format = "BGR"
    predictor = MattingPredictor(cfg, device="cpu")
    image = random_image(32, 48, seed=3)
    np.testing.assert_allclose(
        predictor(image), reference(predictor.model, image[:, :, ::-1]), atol=1e-6
    )


def test_checkpoint_errors(tiny, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        MattingPredictor(tiny.cfg, checkpoint=str(tmp_path / "missing.pth"))
    cfg = copy.deepcopy(tiny.cfg)
    cfg.train.init_checkpoint = ""
    with pytest.raises(CheckpointError, match="init_checkpoint is empty"):
        MattingPredictor(cfg)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(open(tiny.checkpoint, "rb").read()[:1000])
    with pytest.raises(CheckpointError, match="corrupt.pth"):
        MattingPredictor(tiny.cfg, checkpoint=str(corrupt))


def test_incomplete_or_mismatched_checkpoint(tiny, tmp_path):
    state = torch.load(tiny.checkpoint, weights_only=False)["model"]
    backbone_only = tmp_path / "backbone_only.pth"
    torch.save(
        {"model": {k: v for k, v in state.items() if k.startswith("backbone.")}}, backbone_only
    )
    with pytest.raises(CheckpointError, match="lacks .* weights .*decoder"):
        MattingPredictor(tiny.cfg, checkpoint=str(backbone_only))
    # The explicit opt-in (tools/predict.py --allow-partial-checkpoint) only warns.
    MattingPredictor(tiny.cfg, checkpoint=str(backbone_only), allow_partial_checkpoint=True)
    other = dict(state)
    other["decoder.head.3.weight"] = torch.zeros(1, 4, 1, 1)
    mismatched = tmp_path / "mismatched.pth"
    torch.save({"model": other}, mismatched)
    with pytest.raises(CheckpointError, match="differ in shape.*decoder.head.3.weight"):
        MattingPredictor(tiny.cfg, checkpoint=str(mismatched))


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            resolve_device("cuda")
