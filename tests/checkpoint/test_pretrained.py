"""Pretrained ViT conversion: DINO / MAE / timm files -> detectron2's ViT, checked by outputs."""

import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from detectron2.modeling.backbone.vit import ViT

from alphafree_d2.checkpoint import convert_vit_checkpoint, load_pretrained_state_dict

ROOT = Path(__file__).resolve().parents[2]


def _tiny_timm_vit(**kwargs):
    torch.manual_seed(0)
    return timm.models.vision_transformer.VisionTransformer(
        img_size=64, patch_size=16, embed_dim=48, depth=2, num_heads=3, num_classes=10, **kwargs
    ).eval()


def _tiny_d2_vit(pretrain_use_cls_token=True):
    return ViT(
        img_size=64,
        patch_size=16,
        embed_dim=48,
        depth=2,
        num_heads=3,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        pretrain_img_size=64,
        pretrain_use_cls_token=pretrain_use_cls_token,
    ).eval()


def _load_backbone(d2_vit, model_state):
    state = {k[len("backbone.") :]: v for k, v in model_state.items()}
    result = d2_vit.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert not result.missing_keys  # no rel-pos / residual blocks in this tiny ViT
    return d2_vit


def _timm_patch_tokens(vit, x):
    """What detectron2's ViT computes: blocks over patch tokens (no class token, no final norm)."""
    tokens = vit.patch_embed(x)
    tokens = tokens + vit.pos_embed[:, vit.num_prefix_tokens :]
    for block in vit.blocks:
        tokens = block(tokens)
    b, n, c = tokens.shape
    g = int(n**0.5)
    return tokens.reshape(b, g, g, c).permute(0, 3, 1, 2)


def test_timm_weights_give_the_same_features():
    # Without a class token, timm's blocks and detectron2's blocks see the same tokens, so the
    # converted weights must reproduce timm's features exactly.
    src = _tiny_timm_vit(class_token=False, global_pool="avg")
    model_state, report = convert_vit_checkpoint(
        src.state_dict(), pretrain_img_size=64, pretrain_use_cls_token=False
    )
    assert "head.weight" in report["dropped"] and "fc_norm.weight" in report["dropped"]
    d2 = _load_backbone(_tiny_d2_vit(pretrain_use_cls_token=False), model_state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(d2(x)["last_feat"], _timm_patch_tokens(src, x))


@pytest.mark.parametrize("fmt", ["dino", "mae", "timm"])
def test_file_formats_round_trip(tmp_path, fmt):
    src = _tiny_timm_vit()
    state = src.state_dict()
    if fmt == "mae":  # MAE pretraining checkpoints: {"model": ...} with decoder weights
        payload = {"model": {**state, "mask_token": torch.zeros(1, 1, 48),
                             "decoder_embed.weight": torch.zeros(8, 48)}}  # fmt: skip
    elif fmt == "dino":  # a full DINO training checkpoint: teacher weights, prefixed
        payload = {"teacher": {f"module.backbone.{k}": v for k, v in state.items()}}
    else:
        payload = state
    path = tmp_path / f"{fmt}.pth"
    torch.save(payload, path)
    loaded = load_pretrained_state_dict(str(path), fmt)
    model_state, report = convert_vit_checkpoint(loaded, pretrain_img_size=64)
    assert "cls_token" in report["dropped"]
    d2 = _load_backbone(_tiny_d2_vit(), model_state)
    torch.testing.assert_close(d2.pos_embed, state["pos_embed"])  # class-token row kept
    torch.testing.assert_close(d2.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"])


def test_pos_embed_is_resized_to_the_model_grid():
    src = _tiny_timm_vit()  # 4x4 grid + class token
    model_state, _ = convert_vit_checkpoint(src.state_dict(), pretrain_img_size=128)
    pos = model_state["backbone.pos_embed"]
    assert pos.shape == (1, 1 + 8 * 8, 48)
    torch.testing.assert_close(pos[:, :1], src.pos_embed[:, :1])
    # A smooth source stays smooth: the resized grid's mean equals the source grid's mean.
    torch.testing.assert_close(pos[0, 1:].mean(0), src.pos_embed[0, 1:].mean(0), atol=0.05, rtol=0)


def test_unrepresentable_weights_are_refused():
    src = _tiny_timm_vit(init_values=1e-5)  # layer scale: detectron2's ViT has none
    with pytest.raises(ValueError, match="cannot hold"):
        convert_vit_checkpoint(src.state_dict(), pretrain_img_size=64)


def test_bad_files_are_named(tmp_path):
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="truncated.pth"):
        load_pretrained_state_dict(str(bad), "dino")
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a ViT checkpoint"):
        load_pretrained_state_dict(str(other), "timm")


def test_cli_converts_and_refuses_to_overwrite(tmp_path):
    src = tmp_path / "timm.pth"
    torch.save(_tiny_timm_vit().state_dict(), src)
    out = tmp_path / "converted.pth"
    cmd = [sys.executable, str(ROOT / "tools/convert_pretrained.py"), "--format", "timm",
           "--pretrain-img-size", "64", str(src), str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "dropped" in done.stdout
    data = torch.load(out, weights_only=True)
    assert "backbone.blocks.0.attn.qkv.weight" in data["model"]
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode != 0 and "--overwrite" in again.stderr
