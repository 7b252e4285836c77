"""The high-resolution policy: exact below the budget, tiles equal to an untiled decoder, the
ViT never sees more than about the budget."""

import logging

import numpy as np
import pytest
import torch
from torch import nn

from alphafree_d2.inference.highres import (
    HighResolutionPolicy,
    decode_tiled,
    predict_alpha_highres,
)
from alphafree_d2.inference.predictor import MattingPredictor
from alphafree_d2.utils.testing import random_image


def images(h, w, seed=0):
    return torch.from_numpy(random_image(h, w, seed=seed)).permute(2, 0, 1)[None].float()


class BackboneInputs:
    """Records the (H, W) of every backbone call."""

    def __init__(self, model):
        self.sizes = []
        self.handle = model.backbone.register_forward_pre_hook(
            lambda module, args: self.sizes.append(tuple(args[0].shape[-2:]))
        )


@torch.no_grad()
def test_within_budget_is_predict_alpha(tiny):
    x = images(70, 90)
    out = predict_alpha_highres(tiny.model, x, HighResolutionPolicy(max_megapixels=0.01))
    assert torch.equal(out, tiny.model.predict_alpha(x))


@torch.no_grad()
def test_tiles_equal_untiled_decoder(tiny):
    model = tiny.model
    x = (images(320, 448) - model.pixel_mean) / model.pixel_std
    features = model.backbone(nn.functional.interpolate(x, size=(96, 128), mode="bilinear"))
    untiled = model.decoder(features, x)
    tiled = decode_tiled(model.decoder, features, x, tile_size=64, tile_margin=64)
    assert (tiled - untiled).abs().max() < 1e-5
    # Without context the tile borders differ: the margin is what makes tiles exact.
    no_margin = decode_tiled(model.decoder, features, x, tile_size=64, tile_margin=0)
    assert (no_margin - untiled).abs().max() > 1e-3


@torch.no_grad()
@pytest.mark.parametrize("mode", ["guided", "resize"])
def test_large_image_backbone_sees_the_budget(tiny, mode):
    policy = HighResolutionPolicy(max_megapixels=0.05, mode=mode, tile_size=256, tile_margin=64)
    x = images(600, 1000)
    recorder = BackboneInputs(tiny.model)
    try:
        out = predict_alpha_highres(tiny.model, x, policy)
    finally:
        recorder.handle.remove()
    assert out.shape == (1, 1, 600, 1000)
    assert out.min() >= 0 and out.max() <= 1
    (size,) = recorder.sizes
    # About the budget, up to the padding to a multiple of 32 and rounding.
    assert (size[0] - 32) * (size[1] - 32) <= policy.max_pixels <= 1.2 * size[0] * size[1]
    assert abs(size[1] / size[0] - 1000 / 600) < 0.2  # aspect ratio kept (up to rounding)
    if mode == "guided":
        one_tile = HighResolutionPolicy(max_megapixels=0.05, tile_size=1024)
        assert (out - predict_alpha_highres(tiny.model, x, one_tile)).abs().max() < 1e-5


def test_predictor_on_a_large_image(tiny):
    # 1280x720 with a 0.1 MP budget: ViT on ~420x240, decoder in 4 tiles of 512 + margin.
    policy = HighResolutionPolicy(max_megapixels=0.1, tile_size=512)
    predictor = MattingPredictor(tiny.cfg, device="cpu", policy=policy)
    alpha = predictor(random_image(720, 1280, seed=4))
    assert alpha.shape == (720, 1280) and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0


@torch.no_grad()
def test_other_decoders_fall_back_to_resize(tiny, caplog):
    class Wrapped(nn.Module):
        def __init__(self, decoder):
            super().__init__()
            self.inner = decoder

        def forward(self, features, images):
            return self.inner(features, images)

    model = tiny.model
    original = model.decoder
    model.decoder = Wrapped(original)
    try:
        with caplog.at_level(logging.WARNING, logger="alphafree_d2"):
            out = predict_alpha_highres(model, images(300, 400), HighResolutionPolicy(0.02))
    finally:
        model.decoder = original
    assert out.shape == (1, 1, 300, 400)
    assert "mode='resize'" in caplog.text


def test_policy_validation():
    with pytest.raises(ValueError, match="mode"):
        HighResolutionPolicy(mode="tiles")
    with pytest.raises(ValueError, match="max_megapixels"):
        HighResolutionPolicy(max_megapixels=0)
    with pytest.raises(ValueError, match="tile_size"):
        HighResolutionPolicy(tile_size=100)
    with pytest.raises(ValueError, match="tile_margin"):
        HighResolutionPolicy(tile_margin=-32)
