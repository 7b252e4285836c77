"""TorchScript and ONNX export of the inference forward, with a dynamic image size.

The exported function is :class:`MattingExportModule`: (B, 3, H, W) images, uint8 or float in
0-255, in the model's ``input_format`` channel order (RGB for the shipped configs) -> alpha
(B, 1, H, W) float32 in [0, 1]. A trimap-guided model (``model.trimap_input``) takes a second
input, (B, 1, H, W) trimaps, uint8 or float 0-255 (0 background, 128 unknown, 255 foreground,
snapped in the graph with :mod:`alphafree_d2.data.io`'s thresholds). It is
``ViTMatte.predict_alpha`` behind the conversion of its inputs; the graph has no size-dependent
Python branches:

- ``predict_alpha`` pads to ``size_divisibility`` with
  :func:`~alphafree_d2.modeling.meta_arch.pad_bottom_right`, tensor operations without a branch
  on the size, so a trace at one size pads correctly at every other size;
- detectron2's ViT helpers branch on the token grid; they are replaced by size-generic
  equivalents during the export only (:mod:`alphafree_d2.inference.vit_shapes`).

The batch size, height and width are dynamic (ONNX inputs "image" [and "trimap"], output
"alpha"). The exported
graph is the plain model, ViT included, at the input size: the high-resolution policy of
:class:`~alphafree_d2.inference.predictor.MattingPredictor` is not part of it, so its global
attention grows with the square of the pixels (about 1.2 GB at 1 MP for ViT-S, 70 GB at 4K);
callers must downscale large images themselves (see :mod:`alphafree_d2.inference.highres`).

Notes: exports are checked at sizes other than the export size by :func:`compare_torchscript` /
:func:`compare_onnx`; the trace's TracerWarnings (Python values computed from sizes, e.g. the
trimap shape check) are logged at INFO level. ``torch.jit.trace``/``torch.jit.save`` may
print FutureWarnings (TorchScript is deprecated but still supported; docs/engineering.md).
A trace records the device it ran on: export on the device the TorchScript file will run on.
"""

import logging
import os
import warnings
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..data.io import TRIMAP_BG_BELOW, TRIMAP_FG_FROM
from .vit_shapes import size_generic_vit

