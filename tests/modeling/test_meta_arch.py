"""ViTMatte meta-architecture: detectron2-style batches in, losses or per-image alphas out."""

from functools import partial

import pytest
import torch
from torch import nn

from detectron2.modeling.backbone.vit import ViT

from alphafree_d2.modeling import DetailCapture, ViTMatte


class RecordingCriterion(nn.Module):
    """Keeps what the model passes to its loss head."""

    def forward(self, pred_alpha, image, trimap, alpha=None):
        self.seen = dict(pred_alpha=pred_alpha, image=image, trimap=trimap, alpha=alpha)
        return {"loss_mean": pred_alpha.mean()}


def tiny_model(input_format="RGB"):
    torch.manual_seed(0)
    backbone = ViT(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2,
                   norm_layer=partial(nn.LayerNorm, eps=1e-6), window_size=4,
                   window_block_indexes=[0], residual_block_indexes=[1], use_rel_pos=True,
                   pretrain_img_size=64)  # fmt: skip
    decoder = DetailCapture(32, conv_channels=(8, 8, 8), fusion_channels=(16, 8, 8, 8))
    return ViTMatte(backbone=backbone, decoder=decoder, criterion=RecordingCriterion(),
                    pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
                    input_format=input_format, size_divisibility=32)  # fmt: skip


def batch(sizes, with_alpha=False):
    out = []
    for h, w in sizes:
        item = {
            "image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8),
            "trimap": torch.full((1, h, w), 0.5),
        }
        if with_alpha:
            item["alpha"] = torch.rand(1, h, w)
        out.append(item)
    return out


@pytest.mark.parametrize("input_format", ["RGB", "BGR"])
def test_training_passes_the_unnormalised_rgb_image_to_the_criterion(input_format):
    model = tiny_model(input_format).train()
    inputs = batch([(45, 70), (45, 70)], with_alpha=True)
    losses = model(inputs)
    assert set(losses) == {"loss_mean"}
    seen = model.criterion.seen
    assert seen["pred_alpha"].shape == (2, 1, 45, 70)  # padded to 64 x 96, cropped back
    assert 0 <= seen["pred_alpha"].min() and seen["pred_alpha"].max() <= 1
    rgb = torch.stack([x["image"] for x in inputs]).float() / 255
    if input_format == "BGR":
        rgb = rgb.flip(1)
    torch.testing.assert_close(seen["image"], rgb)
    torch.testing.assert_close(seen["alpha"], torch.stack([x["alpha"] for x in inputs]))
    losses["loss_mean"].backward()
    assert model.backbone.patch_embed.proj.weight.grad is not None


def test_training_without_alpha_passes_none():
    model = tiny_model().train()
    model(batch([(32, 32)]))
    assert model.criterion.seen["alpha"] is None


def test_training_batches_must_share_a_size():
    with pytest.raises(ValueError, match="fixed-size crop"):
        tiny_model().train()(batch([(32, 32), (40, 32)]))


def test_inference_returns_one_alpha_per_image_at_its_size():
    model = tiny_model().eval()
    inputs = batch([(45, 70), (33, 20)])
    inputs[1]["height"], inputs[1]["width"] = 66, 40  # a requested output size (upsampled)
    with torch.no_grad():
        outputs = model(inputs)
    assert [o["alpha"].shape for o in outputs] == [(1, 45, 70), (1, 66, 40)]
    for o in outputs:
        assert 0 <= o["alpha"].min() and o["alpha"].max() <= 1
    # Batching with a larger image (padding) does not change a prediction.
    with torch.no_grad():
        alone = model([{"image": inputs[0]["image"]}])[0]["alpha"]
    torch.testing.assert_close(outputs[0]["alpha"], alone, atol=1e-5, rtol=0)


def test_predict_alpha_matches_the_dict_interface():
    model = tiny_model().eval()
    image = torch.randint(0, 256, (3, 50, 37), dtype=torch.uint8)
    with torch.no_grad():
        direct = model.predict_alpha(image[None].float())[0]
        via_dicts = model([{"image": image}])[0]["alpha"]
    torch.testing.assert_close(direct, via_dicts)


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_format"):
        tiny_model(input_format="YUV")


def test_padding_equals_detectron2s_image_list_and_f_pad():
    # One padding for lists and batches: zeros after normalisation at the bottom/right, as
    # detectron2's ImageList pads a list and F.pad pads a batch.
    from torch.nn import functional as F

    from detectron2.structures import ImageList

    model = tiny_model().eval()
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in [(45, 70), (33, 20)]]
    x, sizes = model.preprocess(images)
    normalised = [(im.float() - model.pixel_mean) / model.pixel_std for im in images]
    expected = ImageList.from_tensors(normalised, 32)
    assert torch.equal(x, expected.tensor) and sizes == [(45, 70), (33, 20)]
    for h, w in [(45, 70), (64, 32), (1, 33)]:
        batch_images = torch.randint(0, 256, (2, 3, h, w)).float()
        x, sizes = model.preprocess(batch_images)
        normalised = (batch_images - model.pixel_mean) / model.pixel_std
        pad_h, pad_w = -h % 32, -w % 32
        assert torch.equal(x, F.pad(normalised, (0, pad_w, 0, pad_h))) and sizes == [(h, w)] * 2
