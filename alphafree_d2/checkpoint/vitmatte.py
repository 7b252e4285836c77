"""Pretrained ViTMatte checkpoints -> this package's ViTMatte (backbone and decoder): transformers
folders (``save_pretrained``) and the original release (hustvl/ViTMatte, detectron2 layout).

Key names: :mod:`.vitmatte_keys`; the settings of the matching network and what cannot match:
:mod:`.vitmatte_config`.
"""

import json
import os
from typing import Dict, Optional

import torch

from .safe_load import UnsafeCheckpointError, load_torch_weights
from .vitmatte_config import settings_from_hf
from .vitmatte_keys import from_hf_state_dict, rename_state_dict

__all__ = [
    "read_hf_vitmatte",
    "convert_hf_vitmatte",
    "convert_original_vitmatte",
    "set_input_channels",
    "check_output_apart",
]

_PATCH_KEY = "backbone.patch_embed.proj.weight"
_STREAM_KEY = "decoder.conv_stream.0.0.weight"


def _safetensors(path):
    try:
        from safetensors.torch import load_file
    except ImportError as e:
        raise ImportError(f"reading {path} needs safetensors: pip install -e .[hf]") from e
    try:
        return load_file(path, device="cpu")
    except FileNotFoundError:
        raise
    except Exception as e:  # safetensors' own error type for truncated or foreign files
        raise ValueError(f"{path}: cannot be read as safetensors ({e})") from e


def _load_torch(path):
    """``torch.load(weights_only=True)`` with one-line errors naming the file."""
    try:
        return load_torch_weights(path)
    except UnsafeCheckpointError as e:
        raise ValueError(
            f"{path}: refused to load: reading it would call {e}, which a file of weights never "
            f"needs (it could run code from the file)"
        ) from e
    except (FileNotFoundError, IsADirectoryError):
        raise
    except Exception as e:  # truncated files and non-checkpoints fail in many ways
        raise ValueError(f"{path}: cannot be read as a checkpoint ({type(e).__name__}: {e})") from e


