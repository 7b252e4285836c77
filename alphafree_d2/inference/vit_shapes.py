"""Size-generic versions of detectron2's ViT helpers, for tracing and export.

detectron2's ViT (``detectron2/modeling/backbone/vit.py`` with ``backbone/utils.py``) is correct
for every image size in eager mode, but decides some things in Python from the size, which
``torch.jit.trace`` freezes into the graph and ``torch.export`` turns into guards or cannot
translate to ONNX:

- ``window_partition``: ``if pad_h > 0 or pad_w > 0: F.pad(...)`` - a trace at a size that
  needs no window padding has no padding op, so other sizes fail in ``view``;
- ``window_unpartition``: ``if Hp > H or Wp > W`` around the crop back;
- ``get_rel_pos``: ``int(2 * max(q, k) - 1)`` and ``if rel_pos.shape[0] != max_rel_dist`` freeze
  the resized table length of the global-attention blocks (its size follows the token grid),
  and the coordinate scale ``max(k / q, 1.0)`` is a symbolic float that the ONNX exporter
  cannot translate (``aten.mul.Scalar`` with a SymFloat);
- ``get_abs_pos``: ``if size != h or size != w`` around the position-embedding resize.

The replacements below do the same arithmetic without branching on sizes: padding by zero, the
crop to the same size, the linear resize of the relative-position table to its own length and
the bicubic resize of the position embedding to its own grid are all exact identities, so the
results equal detectron2's for every size (tests/inference check this). ``get_rel_pos`` is
specialised to self-attention (query grid == key grid), which is how detectron2's ViT
``Attention`` calls it.

:func:`size_generic_vit` swaps them into ``detectron2.modeling.backbone.vit`` only for the
duration of a trace/export; detectron2's files are not modified. Entering it first checks that
detectron2's ViT still defines and calls each replaced function under the same name and
signature, and raises ImportError otherwise (a silent no-op swap would export size-specific
graphs). The check runs at the call, not at import: these are detectron2's private names, and
a detectron2 that renamed one must break exporting only, never ``import alphafree_d2``.
"""

import contextlib
import inspect
import math

import torch
from torch.nn import functional as F

from detectron2.modeling.backbone import vit as _vit

__all__ = ["size_generic_vit"]

# Replaced name -> the detectron2 ViT methods ("Class.method") that call it by that module-global
# name. Names, not objects: they are looked up when checked, so a renamed class is a problem the
# check reports, not an error at import.
_CALLERS = {
    "window_partition": ("Block.forward",),
    "window_unpartition": ("Block.forward",),
    "add_decomposed_rel_pos": ("Attention.forward",),
    "get_abs_pos": ("ViT.forward",),
}


def window_partition(x, window_size):
    """(B, H, W, C) -> (B * num_windows, window_size, window_size, C), (Hp, Wp)."""
    B, H, W, C = x.shape
    pad_h = (window_size - H % window_size) % window_size
    pad_w = (window_size - W % window_size) % window_size
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window_size, window_size, Wp // window_size, window_size, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)
    return windows, (Hp, Wp)


def window_unpartition(windows, window_size, pad_hw, hw):
    """Inverse of :func:`window_partition`: (B * num_windows, ws, ws, C) -> (B, H, W, C)."""
    Hp, Wp = pad_hw
    H, W = hw
    B = windows.shape[0] // (Hp * Wp // window_size // window_size)
    x = windows.view(B, Hp // window_size, Wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, Hp, Wp, -1)
    return x[:, :H, :W, :].contiguous()


def _self_rel_pos(size, rel_pos):
    """(L, C) table -> (size, size, C) embeddings of the offsets q - k for a grid side ``size``."""
    table = F.interpolate(rel_pos.t()[None], size=2 * size - 1, mode="linear")[0].t()
    coords = torch.arange(size, device=rel_pos.device)
    return table[coords[:, None] - coords[None, :] + (size - 1)]


def add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, q_size, k_size):
    """detectron2's decomposed relative positions (MViTv2) for self-attention (q_size == k_size).

    attn (B, N, N), q (B, N, C), rel_pos_h (Lh, C), rel_pos_w (Lw, C), N = q_h * q_w.
    """
    q_h, q_w = q_size
    Rh = _self_rel_pos(q_h, rel_pos_h)
    Rw = _self_rel_pos(q_w, rel_pos_w)
    B, _, dim = q.shape
    r_q = q.reshape(B, q_h, q_w, dim)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)
    attn = attn.view(B, q_h, q_w, q_h, q_w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return attn.view(B, q_h * q_w, q_h * q_w)


def _make_get_abs_pos(grid):
    def get_abs_pos(abs_pos, has_cls_token, hw):
        """(1, [1 +] grid^2, C) position embedding -> (1, h, w, C), bicubic resize."""
        if has_cls_token:
            abs_pos = abs_pos[:, 1:]
        embed = abs_pos.reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        embed = F.interpolate(embed, size=hw, mode="bicubic", align_corners=False)
        return embed.permute(0, 2, 3, 1)

    return get_abs_pos


def _check_detectron2_vit():
    """Raise ImportError unless every function :func:`size_generic_vit` replaces is defined in
    detectron2's vit module with our parameter names and called from it by that name."""
    ours = {
        "window_partition": window_partition,
        "window_unpartition": window_unpartition,
        "add_decomposed_rel_pos": add_decomposed_rel_pos,
        "get_abs_pos": _make_get_abs_pos(1),
    }
    problems = []
    for name, callers in _CALLERS.items():
        theirs = getattr(_vit, name, None)
        if not callable(theirs):
            problems.append(f"{name} is not defined")
            continue
        expected = list(inspect.signature(ours[name]).parameters)
        if list(inspect.signature(theirs).parameters) != expected:
            problems.append(f"{name}{inspect.signature(theirs)} no longer takes {expected}")
        for caller in callers:
            class_name, method = caller.split(".")
            code = getattr(getattr(getattr(_vit, class_name, None), method, None), "__code__", None)
            if code is None:
                problems.append(f"{caller} is not defined")
            elif name not in code.co_names:
                problems.append(f"{caller} no longer calls {name}")
    if problems:
        raise ImportError(
            f"alphafree_d2.inference.vit_shapes: detectron2's {_vit.__file__} has changed: "
            + "; ".join(problems)
            + ". Its size-generic replacements for export must be updated to this detectron2."
        )


@contextlib.contextmanager
def size_generic_vit(model):
    """Within this context, detectron2's ViT blocks of ``model`` compute without Python
    branches on the image size (see the module docstring). Eager results are unchanged.

    Raises:
        ImportError: detectron2's ViT no longer has what is replaced (checked on every entry).
    """
    _check_detectron2_vit()
    vit = _vit
    grids = set()
    for module in model.modules():
        if isinstance(module, vit.ViT) and module.pos_embed is not None:
            positions = module.pos_embed.shape[1] - int(module.pretrain_use_cls_token)
            grids.add(math.isqrt(positions))
    if len(grids) > 1:
        raise ValueError(f"ViT backbones with different position grids {grids} in one model")
    replacements = dict(
        window_partition=window_partition,
        window_unpartition=window_unpartition,
        add_decomposed_rel_pos=add_decomposed_rel_pos,
    )
    if grids:
        replacements["get_abs_pos"] = _make_get_abs_pos(grids.pop())
    saved = {name: getattr(vit, name) for name in replacements}
    try:
        for name, fn in replacements.items():
            setattr(vit, name, fn)
        yield
    finally:
        for name, fn in saved.items():
            setattr(vit, name, fn)
