"""The settings that make this package's ViTMatte and transformers' ``VitMatteForImageMatting``
the same network, read from either side, with the refusals where they cannot be.

transformers' ``VitMatteForImageMatting`` computes exactly what our ViTMatte computes (detectron2's
ViT + :class:`~alphafree_d2.modeling.decoder.DetailCapture`) when these hold, and only then:

- ViT: same depth, width, heads, MLP width (an integer ``mlp_ratio``: transformers' field is an
  int), patch size (no padding), input channels, window size and window / residual block
  indexes, relative positions (table sizes: ``2 * window - 1`` in window blocks,
  ``2 * img_size / patch - 1`` in global ones) and the absolute position embedding of the
  pretraining grid (both resize it bicubically, ``align_corners=False``, and both resize
  relative-position tables linearly to the token grid); exact GELU; ``nn.LayerNorm`` with one eps
  (transformers' ``layer_norm_eps``; the conv residual blocks' channel LayerNorm is eps 1e-6 on
  both sides); windows padded with zeros after ``norm1`` on both sides;
- decoder: transformers' fusion blocks upsample by a fixed factor 2 (ours resize to the skip's
  size), so the ViT stride must be ``2 ** (len(conv_channels) + 1)`` (16 for three conv
  stages); its matting head has 16 middle channels, fixed in its code
  (``model.decoder.head_channels=16``); its conv-stream and fusion BatchNorms share one eps
  (``batch_norm_eps``), the head's is 1e-5;
- preprocessing: transformers' processor takes RGB, computes ``(x * r - mean) / std`` (our
  ``pixel_mean = mean / r``, ``pixel_std = std / r`` with ``r = rescale_factor``) and appends
  the trimap times ``r``, so a trimap-guided model needs ``r = 1/255``; it pads bottom / right
  with zeros after normalisation to a multiple of ``size_divisor``, as ours does.

Anything else is refused by :func:`vitmatte_fields` naming the setting, never exported
approximately. Key names: :mod:`.vitmatte_keys`; files and conversions: :mod:`.vitmatte`.
"""

import inspect
import math
from typing import Dict, Optional

from torch import nn

__all__ = [
    "HEAD_CHANNELS",
    "NotExportableError",
    "vitmatte_fields",
    "settings_from_hf",
    "compare_settings",
    "config_differences",
    "format_overrides",
]

# transformers' VitMatteHead: nn.Conv2d(in, 16, 3) -> BatchNorm2d(16) (default eps) -> ReLU -> 1x1.
HEAD_CHANNELS = 16
_HEAD_BN_EPS = 1e-5
_RESIDUAL_LN_EPS = 1e-6

# transformers field -> our LazyConfig key (``model.`` + ...).
_BACKBONE_KEYS = {
    "hidden_size": "backbone.embed_dim",
    "num_hidden_layers": "backbone.depth",
    "num_attention_heads": "backbone.num_heads",
    "mlp_ratio": "backbone.mlp_ratio",
    "patch_size": "backbone.patch_size",
    "num_channels": "backbone.in_chans",
    "qkv_bias": "backbone.qkv_bias",
    "window_size": "backbone.window_size",
    "window_block_indices": "backbone.window_block_indexes",
    "residual_block_indices": "backbone.residual_block_indexes",
    "use_absolute_position_embeddings": "backbone.use_abs_pos",
    "use_relative_position_embeddings": "backbone.use_rel_pos",
    "image_size": "backbone.img_size",
    "pretrain_image_size": "backbone.pretrain_img_size",
}
_DECODER_KEYS = {
    "hidden_size": "decoder.in_channels",
    "convstream_hidden_sizes": "decoder.conv_channels",
    "fusion_hidden_sizes": "decoder.fusion_channels",
}


class NotExportableError(ValueError):
    """The model (or a transformers configuration) has a setting the other side cannot hold
    exactly; the message names each one."""


def _raise_if(problems, what):
    if problems:
        raise NotExportableError(f"{what}:\n  - " + "\n  - ".join(problems))


# ------------------------------------------------------------------------------------------
# Our model -> transformers' configuration fields.


