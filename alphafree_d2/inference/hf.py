"""The Hugging Face transformers bridge: export our ViTMatte as a ``VitMatteForImageMatting``
folder, and measure that both sides compute the same alpha. Needs the ``hf`` extra
(transformers, safetensors); imported only by the tools that use it.

Numbers per image size (random images and trimaps, :mod:`.export`'s generators):

- ``tensor``: max |ours - transformers| on the same network input tensor (normalised image [+
  trimap], padded to a multiple of the model's ``size_divisibility``): our raw network output
  (``decode(encode(x), x)``, before known regions are copied) against
  ``VitMatteForImageMatting(x).alphas``; limit :data:`TENSOR_TOLERANCE`;
- ``band``: mean |ours - transformers| over the trimap's unknown pixels, each side through its
  own preprocessing from the same uint8 image and trimap: ours ``predict_alpha`` (trimap
  snapped to {0, 0.5, 1}, unknown 0.5), transformers' ``VitMatteImageProcessor`` (trimap / 255,
  unknown 128/255 = 0.50196) then the model, cropped to the image. Known pixels are left out:
  ours copies them from the trimap, transformers returns the raw prediction there. Both pad
  bottom / right with zeros after normalisation to a multiple of ``size_divisibility`` (the
  processor's ``size_divisor``). Reported, not limited: it measures how the model responds to
  the unknown value 0.50196 instead of 0.5, not the export;
- ``band_127.5`` (trimap-guided models): the same with the trimap's unknown pixels given to the
  processor as 127.5 (a float trimap), which it turns into exactly 0.5; only float rounding of
  the normalisation remains; limit :data:`BAND_TOLERANCE`;
- ``roundtrip``: max |ours - ours converted back from the exported folder| with
  ``predict_alpha``; it must be 0.

For an automatic (3-channel) model the processor still appends a trimap channel (it always
does), which the model does not take: its ``pixel_values[:, :3]`` are the model's input (any
trimap can be passed, it is cut off), and ``band`` is measured on the same unknown pixels.
"""

import copy
import os
import shutil
import tempfile
from typing import Dict, Iterable, Tuple

import torch

from detectron2.config import instantiate

from ..checkpoint.vitmatte import convert_hf_vitmatte
from ..checkpoint.vitmatte_config import (
    compare_settings,
    config_differences,
    format_overrides,
    vitmatte_fields,
)
from ..checkpoint.vitmatte_keys import to_hf_state_dict
from ..engine.config_checks import apply_overrides
from .export import random_images, random_trimaps, snap_trimaps

__all__ = [
    "TENSOR_TOLERANCE",
    "BAND_TOLERANCE",
    "HF_FILES",
    "build_hf_model",
    "export_hf",
    "load_hf",
    "compare_with_hf",
    "roundtrip_max_abs",
    "export_hf_checked",
    "check_conversion",
    "check_against_config",
    "report_lines",
]

TENSOR_TOLERANCE = 1e-5
BAND_TOLERANCE = 1e-3
HF_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def _quiet_transformers():
    # transformers draws progress bars while it writes and reads weights; the tools print
    # their own summary.
    try:
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise ImportError(f"the transformers bridge needs the hf extra: pip install -e .[hf] ({e})")

    hf_logging.disable_progress_bar()


def build_hf_model(model):
    """(``VitMatteForImageMatting`` with our weights, eval; ``VitMatteImageProcessor``) of our
    ViTMatte; raises :class:`~alphafree_d2.checkpoint.vitmatte_config.NotExportableError` for settings
    transformers cannot hold."""
    _quiet_transformers()
    from transformers import (
        VitDetConfig,
        VitMatteConfig,
        VitMatteForImageMatting,
        VitMatteImageProcessor,
    )

    fields = vitmatte_fields(model)
    config = VitMatteConfig(
        backbone_config=VitDetConfig(**fields["backbone"]), **fields["vitmatte"]
    )
    hf_model = VitMatteForImageMatting(config)
    state, unknown = to_hf_state_dict(
        model.state_dict(), cls_token=bool(model.backbone.pretrain_use_cls_token)
    )
    if unknown:
        raise ValueError(f"weights without a transformers name: {unknown[:10]}")
    hf_model.load_state_dict(state, strict=True)
    return hf_model.eval(), VitMatteImageProcessor(**fields["processor"])


