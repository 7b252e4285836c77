"""TorchScript and ONNX export of the inference forward, with a dynamic image size.

The exported function is :class:`MattingExportModule`: (B, 3, H, W) images, uint8 or float in
0-255, in the model's ``input_format`` channel order (RGB for the shipped configs) -> alpha
(B, 1, H, W) float32 in [0, 1]. It is ``ViTMatte.predict_alpha`` behind a padding step that
keeps the graph free of size-dependent Python branches:

- ``predict_alpha`` pads to ``size_divisibility`` under ``if pad_h or pad_w``; a trace would
  freeze that branch and ``torch.export`` would guard on it. The wrapper pads first, to the next
  multiple, with the mean colour (exactly zero after normalisation, which is what
  ``predict_alpha`` pads with), so the inner padding is empty for every size and the output is
  identical;
- detectron2's ViT helpers branch on the token grid; they are replaced by size-generic
  equivalents during the export only (:mod:`alphafree_d2.inference.vit_shapes`).

The batch size, height and width are dynamic (ONNX input "image", output "alpha"). The exported
graph is the plain model, ViT included, at the input size: the high-resolution policy of
:class:`~alphafree_d2.inference.predictor.MattingPredictor` is not part of it, so its global
attention grows with the square of the pixels (about 1.2 GB at 1 MP for ViT-S, 70 GB at 4K);
callers must downscale large images themselves (see :mod:`alphafree_d2.inference.highres`).

Notes: the trace logs one expected TracerWarning, for ``predict_alpha``'s padding branch (always
"no padding" behind the wrapper); exports are checked at sizes other than the export size by
:func:`compare_torchscript` / :func:`compare_onnx`. ``torch.jit.trace``/``torch.jit.save`` may
print FutureWarnings (TorchScript is deprecated but still supported; README "Engineering notes").
A trace records the device it ran on: export on the device the TorchScript file will run on.
"""

import logging
import os
import warnings
from typing import Dict, Iterable, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .vit_shapes import size_generic_vit

__all__ = [
    "MattingExportModule",
    "random_images",
    "export_torchscript",
    "export_onnx",
    "compare_torchscript",
    "compare_onnx",
]

logger = logging.getLogger(__name__)

ONNX_EXPORTERS = ("dynamo", "torchscript")


class MattingExportModule(nn.Module):
    """Export-friendly inference forward of a :class:`ViTMatte` (see the module docstring)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float 0-255 -> alpha (B, 1, H, W) float32 in [0, 1]."""
        x = images.float()
        b, h, w = x.shape[0], x.shape[2], x.shape[3]
        d = self.model.size_divisibility
        hp, wp = (h + d - 1) // d * d, (w + d - 1) // d * d
        mean = self.model.pixel_mean.view(1, 3, 1, 1)
        x = torch.cat([x, mean.expand(b, 3, hp - h, w)], dim=2)
        x = torch.cat([x, mean.expand(b, 3, hp, wp - w)], dim=3)
        return self.model.predict_alpha(x)[:, :, :h, :w]


def random_images(shape: Tuple[int, int], dtype=torch.uint8, device="cpu", batch=1, seed=0):
    """Seeded random (batch, 3, H, W) images with integer values 0-255, as ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (batch, 3, *shape), generator=g, dtype=torch.uint8)
    return x.to(device=device, dtype=dtype)


def export_torchscript(model, path: str, example: torch.Tensor):
    """Trace :class:`MattingExportModule` of ``model`` (eval mode) on ``example`` and save it.

    Tracer warnings about Python booleans from ``predict_alpha``'s padding branch are expected
    (that branch is always "no padding" behind the wrapper); they are logged, not hidden.
    Generalisation to other sizes is what :func:`compare_torchscript` checks.

    Returns:
        the traced module.
    """
    wrapper = MattingExportModule(model).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        with torch.no_grad(), size_generic_vit(model):
            traced = torch.jit.trace(wrapper, example)
    seen = set()
    for w in caught:
        if not issubclass(w.category, torch.jit.TracerWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif (w.filename, w.lineno) not in seen:  # the trace is checked by a second run
            seen.add((w.filename, w.lineno))
            logger.info(f"expected tracer warning: {w.filename}:{w.lineno}: {w.message}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    traced.save(path)
    return traced


def export_onnx(
    model, path: str, example: torch.Tensor, opset: int = 18, exporter: str = "dynamo"
) -> None:
    """Export :class:`MattingExportModule` of ``model`` to ONNX with dynamic batch/height/width.

    Args:
        exporter: "dynamo" (``torch.onnx.export(dynamo=True)``, torch.export-based, torch's
            default exporter; much slower to export than the trace-based one, README
            "Engineering notes") or "torchscript" (the legacy trace-based exporter,
            ``dynamo=False``; deprecated).
    """
    if opset < 17:
        raise ValueError(f"ONNX opset must be >= 17 (LayerNormalization), got {opset}")
    if exporter not in ONNX_EXPORTERS:
        raise ValueError(f"exporter must be one of {ONNX_EXPORTERS}, got {exporter!r}")
    wrapper = MattingExportModule(model).eval()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    common = dict(input_names=["image"], output_names=["alpha"], opset_version=opset)
    # Protobuf files are limited to 2 GB: larger models keep their weights in a .data file.
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    with torch.no_grad(), size_generic_vit(model):
        if exporter == "dynamo":
            from torch.export import Dim

            torch.onnx.export(
                wrapper,
                (example,),
                path,
                dynamo=True,
                external_data=weight_bytes > 1.5 * 2**30,
                dynamic_shapes=({0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC},),
                **common,
            )
        else:
            axes = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(
                wrapper,
                (example,),
                path,
                dynamo=False,
                dynamic_axes={"image": axes, "alpha": axes},
                **common,
            )


def _reference(model, images):
    with torch.no_grad():
        return model.predict_alpha(images.float())


def compare_torchscript(
    model, traced, sizes: Iterable[Tuple[int, int]], dtype=torch.uint8, batch: int = 1
) -> Dict[str, float]:
    """Max |TorchScript - predict_alpha| per image size, on random images of ``dtype``.

    Returns:
        {"HxW": max abs difference}; a shape mismatch raises.
    """
    device = model.pixel_mean.device
    diffs = {}
    for i, size in enumerate(sizes):
        images = random_images(tuple(size), dtype, device, batch=batch, seed=i + 1)
        with torch.no_grad():
            out = traced(images)
        ref = _reference(model, images)
        if out.shape != ref.shape:
            raise RuntimeError(f"TorchScript output {tuple(out.shape)} != {tuple(ref.shape)}")
        diffs[f"{size[0]}x{size[1]}"] = float((out - ref).abs().max())
    return diffs


def compare_onnx(
    model, path: str, sizes: Sequence[Tuple[int, int]], dtype=torch.uint8, batch: int = 1
) -> Dict[str, float]:
    """Max |onnxruntime (CPU) - predict_alpha| per image size, on random images.

    Returns:
        {"HxW": max abs difference}; a shape mismatch raises.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    diffs = {}
    for i, size in enumerate(sizes):
        images = random_images(tuple(size), dtype, torch.device("cpu"), batch=batch, seed=i + 1)
        (out,) = session.run(["alpha"], {"image": images.numpy()})
        ref = _reference(model, images.to(model.pixel_mean.device)).cpu().numpy()
        if out.shape != ref.shape:
            raise RuntimeError(f"ONNX output {out.shape} != {ref.shape} for input {size}")
        diffs[f"{size[0]}x{size[1]}"] = float(np.abs(out - ref).max())
    return diffs