def _vit_fields(vit, problems):
    from detectron2.modeling.backbone.vit import ViT

    if not isinstance(vit, ViT):
        problems.append(f"model.backbone is a {type(vit).__name__}; only detectron2's ViT exports")
        return {}
    proj = vit.patch_embed.proj
    patch = proj.kernel_size[0]
    if proj.kernel_size != (patch, patch) or proj.stride != proj.kernel_size or any(proj.padding):
        problems.append(f"model.backbone: patch embedding {proj} is not square / non-overlapping")
    blocks = list(vit.blocks)
    dim = proj.out_channels
    first = blocks[0]
    hidden = first.mlp.fc1.out_features
    fields = {
        "hidden_size": dim,
        "num_hidden_layers": len(blocks),
        "num_attention_heads": first.attn.num_heads,
        "mlp_ratio": hidden // dim,
        "patch_size": patch,
        "num_channels": proj.in_channels,
        "qkv_bias": first.attn.qkv.bias is not None,
        "window_size": max(b.window_size for b in blocks),
        "window_block_indices": [i for i, b in enumerate(blocks) if b.window_size > 0],
        "residual_block_indices": [i for i, b in enumerate(blocks) if b.use_residual_block],
        "use_absolute_position_embeddings": vit.pos_embed is not None,
        "use_relative_position_embeddings": bool(first.attn.use_rel_pos),
        "hidden_act": "gelu",
        "out_features": [f"stage{len(blocks)}"],
    }
    if hidden % dim:
        problems.append(
            f"model.backbone.mlp_ratio gives an MLP width of {hidden} for width {dim}: "
            f"transformers' mlp_ratio is an integer"
        )
    norms = [m for b in blocks for m in (b.norm1, b.norm2)]
    eps = {getattr(m, "eps", None) for m in norms}
    if not all(type(m) is nn.LayerNorm and m.elementwise_affine for m in norms) or len(eps) != 1:
        problems.append(
            "model.backbone.norm_layer must be nn.LayerNorm with one eps (transformers' "
            f"layer_norm_eps); found {sorted({type(m).__name__ for m in norms})}, eps {eps}"
        )
    else:
        fields["layer_norm_eps"] = eps.pop()
    acts = [b.mlp.act for b in blocks]
    acts += [b.residual.act1 for b in blocks if b.use_residual_block]
    if not all(type(a) is nn.GELU and a.approximate == "none" for a in acts):
        problems.append("model.backbone.act_layer must be nn.GELU (exact; transformers' 'gelu')")
    if any(not isinstance(getattr(b.mlp, "norm", nn.Identity()), nn.Identity) for b in blocks):
        problems.append("model.backbone: an MLP with a norm layer has no transformers equivalent")
    for b in blocks:
        if b.use_residual_block:
            ln_eps = {b.residual.norm1.eps, b.residual.norm2.eps, b.residual.norm3.eps}
            if ln_eps != {_RESIDUAL_LN_EPS}:
                problems.append(f"model.backbone: residual LayerNorm eps {ln_eps}, not 1e-6")
    if vit.pos_embed is not None:
        n = vit.pos_embed.shape[1] - int(vit.pretrain_use_cls_token)
        fields["pretrain_image_size"] = math.isqrt(n) * patch
    global_blocks = [b for b in blocks if b.window_size == 0]
    if fields["use_relative_position_embeddings"] and global_blocks:
        fields["image_size"] = (global_blocks[0].attn.rel_pos_h.shape[0] + 1) // 2 * patch
    drop = blocks[-1].drop_path
    fields["drop_path_rate"] = float(getattr(drop, "drop_prob", 0.0))
    return fields


def _decoder_fields(decoder, embed_dim, patch, problems):
    from ..modeling.decoder import DetailCapture

    if not isinstance(decoder, DetailCapture):
        problems.append(
            f"model.decoder is a {type(decoder).__name__}; only DetailCapture has a "
            f"transformers equivalent (VitMatteDetailCaptureModule)"
        )
        return {}
    stream = [s[0].out_channels for s in decoder.conv_stream]
    fusion = [f[0].out_channels for f in decoder.fusion]
    head = decoder.head[0].out_channels
    if head != HEAD_CHANNELS:
        problems.append(
            f"model.decoder.head_channels={head}: transformers' VitMatteHead has "
            f"{HEAD_CHANNELS} middle channels, fixed in its code; train with "
            f"model.decoder.head_channels={HEAD_CHANNELS}"
        )
    if patch is not None and patch != 2 ** (len(stream) + 1):
        problems.append(
            f"model.backbone.patch_size={patch} with {len(stream)} conv stages "
            f"(model.decoder.conv_channels): transformers' fusion blocks upsample by exactly 2, "
            f"so the ViT stride must be 2^(stages + 1) = {2 ** (len(stream) + 1)}"
        )
    bns = [s[1] for s in decoder.conv_stream] + [f[1] for f in decoder.fusion]
    eps = {bn.eps for bn in bns}
    if len(eps) != 1 or decoder.head[1].eps != _HEAD_BN_EPS:
        problems.append(
            f"model.decoder: BatchNorm eps {sorted(eps)} (head {decoder.head[1].eps}); "
            f"transformers has one batch_norm_eps and 1e-5 in the head"
        )
    fields = {
        "hidden_size": embed_dim,
        "convstream_hidden_sizes": stream,
        "fusion_hidden_sizes": fusion,
        "batch_norm_eps": min(eps) if eps else 1e-5,
    }
    return fields