def export_hf(model, output_dir: str):
    """Write ``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` of our
    ViTMatte into ``output_dir`` (created if needed) for ``from_pretrained``.

    Refuses (FileExistsError) when ``output_dir`` already holds one of those files: another
    model's folder is never overwritten. The files are written into a temporary folder inside
    ``output_dir`` and moved into place once all are complete.
    """
    existing = [n for n in HF_FILES if os.path.exists(os.path.join(output_dir, n))]
    if existing:
        raise FileExistsError(
            f"{output_dir} already holds {', '.join(existing)}: choose an empty --output folder "
            f"(or delete them)"
        )
    hf_model, processor = build_hf_model(model)
    os.makedirs(output_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".hf-export-", dir=output_dir)
    try:
        hf_model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        for name in HF_FILES:
            os.replace(os.path.join(tmp, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [os.path.join(output_dir, n) for n in HF_FILES]


def load_hf(folder: str):
    """``VitMatteForImageMatting`` and ``VitMatteImageProcessor`` from a local folder, without
    network (``local_files_only``); every weight must load (no missing or unexpected keys)."""
    _quiet_transformers()
    from transformers import VitMatteForImageMatting, VitMatteImageProcessor

    hf_model, info = VitMatteForImageMatting.from_pretrained(
        folder, local_files_only=True, output_loading_info=True
    )
    bad = {k: v for k, v in info.items() if k != "error_msgs" and v} | (
        {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {}
    )
    if bad:
        raise ValueError(f"{folder}: transformers did not load every weight: {bad}")
    processor = None
    if os.path.isfile(os.path.join(folder, "preprocessor_config.json")):
        processor = VitMatteImageProcessor.from_pretrained(folder, local_files_only=True)
    return hf_model.eval(), processor


def _inputs(size, seed, device):
    images = random_images(tuple(size), torch.uint8, device, seed=seed)
    trimaps = random_trimaps(tuple(size), torch.uint8, device, seed=seed)
    return images, trimaps


@torch.no_grad()
def _compare_one(model, hf_model, processor, size, seed):
    device = model.pixel_mean.device
    hf_chans = hf_model.config.backbone_config.num_channels
    images, trimaps = _inputs(size, seed, device)
    x = model._preprocess_batch(images.float(), snap_trimaps(trimaps))
    ours_raw = model.decode(model.encode(x), x)
    theirs_raw = hf_model(pixel_values=x[:, :hf_chans].to(hf_model.device)).alphas
    out = {"tensor": float((ours_raw - theirs_raw.to(device)).abs().max())}
    if processor is not None:
        h, w = size
        ours = model.predict_alpha(
            images.float(), snap_trimaps(trimaps) if model.trimap_input else None
        )
        band = trimaps == 128
        theirs = _processed_alpha(hf_model, processor, images, trimaps, hf_chans)
        out["band"] = float((ours - theirs.to(device)).abs()[band].mean())
        if model.trimap_input:
            # The unknown pixels given as 127.5: the processor's trimap channel is then 0.5.
            exact = torch.where(trimaps == 128, 127.5, trimaps.float())
            theirs = _processed_alpha(hf_model, processor, images, exact, hf_chans)
            out["band_127.5"] = float((ours - theirs.to(device)).abs()[band].mean())
    return out


def _processed_alpha(hf_model, processor, images, trimaps, chans):
    """transformers' alpha through its processor: (1, 3, H, W) uint8 images, (1, 1, H, W)
    trimaps 0-255 (uint8, or float) -> (1, 1, H, W), cropped from the padded output."""
    h, w = images.shape[-2:]
    pixel_values = processor(
        images=[images[0].permute(1, 2, 0).cpu().numpy()],
        trimaps=[trimaps[0, 0].cpu().numpy()],
        return_tensors="pt",
        input_data_format="channels_last",
    )["pixel_values"][:, :chans]
    return hf_model(pixel_values=pixel_values.to(hf_model.device)).alphas[:, :, :h, :w]


def compare_with_hf(model, hf_model, processor, sizes: Iterable[Tuple[int, int]]):
    """``{"HxW": {"tensor": max abs, "band": mean abs}}`` (see the module docstring); ``band``
    only when ``processor`` is given. ``hf_model`` may take 3 channels where ours takes 4 (a
    3-channel model converted with ``--in-chans 4``): it gets the image channels."""
    return {
        f"{h}x{w}": _compare_one(model, hf_model, processor, (h, w), seed=i + 1)
        for i, (h, w) in enumerate(sizes)
    }


@torch.no_grad()
def roundtrip_max_abs(model, folder: str, sizes: Iterable[Tuple[int, int]]) -> Dict[str, float]:
    """Max |predict_alpha| difference between ``model`` and a copy loaded (strictly) with the
    conversion of the exported ``folder`` (:func:`convert_hf_vitmatte`), per size."""
    state, _, _ = convert_hf_vitmatte(folder, cls_token=bool(model.backbone.pretrain_use_cls_token))
    back = copy.deepcopy(model)
    result = back.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("criterion.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"round trip: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    back.eval()
    diffs = {}
    for i, size in enumerate(sizes):
        images, trimaps = _inputs(size, i + 1, model.pixel_mean.device)
        t = snap_trimaps(trimaps) if model.trimap_input else None
        a = model.predict_alpha(images.float(), t)
        b = back.predict_alpha(images.float(), t)
        diffs[f"{size[0]}x{size[1]}"] = float((a - b).abs().max())
    return diffs


def _verdict(report):
    """``ok``: every limited number within its limit (``band`` is reported, not limited)."""
    worst = {}
    for numbers in report["numbers"].values():
        for key, value in numbers.items():
            worst[key] = max(worst.get(key, 0.0), value)
    report["worst"] = worst
    report["ok"] = all(v <= report["limits"].get(k, float("inf")) for k, v in worst.items())
    return report


def export_hf_checked(model, output_dir: str, sizes: Iterable[Tuple[int, int]]) -> dict:
    """:func:`export_hf`, then the exported folder loaded back by transformers (offline) and
    compared with ``model`` at ``sizes`` (``tensor``, ``band``, ``roundtrip``; module
    docstring).

    Returns:
        {"files": [...], "numbers": {"HxW": {...}}, "worst": {...}, "ok": bool, "limits": ...}.
    """
    sizes = [tuple(s) for s in sizes]
    files = export_hf(model, output_dir)
    hf_model, processor = load_hf(output_dir)
    numbers = compare_with_hf(model, hf_model, processor, sizes)
    for size, diff in roundtrip_max_abs(model, output_dir, sizes).items():
        numbers[size]["roundtrip"] = diff
    return _verdict(
        {
            "files": files,
            "numbers": numbers,
            "limits": _limits(),
            "trimap_input": model.trimap_input,
        }
    )


def _limits():
    return {"tensor": TENSOR_TOLERANCE, "band_127.5": BAND_TOLERANCE, "roundtrip": 0.0}


def check_conversion(model, state, settings=None, src=None, sizes=()) -> dict:
    """Check a converted full-model ``state`` against our ``model`` built from a config: every
    weight loads (strictly; ``criterion.*`` aside); with ``settings`` (from
    :func:`~alphafree_d2.checkpoint.vitmatte.convert_hf_vitmatte`) the model has them
    (:func:`compare_settings`, which also sees what shapes do not: window size, eps,
    normalisation); with ``src`` (the transformers folder or file) the numbers ``tensor`` and
    ``band`` against the transformers model at ``sizes``.

    Returns:
        {"mismatches": ["key=value (the config has ...)"], "load": [...], "numbers": ...,
        "ok": bool, ...}; no numbers when something does not match.
    """
    report = {"mismatches": [], "load": [], "numbers": {}, "limits": _limits()}
    for key, (wanted, have) in (compare_settings(model, settings) if settings else {}).items():
        have = format_overrides({key: have})[0].split("=", 1)[1]
        report["mismatches"].append(f"{format_overrides({key: wanted})[0]} (the config has {have})")
    own = model.state_dict()
    report["load"] = [
        f"shape: {k} is {tuple(v.shape)} in the checkpoint, {tuple(own[k].shape)} in the model"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if not report["load"]:
        result = model.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("criterion.")]
        report["load"] = [f"missing: {k}" for k in missing]
        report["load"] += [f"unexpected: {k}" for k in result.unexpected_keys]
    if report["mismatches"] or report["load"] or src is None:
        report["ok"] = not (report["mismatches"] or report["load"])
        return report
    folder = src if os.path.isdir(src) else os.path.dirname(os.path.abspath(src))
    hf_model, processor = load_hf(folder)
    report["numbers"] = compare_with_hf(model.eval(), hf_model, processor, sizes)
    return _verdict(report)


def check_against_config(cfg, state, settings=None, src=None, sizes=()) -> dict:
    """:func:`check_conversion` of a converted ``state`` with the model of the LazyConfig
    ``cfg`` after the overrides that give it ``settings`` (:func:`config_differences`; applied
    to ``cfg`` in place); ``report["overrides"]`` lists them (``key=value``), to be passed with
    that config wherever the checkpoint is used."""
    overrides = format_overrides(config_differences(cfg, settings)) if settings else []
    if overrides:
        apply_overrides(cfg, overrides)
    report = check_conversion(instantiate(cfg.model), state, settings, src, sizes)
    report["overrides"] = overrides
    return report


def report_lines(report) -> list:
    """Printable lines of a report of :func:`export_hf_checked` / :func:`check_conversion`."""
    names = {
        "tensor": "same input tensor: max |diff| {:.3g}",
        "band": "own preprocessing, unknown band: mean |diff| {:.3g}",
        "band_127.5": "{:.3g} with unknown given as 127.5",
        "roundtrip": "ours -> hf -> ours: max |diff| {:.3g}",
    }
    lines = []
    for size, numbers in report.get("numbers", {}).items():
        parts = [names[k].format(numbers[k]) for k in names if k in numbers]
        lines.append(f"{size:>10s}  " + "; ".join(parts))
    if not lines:
        return lines
    limits = report["limits"]
    trimap = any("band_127.5" in n for n in report["numbers"].values())
    lines.append(
        f"limits: same tensor <= {limits['tensor']:g}, round trip == 0"
        + (
            f", unknown band with unknown given as 127.5 <= {limits['band_127.5']:g}"
            if trimap
            else ""
        )
    )
    band = report.get("worst", {}).get("band", 0.0)
    if trimap:
        lines.append(
            f"the unknown band through each side's preprocessing differs by the trimap value: "
            f"ours 0.5, transformers' processor 128/255 = 0.50196 (a uint8 trimap), 0.5 with the "
            f"unknown pixels given as 127.5 (a float trimap); mean |diff| {band:.3g}"
            + (
                f" > {BAND_TOLERANCE:g}: this model's response to that value"
                if band > BAND_TOLERANCE
                else ""
            )
        )
    return lines