__all__ = [
    "MattingExportModule",
    "random_images",
    "random_trimaps",
    "snap_trimaps",
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

    def forward(self, images: torch.Tensor, trimaps: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float 0-255 [, (B, 1, H, W) trimaps uint8 or float 0-255]
        -> alpha (B, 1, H, W) float32 in [0, 1]."""
        t = None
        if self.model.trimap_input:
            if trimaps is None:
                raise ValueError("this model is trimap-guided: export and call it with a trimap")
            t = snap_trimaps(trimaps)
        return self.model.predict_alpha(images.float(), t)


def snap_trimaps(trimaps: torch.Tensor) -> torch.Tensor:
    """Trimaps 0-255 (any dtype) -> float32 {0, 0.5, 1} with the thresholds of
    :func:`alphafree_d2.data.io.snap_trimap` (< 85 background, >= 170 foreground)."""
    t = trimaps.float()
    half = torch.full_like(t, 0.5)
    fg_or_unknown = torch.where(t >= TRIMAP_FG_FROM, torch.ones_like(t), half)
    return torch.where(t < TRIMAP_BG_BELOW, torch.zeros_like(t), fg_or_unknown)


def random_images(shape: Tuple[int, int], dtype=torch.uint8, device="cpu", batch=1, seed=0):
    """Seeded random (batch, 3, H, W) images with integer values 0-255, as ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (batch, 3, *shape), generator=g, dtype=torch.uint8)
    return x.to(device=device, dtype=dtype)


def random_trimaps(shape: Tuple[int, int], dtype=torch.uint8, device="cpu", batch=1, seed=0):
    """Seeded random (batch, 1, H, W) trimaps with values {0, 128, 255}, as ``dtype``: a
    background left part, a foreground right part and an unknown band between, with random
    unknown pixels sprinkled over all of it."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    columns = torch.arange(w).view(1, 1, 1, w).expand(batch, 1, h, w)
    t = torch.full((batch, 1, h, w), 128, dtype=torch.uint8)
    t[columns < w // 3] = 0
    t[columns >= 2 * w // 3] = 255
    t[torch.rand((batch, 1, h, w), generator=g) < 0.1] = 128
    return t.to(device=device, dtype=dtype)


def _examples(model, example, trimap_example):
    if not model.trimap_input:
        return (example,)
    if trimap_example is None:
        size = tuple(example.shape[-2:])
        trimap_example = random_trimaps(size, example.dtype, example.device, example.shape[0])
    return (example, trimap_example)


def export_torchscript(
    model, path: str, example: torch.Tensor, trimap_example: Optional[torch.Tensor] = None
):
    """Trace :class:`MattingExportModule` of ``model`` (eval mode) on ``example`` (and, for a
    trimap-guided model, ``trimap_example``; default :func:`random_trimaps`) and save it.

    Tracer warnings (Python values computed from sizes) are logged, not hidden; generalisation
    to other sizes is what :func:`compare_torchscript` checks.

    Returns:
        the traced module.
    """
    wrapper = MattingExportModule(model).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        with torch.no_grad(), size_generic_vit(model):
            traced = torch.jit.trace(wrapper, _examples(model, example, trimap_example))
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
    model,
    path: str,
    example: torch.Tensor,
    opset: int = 18,
    exporter: str = "dynamo",
    trimap_example: Optional[torch.Tensor] = None,
) -> None:
    """Export :class:`MattingExportModule` of ``model`` to ONNX with dynamic batch/height/width
    (inputs "image" and, for a trimap-guided model, "trimap"; output "alpha").

    Args:
        exporter: "dynamo" (``torch.onnx.export(dynamo=True)``, torch.export-based, torch's
            default exporter; much slower to export than the trace-based one,
            docs/engineering.md) or "torchscript" (the legacy trace-based exporter,
            ``dynamo=False``; deprecated).
    """
    if opset < 17:
        raise ValueError(f"ONNX opset must be >= 17 (LayerNormalization), got {opset}")
    if exporter not in ONNX_EXPORTERS:
        raise ValueError(f"exporter must be one of {ONNX_EXPORTERS}, got {exporter!r}")
    wrapper = MattingExportModule(model).eval()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    examples = _examples(model, example, trimap_example)
    names = ["image", "trimap"][: len(examples)]
    common = dict(input_names=names, output_names=["alpha"], opset_version=opset)
    # Protobuf files are limited to 2 GB: larger models keep their weights in a .data file.
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    with torch.no_grad(), size_generic_vit(model):
        if exporter == "dynamo":
            from torch.export import Dim

            # Image and trimap share one batch, height and width.
            batch, height, width = Dim("batch"), Dim("height"), Dim("width")
            dims = {0: batch, 2: height, 3: width}
            torch.onnx.export(
                wrapper,
                examples,
                path,
                dynamo=True,
                external_data=weight_bytes > 1.5 * 2**30,
                dynamic_shapes=tuple(dims for _ in examples),
                **common,
            )
        else:
            axes = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(
                wrapper,
                examples,
                path,
                dynamo=False,
                dynamic_axes={**{name: axes for name in names}, "alpha": axes},
                **common,
            )


def _inputs(model, size, dtype, device, batch, seed):
    """Random images [and trimaps] of ``size`` for a comparison."""
    images = random_images(tuple(size), dtype, device, batch=batch, seed=seed)
    if not model.trimap_input:
        return (images,)
    return images, random_trimaps(tuple(size), dtype, device, batch=batch, seed=seed)


def _reference(model, images, trimaps=None):
    with torch.no_grad():
        return model.predict_alpha(
            images.float(), None if trimaps is None else snap_trimaps(trimaps)
        )


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
        inputs = _inputs(model, size, dtype, device, batch, i + 1)
        with torch.no_grad():
            out = traced(*inputs)
        ref = _reference(model, *inputs)
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
        inputs = _inputs(model, size, dtype, torch.device("cpu"), batch, i + 1)
        feed = dict(zip(["image", "trimap"], (x.numpy() for x in inputs)))
        (out,) = session.run(["alpha"], feed)
        ref = _reference(model, *(x.to(model.pixel_mean.device) for x in inputs)).cpu().numpy()
        if out.shape != ref.shape:
            raise RuntimeError(f"ONNX output {out.shape} != {ref.shape} for input {size}")
        diffs[f"{size[0]}x{size[1]}"] = float(np.abs(out - ref).max())
    return diffs