def vitmatte_fields(model) -> Dict[str, dict]:
    """transformers' description of our :class:`~alphafree_d2.modeling.ViTMatte`, read from
    its modules (not from the config, so it describes the network that runs).

    Returns:
        {"backbone": VitDetConfig fields, "vitmatte": VitMatteConfig fields (without the
        backbone), "processor": VitMatteImageProcessor fields}.

    Raises:
        NotExportableError: listing every setting transformers cannot hold exactly.
    """
    problems = []
    backbone = _vit_fields(model.backbone, problems)
    patch = backbone.get("patch_size")
    decoder = _decoder_fields(model.decoder, backbone.get("hidden_size"), patch, problems)
    if model.input_format != "RGB":
        problems.append(
            f"model.input_format={model.input_format!r}: transformers' processor feeds RGB"
        )
    d = int(model.size_divisibility)
    if patch and (d < 1 or d % patch):
        problems.append(
            f"model.size_divisibility={d} is not a multiple of the patch size {patch}: "
            f"transformers' decoder needs padded sizes that are"
        )
    _raise_if(problems, "this model cannot be exported to transformers' ViTMatte exactly")
    processor = {
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        # 0-255 values of a float32 buffer, to 4 decimals: 123.675 stays 123.675.
        "image_mean": [round(float(v), 4) / 255 for v in model.pixel_mean.flatten()],
        "image_std": [round(float(v), 4) / 255 for v in model.pixel_std.flatten()],
        "do_pad": True,
        "size_divisor": d,
    }
    return {"backbone": backbone, "vitmatte": decoder, "processor": processor}


# ------------------------------------------------------------------------------------------
# transformers' configuration -> our settings.


def settings_from_hf(config: dict, processor: Optional[dict] = None) -> Dict[str, object]:
    """The settings of our LazyConfig (``model.*`` keys, values for ``key=value`` overrides)
    under which our ViTMatte is the network a transformers ``config.json`` describes.

    Args:
        config: ``VitMatteForImageMatting``'s ``config.json`` (with ``backbone_config``).
        processor: its ``preprocessor_config.json``, or None (normalisation then unknown: the
            ``model.pixel_*`` keys are left out).

    transformers' ``VitMatteForImageMatting`` decodes the last of the backbone's
    ``out_features``: when that is block k of N, blocks k+1..N cannot change its alpha, and the
    settings say ``depth=k`` (the conversion then leaves those blocks out).

    Raises:
        NotExportableError: for settings our model cannot hold (activation, eps).
    """
    b = dict(config.get("backbone_config") or {})
    problems = []
    if b.get("model_type", "vitdet") != "vitdet":
        problems.append(f"backbone model_type {b.get('model_type')!r}: only 'vitdet' converts")
    if b.get("hidden_act", "gelu") != "gelu":
        problems.append(f"backbone hidden_act {b['hidden_act']!r}: our ViT uses exact GELU")
    if not math.isclose(b.get("layer_norm_eps", 1e-6), 1e-6):
        problems.append(f"backbone layer_norm_eps {b['layer_norm_eps']}: our configs use 1e-6")
    if not math.isclose(config.get("batch_norm_eps", 1e-5), 1e-5):
        problems.append(f"batch_norm_eps {config['batch_norm_eps']}: our decoder uses 1e-5")
    _raise_if(problems, "this transformers ViTMatte has settings our model cannot hold")
    depth = int(b.get("num_hidden_layers", 12))
    stage = (b.get("out_features") or [f"stage{depth}"])[-1]
    depth = depth if stage == "stem" else int(stage.replace("stage", ""))
    defaults = {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "mlp_ratio": 4,
        "patch_size": 16,
        "num_channels": 3,
        "qkv_bias": True,
        "window_size": 0,
        "window_block_indices": [],
        "residual_block_indices": [],
        "use_absolute_position_embeddings": True,
        "use_relative_position_embeddings": False,
        "image_size": 224,
        "pretrain_image_size": 224,
    }
    fields = {"num_hidden_layers": depth, **defaults, **{k: b[k] for k in defaults if k in b}}
    for k in ("window_block_indices", "residual_block_indices"):
        fields[k] = [i for i in fields[k] if i < depth]
    out = {f"model.{_BACKBONE_KEYS[k]}": v for k, v in fields.items() if k in _BACKBONE_KEYS}
    chans = int(fields["num_channels"])
    out.update(
        {
            "model.decoder.in_channels": config.get("hidden_size", 384),
            "model.decoder.conv_channels": list(
                config.get("convstream_hidden_sizes", (48, 96, 192))
            ),
            "model.decoder.fusion_channels": list(
                config.get("fusion_hidden_sizes", (256, 128, 64, 32))
            ),
            "model.decoder.image_channels": chans,
            "model.decoder.head_channels": HEAD_CHANNELS,
            "model.trimap_input": chans == 4,
        }
    )
    if processor is not None:
        out.update(_processor_settings(processor, chans))
    return out