def _read_weights(path):
    if path.endswith(".safetensors"):
        return _safetensors(path)
    data = _load_torch(path)
    return data.get("state_dict", data) if isinstance(data, dict) else data


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_hf_vitmatte(src: str):
    """Read a transformers ViTMatte: a folder from ``save_pretrained`` (``config.json``,
    ``model.safetensors`` or ``pytorch_model.bin``, possibly sharded with an ``.index.json``,
    and ``preprocessor_config.json`` if present), or one weights file beside its
    ``config.json``. ``.bin`` files are read with ``torch.load(weights_only=True)``.

    Returns:
        (state, config, processor): the state dict in transformers' names, ``config.json`` and
        ``preprocessor_config.json`` (None when absent) as dicts.
    """
    folder = src if os.path.isdir(src) else os.path.dirname(os.path.abspath(src))
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"{src}: no config.json {'in this folder' if src == folder else 'beside this file'}; "
            f"a transformers ViTMatte is a save_pretrained folder"
        )
    config = _read_json(config_path)
    if config.get("model_type") != "vitmatte":
        raise ValueError(
            f"{config_path}: model_type {config.get('model_type')!r}, expected 'vitmatte'"
        )
    if os.path.isdir(src):
        names = ("model.safetensors", "pytorch_model.bin")
        index = [n + ".index.json" for n in names]
        found = [n for n in names + tuple(index) if os.path.isfile(os.path.join(folder, n))]
        if not found:
            raise FileNotFoundError(f"{src}: no {' / '.join(names)} (or a sharded index)")
        weights = os.path.join(folder, found[0])
    else:
        weights = src
    if weights.endswith(".index.json"):
        shards = sorted(set(_read_json(weights)["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(_read_weights(os.path.join(folder, shard)))
    else:
        state = _read_weights(weights)
    processor_path = os.path.join(folder, "preprocessor_config.json")
    processor = _read_json(processor_path) if os.path.isfile(processor_path) else None
    return state, config, processor


def check_output_apart(src: str, output: str) -> None:
    """Refuse (ValueError) an ``output`` path that is a file a conversion of ``src`` reads (the
    weights, ``config.json``, ``preprocessor_config.json``), so that converting never replaces
    its own input, ``--overwrite`` or not."""
    out = os.path.realpath(output)
    if os.path.isdir(src):
        folder = os.path.realpath(src)
        name = os.path.basename(out)
        reads = os.path.dirname(out) == folder and (
            name in ("config.json", "preprocessor_config.json")
            or name.endswith((".safetensors", ".bin", ".index.json"))
        )
    else:
        folder = os.path.dirname(os.path.realpath(src))
        beside = [os.path.join(folder, n) for n in ("config.json", "preprocessor_config.json")]
        reads = out in [os.path.realpath(src), *beside]
    if reads:
        raise ValueError(
            f"{output} is an input of the conversion of {src}; write the checkpoint elsewhere"
        )


def set_input_channels(state: Dict[str, torch.Tensor], in_chans: Optional[int]):
    """Our full-model ``state`` for ``in_chans`` input channels (None: as it is).

    3 -> 4 (an automatic model made trimap-guided): the trimap channel's weights start at zero
    in the patch embedding, the conv stream's first conv and the last fusion block (which sees
    the network input again), so the model computes on image + trimap exactly what it
    computed on the image, as the DINO/MAE conversion does. 4 -> 3 is refused: dropping the
    trimap would change what a trimap-guided model computes.
    """
    have = state[_PATCH_KEY].shape[1]
    if in_chans is None or in_chans == have:
        return state
    if (have, in_chans) != (3, 4):
        raise ValueError(
            f"the checkpoint takes {have} input channels; converting it to {in_chans} would "
            f"change what it computes ({'it is trimap-guided' if have == 4 else 'unsupported'}); "
            f"use --in-chans {have}"
        )
    state = dict(state)
    for key in (_PATCH_KEY, _STREAM_KEY):
        w = state[key]
        state[key] = torch.cat([w, w.new_zeros(w.shape[0], 1, *w.shape[2:])], dim=1)
    last = max(int(k.split(".")[2]) for k in state if k.startswith("decoder.fusion."))
    key = f"decoder.fusion.{last}.0.weight"
    w = state[key]  # input: [network input (image channels), previous fusion output]
    state[key] = torch.cat([w[:, :3], w.new_zeros(w.shape[0], 1, *w.shape[2:]), w[:, 3:]], dim=1)
    return state


def _drop_blocks(state, depth):
    """Leave out ViT blocks >= depth (unused by a transformers model decoding stage ``depth``)."""
    return {
        k: v
        for k, v in state.items()
        if not (k.startswith("backbone.blocks.") and int(k.split(".")[2]) >= depth)
    }


def convert_hf_vitmatte(src: str, in_chans: Optional[int] = None, cls_token: bool = True):
    """A transformers ViTMatte (see :func:`read_hf_vitmatte`) -> our full-model state dict.

    Args:
        in_chans: see :func:`set_input_channels` (None: the checkpoint's own).
        cls_token: keep the class-token row of the position embedding (our ViT's
            ``pretrain_use_cls_token``, True in every config here).

    Returns:
        (state, settings, report): ``{"backbone.*", "decoder.*": tensor}`` for
        ``train.init_checkpoint`` / ``--eval-only`` / ``predict.py``; the ``model.*`` settings
        of the matching network (:func:`settings_from_hf`, with ``in_chans`` applied); and
        {"converted": n, "config": ..., "processor": ..., "dropped_blocks": [...]}.
    """
    hf_state, config, processor = read_hf_vitmatte(src)
    settings = settings_from_hf(config, processor)
    depth = settings["model.backbone.depth"]
    state, unknown = from_hf_state_dict(hf_state, cls_token=cls_token)
    if unknown:
        raise ValueError(
            f"{src}: {len(unknown)} weights are not ViTMatte's (e.g. {unknown[:5]}); a "
            f"VitMatteForImageMatting with a VitDet backbone was expected"
        )
    total = int(config.get("backbone_config", {}).get("num_hidden_layers", depth))
    state = _drop_blocks(state, depth)
    state = set_input_channels(state, in_chans)
    if in_chans is not None:
        settings.update(
            {
                "model.backbone.in_chans": in_chans,
                "model.decoder.image_channels": in_chans,
                "model.trimap_input": in_chans == 4,
            }
        )
    report = {
        "converted": len(state),
        "config": config,
        "processor": processor,
        "dropped_blocks": list(range(depth, total)),
    }
    return state, settings, report


def convert_original_vitmatte(path: str, in_chans: Optional[int] = None):
    """A checkpoint of the original ViTMatte release (hustvl/ViTMatte: detectron2 layout, a
    ``{"model": ...}`` training checkpoint or a bare state dict) -> our full-model state dict.

    Its own model normalises with ImageNet statistics (ours, in 0-255 units) and pads to a
    multiple of 32, as our configs do; its trimap channel at inference is the 8-bit trimap / 255
    (unknown 128/255), ours {0, 0.5, 1}.

    Returns:
        (state, report) with report {"converted": n, "dropped": [keys outside the model]}.
    """
    data = _load_torch(path)
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or _PATCH_KEY not in {k.removeprefix("module.") for k in data}:
        raise ValueError(
            f"{path}: no '{_PATCH_KEY}'; not a ViTMatte checkpoint in the original layout"
        )
    data = {k.removeprefix("module."): v for k, v in data.items() if torch.is_tensor(v)}
    state, unknown = rename_state_dict(data, "original", "ours")
    dropped = [k for k in unknown if k.startswith("criterion.")]
    unknown = [k for k in unknown if not k.startswith("criterion.")]
    if unknown:
        raise ValueError(f"{path}: weights our ViTMatte cannot hold: {unknown[:10]}")
    state = set_input_channels(state, in_chans)
    return state, {"converted": len(state), "dropped": dropped}
