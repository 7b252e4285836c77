"""Fused Triton kernels of the DDC family: the selection, and forward and backward of the pair
losses (DDC, DC) and of the affinity loss. Same functions and tensors as :mod:`.cpu_kernels`.

Each program handles ``BLOCK`` pixels (flat over B, H, W). The selection computes a pixel's K*K
window distances in registers and takes the K smallest by K rounds of ``argmin``; nothing but the
K offsets and K distances per pixel reaches memory. The loss kernels read the offsets, distances
and alpha, write one partial sum per program (forward; summed in float64 afterwards) or add into
the gradient with float atomics (backward: a pixel gets gradient as centre and as neighbour; the
order of the additions, hence the last bits, varies from run to run; with
``torch.use_deterministic_algorithms(True)`` the losses run on the torch backend instead, see
:func:`.backends.loss_backend`). Math runs in the distance/alpha type (float32, or float64).

On CUDA tensors the kernels are compiled. On CPU tensors they run in Triton's interpreter, which is
slow and meant for tests on small images; Triton switches to it at import (its standard library is
decorated then), so the process must start with ``TRITON_INTERPRET=1`` (the test suite's conftest
sets it on machines without CUDA).
"""

import torch
import triton
import triton.language as tl

from .torch_kernels import AFFINITY_C

__all__ = ["select", "pair_forward", "pair_backward", "affinity_forward", "affinity_backward"]

_BLOCK = 128  # pixels per program of the loss kernels


def _launch(kernel, tensor, grid, *args, **meta):
    if not tensor.is_cuda and not INTERPRETED:
        raise RuntimeError(
            "backend='triton' on CPU tensors runs in Triton's interpreter, which Triton enables "
            "when it is imported: start Python with TRITON_INTERPRET=1 (or use backend='numba')"
        )
    kernel[grid](*args, **meta)


def _select_kernel(image, index, distance, total, H, W, C: tl.constexpr, K: tl.constexpr,
                   KK: tl.constexpr, VALID: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    pix = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = pix < total
    HW = H * W
    b, y, x = pix // HW, (pix % HW) // W, pix % W
    cand = tl.arange(0, KK)[None, :]
    yy = y[:, None] + cand // K - K // 2
    xx = x[:, None] + cand % K - K // 2
    inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W) & live[:, None]
    s = tl.zeros([BLOCK, KK], dtype=distance.dtype.element_ty)
    for c in tl.static_range(C):
        plane = (b * C + c) * HW
        centre = tl.load(image + plane + y * W + x, mask=live, other=0.0)
        neighbour = tl.load(image + plane[:, None] + yy * W + xx, mask=inside, other=0.0)
        diff = centre[:, None] - neighbour  # zero padding: black out of the image
        s += diff * diff
    d = tl.sqrt(s)
    unusable = cand >= K * K
    if VALID:
        unusable = unusable | ~inside
    d = tl.where(unusable, float("inf"), d)
    out = (b * K) * HW + y * W + x
    for k in tl.static_range(K):
        best = tl.min(d, axis=1)
        j = tl.argmin(d, axis=1)
        j = tl.where(best == float("inf"), K * K // 2, j)  # no usable neighbour left: i itself
        tl.store(index + out + k * HW, j.to(index.dtype.element_ty), mask=live)
        tl.store(distance + out + k * HW, best, mask=live)
        d = tl.where(cand == j[:, None], float("inf"), d)


@triton.jit
def _neighbour(index, distance, b, y, x, k, live, H, W, K: tl.constexpr):
    """Slot k of the selection of pixels (b, y, x): its distance d, the flat position j of its
    neighbour in a (B, 1, H, W) tensor, and whether that neighbour is inside the image."""
    slot = ((b * K + k) * H + y) * W + x
    o = tl.load(index + slot, mask=live, other=0).to(tl.int32)
    d = tl.load(distance + slot, mask=live, other=0.0)
    yy = y + o // K - K // 2
    xx = x + o % K - K // 2
    inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W) & live
    return d, (b * H + yy) * W + xx, inside


@triton.jit
def _sign(v):
    return tl.where(v > 0, 1.0, tl.where(v < 0, -1.0, 0.0)).to(v.dtype)


def _pair_kernel(alpha, index, distance, mask, out, total, H, W, K: tl.constexpr,
                 USE_MASK: tl.constexpr, DIRECTIONAL: tl.constexpr, BACKWARD: tl.constexpr,
                 BLOCK: tl.constexpr):  # fmt: skip
    """Forward: out[program] = sum of the terms of its pixels. Backward: out += d sum / d alpha."""
    pix = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = pix < total
    HW = H * W
    b, y, x = pix // HW, (pix % HW) // W, pix % W
    ai = tl.load(alpha + pix, mask=live, other=0.0)
    centre = live
    if USE_MASK:
        centre = centre & (tl.load(mask + pix, mask=live, other=0) != 0)
    acc = tl.zeros([BLOCK], dtype=alpha.dtype.element_ty)
    for k in tl.static_range(K):
        d, j, inside = _neighbour(index, distance, b, y, x, k, live, H, W, K)
        diff = ai - tl.load(alpha + j, mask=inside, other=0.0)
        if DIRECTIONAL:  # Eq. 9
            r = d - diff
        else:  # Eq. 8
            r = d - tl.abs(diff)
        use = centre & (d != float("inf"))
        if BACKWARD:
            slope = -_sign(r)
            if not DIRECTIONAL:
                slope = slope * _sign(diff)
            slope = tl.where(use, slope, 0.0)
            acc += slope
            tl.atomic_add(out + j, -slope, mask=inside & use)
        else:
            acc += tl.where(use, tl.abs(r), 0.0)
    if BACKWARD:
        tl.atomic_add(out + pix, acc, mask=live)
    else:
        tl.store(out + tl.program_id(0), tl.sum(acc, axis=0))


