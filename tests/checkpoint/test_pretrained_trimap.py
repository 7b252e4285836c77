"""Pretrained conversion for a trimap-guided ViT: the 4th input channel starts at zero, so the
converted model computes on (image, zero trimap) what the 3-channel model computes on the image."""

from functools import partial

import timm
import torch
from torch import nn

from detectron2.modeling.backbone.vit import ViT

from alphafree_d2.checkpoint import convert_vit_checkpoint


def d2_vit(in_chans):
    return ViT(img_size=64, patch_size=16, in_chans=in_chans, embed_dim=48, depth=2, num_heads=3,
               norm_layer=partial(nn.LayerNorm, eps=1e-6), pretrain_img_size=64).eval()  # fmt: skip


def test_fourth_channel_is_zero_filled_and_outputs_match():
    torch.manual_seed(0)
    src = timm.models.vision_transformer.VisionTransformer(
        img_size=64, patch_size=16, embed_dim=48, depth=2, num_heads=3, num_classes=10
    )
    state = src.state_dict()
    three, _ = convert_vit_checkpoint(state, pretrain_img_size=64)
    four, report = convert_vit_checkpoint(state, pretrain_img_size=64, in_chans=4)
    weight = four["backbone.patch_embed.proj.weight"]
    assert weight.shape == (48, 4, 16, 16)
    assert torch.equal(weight[:, :3], state["patch_embed.proj.weight"])
    assert not weight[:, 3].any()
    assert "patch_embed.proj.weight" in report["converted"]
    models = {}
    for chans, converted in ((3, three), (4, four)):
        model = d2_vit(chans)
        result = model.load_state_dict({k[len("backbone.") :]: v for k, v in converted.items()})
        assert not result.missing_keys and not result.unexpected_keys
        models[chans] = model
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = models[3](x)["last_feat"]
        got = models[4](torch.cat([x, torch.zeros(2, 1, 64, 96)], dim=1))["last_feat"]
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