def _processor_settings(p, chans):
    r = float(p.get("rescale_factor", 1 / 255)) if p.get("do_rescale", True) else 1.0
    normalize = p.get("do_normalize", True)
    mean = p.get("image_mean", [0.5] * 3) if normalize else [0.0] * 3
    std = p.get("image_std", [0.5] * 3) if normalize else [1.0] * 3
    mean = mean if isinstance(mean, (list, tuple)) else [mean] * 3
    std = std if isinstance(std, (list, tuple)) else [std] * 3
    if chans == 4 and not math.isclose(r, 1 / 255):
        raise NotExportableError(
            f"preprocessor rescale_factor {r} (do_rescale {p.get('do_rescale', True)}): the "
            f"processor scales the trimap by it too, and our trimap channel is {{0, 0.5, 1}}, "
            f"i.e. 1/255"
        )
    out = {
        "model.pixel_mean": [round(float(m) / r, 4) for m in mean],
        "model.pixel_std": [round(float(s) / r, 4) for s in std],
    }
    if p.get("do_pad", True):
        out["model.size_divisibility"] = int(p.get("size_divisor", p.get("size_divisibility", 32)))
    return out


def _our_settings(fields):
    out = {
        f"model.{_BACKBONE_KEYS[k]}": v
        for k, v in fields["backbone"].items()
        if k in _BACKBONE_KEYS
    }
    out.update(
        {
            f"model.{_DECODER_KEYS[k]}": v
            for k, v in fields["vitmatte"].items()
            if k in _DECODER_KEYS
        }
    )
    chans = fields["backbone"]["num_channels"]
    out.update(
        {
            "model.decoder.image_channels": chans,
            "model.decoder.head_channels": HEAD_CHANNELS,
            "model.trimap_input": chans == 4,
        }
    )
    p = fields["processor"]
    out["model.pixel_mean"] = [round(m * 255, 4) for m in p["image_mean"]]
    out["model.pixel_std"] = [round(s * 255, 4) for s in p["image_std"]]
    out["model.size_divisibility"] = p["size_divisor"]
    return out


def _same(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-6)
    return a == b


def compare_settings(model, settings: Dict[str, object]) -> Dict[str, tuple]:
    """Settings of ``settings`` (from :func:`settings_from_hf`) that ``model`` (our ViTMatte,
    built from a config) does not have: {key: (wanted, the model's)}. Keys the model's network
    does not depend on (``img_size`` without global relative positions, ``pretrain_img_size``
    without an absolute position embedding) are not compared.

    Raises:
        NotExportableError: when ``model`` cannot be a transformers ViTMatte at all.
    """
    ours = _our_settings(vitmatte_fields(model))
    ours["model.trimap_input"] = bool(model.trimap_input)
    return {
        key: (value, ours[key])
        for key, value in settings.items()
        if key in ours and not _same(value, ours[key])
    }


def _config_value(cfg, key):
    """The value of ``key`` in a LazyConfig, or the default of its LazyCall target's argument
    when the config leaves it out; ``_ABSENT`` when neither exists."""
    from omegaconf import OmegaConf

    from detectron2.config.instantiate import locate

    node_key, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, node_key)
    if node is None:
        return _ABSENT
    if leaf in node:
        value = OmegaConf.select(cfg, key)
        return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    target = node.get("_target_")
    target = locate(target) if isinstance(target, str) else target
    try:
        parameter = inspect.signature(target).parameters.get(leaf)
    except (TypeError, ValueError):
        parameter = None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return _ABSENT
    return parameter.default


_ABSENT = object()


def config_differences(cfg, settings: Dict[str, object]) -> Dict[str, object]:
    """The entries of ``settings`` (``model.*`` keys, :func:`settings_from_hf`) that the
    LazyConfig ``cfg`` does not already have (a key it leaves out counts with its LazyCall
    target's default): the overrides that make ``cfg`` build that network."""
    return {
        key: value
        for key, value in settings.items()
        if (have := _config_value(cfg, key)) is _ABSENT or not _same(value, have)
    }


def format_overrides(settings: Dict[str, object]):
    """``["key=value", ...]`` in the command-line syntax of the tools' overrides (no spaces, so
    each is one shell word)."""

    def text(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(text(x) for x in v) + "]"
        return repr(v) if isinstance(v, float) else str(v)

    return [f"{key}={text(value)}" for key, value in settings.items()]