def _affinity_kernel(alpha, index, distance, out, total, H, W, K: tl.constexpr, C_AFF,
                     BACKWARD: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    pix = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = pix < total
    HW = H * W
    b, y, x = pix // HW, (pix % HW) // W, pix % W
    ai = tl.load(alpha + pix, mask=live, other=0.0)
    row = tl.zeros([BLOCK], dtype=alpha.dtype.element_ty)
    weighted = tl.zeros([BLOCK], dtype=alpha.dtype.element_ty)
    for k in tl.static_range(K):
        d, j, inside = _neighbour(index, distance, b, y, x, k, live, H, W, K)
        a = tl.maximum(1.0 - d / C_AFF, 0.0)
        row += a
        weighted += a * tl.load(alpha + j, mask=inside, other=0.0)
    row = tl.where(live, row, 1.0)
    error = weighted / row - ai  # (A alpha)_i - alpha_i
    if BACKWARD:
        g = tl.where(live, _sign(error), 0.0)
        tl.atomic_add(out + pix, -g, mask=live)
        for k in tl.static_range(K):
            d, j, inside = _neighbour(index, distance, b, y, x, k, live, H, W, K)
            a = tl.maximum(1.0 - d / C_AFF, 0.0)
            tl.atomic_add(out + j, g * a / row, mask=inside)
    else:
        tl.store(out + tl.program_id(0), tl.sum(tl.where(live, tl.abs(error), 0.0), axis=0))


_SELECT = triton.jit(_select_kernel)
_PAIR = triton.jit(_pair_kernel)
_AFFINITY = triton.jit(_affinity_kernel)
# Whether Triton was imported with TRITON_INTERPRET=1: the kernels then run on CPU tensors.
INTERPRETED = not isinstance(_SELECT, triton.runtime.JITFunction)


# ---------------------------------------------------------------------------------------------
# torch in, torch out
# ---------------------------------------------------------------------------------------------
def select(image, kernel_size, valid, index_dtype):
    """image (B, C, H, W) float32/64 contiguous -> (index, distance), see NeighbourSelection;
    ``index_dtype``: dtype of the returned window offsets (uint8 or int16)."""
    B, C, H, W = image.shape
    K = kernel_size
    index = torch.empty(B, K, H, W, dtype=index_dtype, device=image.device)
    distance = torch.empty(B, K, H, W, dtype=image.dtype, device=image.device)
    KK = triton.next_power_of_2(K * K)
    block = max(1, min(64, 4096 // KK))
    grid = (triton.cdiv(B * H * W, block),)
    _launch(_SELECT, image, grid, image, index, distance, B * H * W, H, W,
            C=C, K=K, KK=KK, VALID=bool(valid), BLOCK=block)  # fmt: skip
    return index, distance


def _pair(alpha, index, distance, mask, directional, backward):
    B, _, H, W = alpha.shape
    grid = (triton.cdiv(B * H * W, _BLOCK),)
    if backward:
        out = torch.zeros_like(alpha)
    else:
        out = torch.empty(grid[0], dtype=alpha.dtype, device=alpha.device)
    mask_arg = alpha if mask is None else mask.to(torch.uint8)
    _launch(_PAIR, alpha, grid, alpha, index, distance, mask_arg, out, B * H * W, H, W,
            K=index.shape[1], USE_MASK=mask is not None, DIRECTIONAL=bool(directional),
            BACKWARD=backward, BLOCK=_BLOCK)  # fmt: skip
    return out


def pair_forward(alpha, index, distance, mask, directional):
    """Sum over the selected pairs of the DDC/DC terms; a float64 scalar tensor."""
    return _pair(alpha, index, distance, mask, directional, False).sum(dtype=torch.float64)


def pair_backward(alpha, index, distance, mask, directional, scale):
    """Gradient of ``scale`` (a number or 0-dim tensor) * ``pair_forward(...)`` with respect to
    alpha (B, 1, H, W)."""
    return _pair(alpha, index, distance, mask, directional, True).mul_(scale)


def _affinity(alpha, index, distance, backward):
    B, _, H, W = alpha.shape
    grid = (triton.cdiv(B * H * W, _BLOCK),)
    if backward:
        out = torch.zeros_like(alpha)
    else:
        out = torch.empty(grid[0], dtype=alpha.dtype, device=alpha.device)
    _launch(_AFFINITY, alpha, grid, alpha, index, distance, out, B * H * W, H, W,
            K=index.shape[1], C_AFF=AFFINITY_C, BACKWARD=backward, BLOCK=_BLOCK)  # fmt: skip
    return out


def affinity_forward(alpha, index, distance):
    """Sum over pixels of |(A alpha)_i - alpha_i| (Eq. 2-4); a float64 scalar tensor."""
    return _affinity(alpha, index, distance, False).sum(dtype=torch.float64)


def affinity_backward(alpha, index, distance, scale):
    """Gradient of ``scale * affinity_forward(...)`` with respect to alpha."""
    return _affinity(alpha, index, distance, True).mul_(scale)
