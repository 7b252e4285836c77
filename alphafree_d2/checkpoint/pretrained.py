"""Convert pretrained ViT weights (DINO, MAE, timm) to detectron2's ViT inside ViTMatte.

Key mapping (source -> this model):

- ``patch_embed.proj.*``, ``pos_embed``, ``blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
  mlp.fc2}.*`` -> the same names under ``backbone.`` (timm, DINO and MAE share timm's names).
- ``patch_embed.proj.weight``: (C, 3, p, p); for a trimap-guided model (``in_chans=4``) a 4th
  input channel is appended and starts at zero, so the converted ViT computes on image + trimap
  exactly what the pretrained one computes on the image, until training moves it.
- ``pos_embed``: kept with its class-token row when the model expects one; the patch grid is
  resized (bicubic) when the pretraining grid differs from the model's ``pretrain_img_size``.
- dropped: ``cls_token``, the final ``norm``/``fc_norm``, ``head``, and MAE's decoder
  (``decoder_*``, ``mask_token``). detectron2's ViT has no class token and no final norm.
- not in any source, initialised by the model: relative position tables
  (``attn.rel_pos_{h,w}``), the conv ``residual`` blocks, and the whole matting decoder.
"""

import logging
import math
import re

import torch
from torch.nn import functional as F

__all__ = ["FORMATS", "load_pretrained_state_dict", "convert_vit_checkpoint"]

logger = logging.getLogger(__name__)

FORMATS = ("dino", "mae", "timm")

_BLOCK_KEY = re.compile(
    r"blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$"
)
_DROPPED = re.compile(
    r"^(cls_token|dist_token|norm\.|fc_norm\.|head\.|head_dist\.|decoder_|mask_token)"
)
_KEPT = re.compile(r"^(pos_embed|patch_embed\.proj\.(weight|bias))$")


def _strip(state_dict, prefixes):
    out = {}
    for key, value in state_dict.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def load_pretrained_state_dict(path, fmt):
    """Read a checkpoint file of format ``fmt`` ("dino", "mae", "timm") as a flat state dict
    with timm's key names."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated files, pickles of arbitrary objects, not a checkpoint
        raise ValueError(f"{path}: cannot be read as a {fmt} checkpoint ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of tensors, found {type(data).__name__}")
    if fmt == "dino" and "teacher" in data:  # a full DINO training checkpoint
        data = data["teacher"]
    elif fmt == "mae" and "model" in data:
        data = data["model"]
    elif fmt == "timm" and "state_dict" in data:
        data = data["state_dict"]
    data = _strip(data, ("module.", "backbone."))
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if "patch_embed.proj.weight" not in tensors:
        raise ValueError(
            f"{path}: no 'patch_embed.proj.weight' found; not a ViT checkpoint in {fmt} format "
            f"(first keys: {list(data)[:5]})"
        )
    return tensors


def _resize_pos_embed(pos_embed, grid, has_cls_token):
    """(1, [1 +] g*g, C) -> (1, [1 +] grid*grid, C); the class-token row is kept or dropped."""
    n, c = pos_embed.shape[1:]
    src_cls = n - int(math.isqrt(n)) ** 2  # 1 if the source has a class-token row, else 0
    g = math.isqrt(n - src_cls)
    if g * g != n - src_cls or src_cls not in (0, 1):
        raise ValueError(f"pos_embed of shape {tuple(pos_embed.shape)} is not a square grid")
    cls_row, patches = pos_embed[:, :src_cls], pos_embed[:, src_cls:]
    if g != grid:
        logger.info(f"Resizing pos_embed from a {g}x{g} to a {grid}x{grid} grid (bicubic)")
        patches = patches.reshape(1, g, g, c).permute(0, 3, 1, 2).float()
        patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
        patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, c).to(pos_embed.dtype)
    if has_cls_token:
        if not src_cls:
            cls_row = torch.zeros(1, 1, c, dtype=pos_embed.dtype)
        return torch.cat([cls_row, patches], dim=1)
    return patches


def convert_vit_checkpoint(
    state_dict, *, pretrain_img_size=224, patch_size=16, pretrain_use_cls_token=True, in_chans=3
):
    """Map a timm-named ViT state dict to this package's model.

    Args:
        state_dict: from :func:`load_pretrained_state_dict`.
        pretrain_img_size, patch_size, pretrain_use_cls_token: the target ViT's arguments of
            the same names (the configs use 224, 16, True).

    Returns:
        (model_state, report): ``{"backbone.<key>": tensor}`` and a dict with the lists
        "converted", "dropped" (known extras) and "unknown" (unexpected keys, also dropped).
    """
    weight = state_dict["patch_embed.proj.weight"]
    if tuple(weight.shape[-2:]) != (patch_size, patch_size):
        raise ValueError(
            f"the checkpoint's patches are {tuple(weight.shape[-2:])}, the model expects "
            f"{patch_size}x{patch_size}"
        )
    if weight.shape[1] != 3:
        raise ValueError(
            f"expected an RGB patch embedding (3 input channels), got {weight.shape[1]}"
        )
    if in_chans < 3:
        raise ValueError(f"in_chans must be >= 3 (image channels first), got {in_chans}")
    out, report = {}, {"converted": [], "dropped": [], "unknown": []}
    for key, value in state_dict.items():
        if key == "pos_embed":
            value = _resize_pos_embed(
                value, pretrain_img_size // patch_size, pretrain_use_cls_token
            )
        if key == "patch_embed.proj.weight" and in_chans > 3:
            extra = value.new_zeros(value.shape[0], in_chans - 3, *value.shape[2:])
            value = torch.cat([value, extra], dim=1)
        if _KEPT.match(key) or _BLOCK_KEY.match(key):
            out["backbone." + key] = value.clone()
            report["converted"].append(key)
        elif _DROPPED.match(key):
            report["dropped"].append(key)
        else:
            report["unknown"].append(key)
    if report["unknown"]:
        raise ValueError(
            "the checkpoint has weights detectron2's ViT cannot hold (e.g. layer scale or "
            f"register tokens): {report['unknown'][:10]}"
        )
    return out, report
