"""Trimap-guided ViTMatte (model.trimap_input): image + trimap in, known regions from the trimap,
the same losses; automatic and trimap-guided share preprocess/decode."""

from functools import partial

import pytest
import torch
from torch import nn

from detectron2.modeling.backbone.vit import ViT

from alphafree_d2.modeling import DetailCapture, ViTMatte

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


class RecordingCriterion(nn.Module):
    def forward(self, pred_alpha, image, trimap, alpha=None):
        self.seen = dict(pred_alpha=pred_alpha, image=image, trimap=trimap, alpha=alpha)
        return {"loss_mean": pred_alpha.mean()}


def tiny_model(trimap_input=True, in_chans=None, image_channels=None):
    channels = 4 if trimap_input else 3
    torch.manual_seed(0)
    backbone = ViT(img_size=64, patch_size=16, in_chans=in_chans or channels, embed_dim=32,
                   depth=2, num_heads=2, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                   window_size=4, window_block_indexes=[0], residual_block_indexes=[1],
                   use_rel_pos=True, pretrain_img_size=64)  # fmt: skip
    decoder = DetailCapture(32, image_channels=image_channels or channels,
                            conv_channels=(8, 8, 8), fusion_channels=(16, 8, 8, 8))  # fmt: skip
    return ViTMatte(backbone=backbone, decoder=decoder, criterion=RecordingCriterion(),
                    pixel_mean=MEAN, pixel_std=STD, trimap_input=trimap_input)  # fmt: skip


def random_trimap(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.tensor([0.0, 0.5, 1.0])[torch.randint(0, 3, (1, h, w), generator=g)]


def item(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
    return {"image": image, "trimap": random_trimap(h, w, seed)}


@torch.no_grad()
def test_known_regions_of_the_output_equal_the_input_trimap():
    model = tiny_model().eval()
    inputs = [item(45, 70, seed=1), item(33, 20, seed=2)]
    outputs = model(inputs)
    for x, out in zip(inputs, outputs):
        alpha, trimap = out["alpha"], x["trimap"]
        assert alpha.shape == trimap.shape
        known = trimap != 0.5
        assert torch.equal(alpha[known], trimap[known])
        # The unknown band is the network's: not a copy of the trimap value.
        assert (alpha[~known] != 0.5).any()
        assert 0 <= alpha.min() and alpha.max() <= 1
    # predict_alpha (the export path) equals the dict interface.
    direct = model.predict_alpha(inputs[0]["image"][None].float(), inputs[0]["trimap"][None])
    torch.testing.assert_close(direct[0], outputs[0]["alpha"], atol=1e-5, rtol=0)


@torch.no_grad()
def test_the_trimap_is_an_input():
    # Same image, different trimaps: the unknown band's prediction changes.
    model = tiny_model().eval()
    x = item(64, 64, seed=3)
    unknown = torch.full_like(x["trimap"], 0.5)
    a = model([{"image": x["image"], "trimap": unknown}])[0]["alpha"]
    half = unknown.clone()
    half[:, :, :32] = 1.0
    b = model([{"image": x["image"], "trimap": half}])[0]["alpha"]
    assert (a[:, :, 32:] - b[:, :, 32:]).abs().max() > 1e-4


def test_training_sees_the_raw_prediction_and_backpropagates_into_the_trimap_channel():
    model = tiny_model().train()
    inputs = [item(48, 64, seed=4), item(48, 64, seed=5)]
    losses = model(inputs)
    seen = model.criterion.seen
    torch.testing.assert_close(seen["trimap"], torch.stack([x["trimap"] for x in inputs]))
    known = seen["trimap"] != 0.5
    # Not overwritten by the trimap during training: the known loss must see the network.
    assert not torch.equal(seen["pred_alpha"][known], seen["trimap"][known])
    losses["loss_mean"].backward()
    assert model.backbone.patch_embed.proj.weight.grad[:, 3].abs().sum() > 0
    assert model.decoder.conv_stream[0][0].weight.grad[:, 3].abs().sum() > 0


def test_missing_trimap_and_wrong_channels_are_clear_errors():
    model = tiny_model().eval()
    with pytest.raises(KeyError, match="trimap-guided inference needs a 'trimap'"):
        model([{"image": torch.zeros(3, 32, 32, dtype=torch.uint8), "file_name": "a.png"}])
    with pytest.raises(ValueError, match="trimap-guided"):
        model.predict_alpha(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="does not match the image"):
        model.predict_alpha(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 16))
    with pytest.raises(ValueError, match=r"model.backbone.in_chans=3.*set them to 4"):
        tiny_model(trimap_input=True, in_chans=3)
    with pytest.raises(ValueError, match=r"model.decoder.image_channels=4.*set them to 3"):
        tiny_model(trimap_input=False, image_channels=4)


@torch.no_grad()
def test_preprocess_is_the_one_normalise_and_pad():
    model = tiny_model().eval()
    image = torch.randint(0, 256, (3, 45, 70), dtype=torch.uint8)
    trimap = random_trimap(45, 70)
    x, sizes = model.preprocess([image], [trimap])
    assert sizes == [(45, 70)] and x.shape == (1, 4, 64, 96)
    plain = (image.float() - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    torch.testing.assert_close(x[0, :3, :45, :70], plain)
    assert torch.equal(x[0, 3:, :45, :70], trimap)
    assert not x[:, :, 45:].any() and not x[:, :, :, 70:].any()  # zero padding
    batched, batch_sizes = model.preprocess(image[None], trimap[None])
    assert torch.equal(batched, x) and batch_sizes == sizes
