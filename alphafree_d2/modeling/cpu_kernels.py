"""CPU kernels of the DDC family, compiled by numba (``parallel=True``, cached on disk).

One kernel per direction: the selection, the forward sum and the backward gradient of the pair
losses (DDC, DC) and of the affinity loss. Tensors in and out follow
:mod:`.neighbour_selection`; the kernels work on numpy views of contiguous CPU tensors and use
up to ``torch.get_num_threads()`` threads. Forward kernels write one partial sum per image row
(float64, summed afterwards: no shared accumulator); backward kernels scatter into the gradient
in stripes of K rows, even stripes then odd ones, so no two threads write the same pixel and the
result does not depend on the number of threads.
"""

import functools
import math

import numba
import numpy as np
import torch
from numba import njit, prange
from torch.nn import functional as F

from .torch_kernels import AFFINITY_C

__all__ = ["select", "pair_forward", "pair_backward", "affinity_forward", "affinity_backward"]

# Pixels per thread below which fewer threads are used: starting threads costs more than small
# images take.
_PIXELS_PER_THREAD = 16384


def _threads(tensor):
    most = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    pixels = tensor.shape[0] * tensor.shape[2] * tensor.shape[3]
    numba.set_num_threads(max(1, min(most, pixels // _PIXELS_PER_THREAD)))


# Pixels of one image row whose selections are built together (kept in the L1/L2 cache).
_CHUNK = 128


@njit(parallel=True, cache=True)
def _select(padded, K, order, index, distance):
    """padded: (B, C, H + K - 1, W + K - 1), zero padded ("zeros") or inf padded ("valid": an
    infinite distance is never selected; slots left at inf on tiny images keep offset 0).

    Per chunk of ``_CHUNK`` pixels of a row, vectorised over the pixels: the K kept distances,
    sorted, and their offsets; each window offset (in ``order``) computes its squared distances
    for the chunk and, unless none is below the chunk's current K-th, is inserted by one
    branch-free compare-exchange pass down the kept list (a strictly smaller candidate moves
    ahead, so among ties the earlier offset in ``order`` is kept)."""
    B, C = padded.shape[:2]
    H, W = index.shape[2:]
    p = K // 2
    for row in prange(B * H):
        b, y = row // H, row % H
        best = np.empty((K, _CHUNK), padded.dtype)
        kept = np.empty((K, _CHUNK), np.int32)
        value = np.empty(_CHUNK, padded.dtype)
        offset = np.empty(_CHUNK, np.int32)
        for x0 in range(0, W, _CHUNK):
            n = min(_CHUNK, W - x0)
            best[:] = np.inf
            kept[:] = 0
            for i in range(K * K):
                o = order[i]
                value[:] = 0
                for c in range(C):
                    centre = padded[b, c, y + p, p + x0 : p + x0 + n]
                    neighbour = padded[b, c, y + o // K, o % K + x0 : o % K + x0 + n]
                    for x in range(n):
                        diff = centre[x] - neighbour[x]
                        value[x] += diff * diff
                enters = False
                last = best[K - 1]
                for x in range(n):
                    offset[x] = o
                    enters |= value[x] < last[x]
                if not enters:
                    continue
                for k in range(min(i + 1, K)):  # the i-th candidate lands at most at slot i
                    best_k, kept_k = best[k], kept[k]
                    for x in range(n):
                        v, a, cv, ca = best_k[x], kept_k[x], value[x], offset[x]
                        smaller = cv < v
                        best_k[x] = cv if smaller else v
                        kept_k[x] = ca if smaller else a
                        value[x] = v if smaller else cv
                        offset[x] = a if smaller else ca
            for k in range(K):
                for x in range(n):
                    index[b, k, y, x0 + x] = kept[k, x]
                    distance[b, k, y, x0 + x] = math.sqrt(best[k, x])


@njit(inline="always")
def _neighbour(alpha, b, y, x, o, K, H, W):
    """Alpha of the neighbour at window offset o of (y, x), 0 outside the image, and its
    position (yy, xx, inside)."""
    p = K // 2
    yy = y + o // K - p
    xx = x + o % K - p
    inside = 0 <= yy < H and 0 <= xx < W
    return (alpha[b, 0, yy, xx] if inside else 0.0), yy, xx, inside


@njit(inline="always")
def _pair_slope(ai, aj, d, directional):
    """(term, d term / d a_i) of one pair; d term / d a_j is minus the slope."""
    diff = ai - aj
    if directional:  # Eq. 9: |d - (a_i - a_j)|
        r = d - diff
        return abs(r), -np.sign(r)
    r = d - abs(diff)  # Eq. 8: |d - |a_i - a_j||
    return abs(r), -np.sign(r) * np.sign(diff)


@njit(parallel=True, cache=True)
def _pair_forward(padded, index, distance, mask, use_mask, directional, steps, out):
    """padded: (B, H + K - 1, W + K - 1) zero-padded alpha; ``steps[o]``: the flat step from a
    pixel's window corner to its window offset o. One partial sum per image row."""
    B, K, H, W = index.shape
    p, Wp = K // 2, padded.shape[2]
    for row in prange(B * H):
        b, y = row // H, row % H
        flat = padded[b].ravel()
        s = 0.0
        for k in range(K):
            for x in range(W):
                d = distance[b, k, y, x]
                if d == np.inf or (use_mask and not mask[b, y, x]):
                    continue
                ai = flat[(y + p) * Wp + x + p]
                aj = flat[y * Wp + x + steps[index[b, k, y, x]]]
                s += _pair_slope(ai, aj, d, directional)[0]
        out[row] = s


@njit(parallel=True, cache=True)
def _pair_backward(padded, index, distance, mask, use_mask, directional, steps, scale, grad):
    """Like :func:`_pair_forward`; ``grad`` is padded like ``padded`` (its border is discarded)."""
    B, K, H, W = index.shape
    p, Wp = K // 2, padded.shape[2]
    stripes = (H + K - 1) // K  # K >= 2 * (K // 2) rows apart: same-parity stripes never meet
    for parity in range(2):
        count = (stripes - parity + 1) // 2
        for task in prange(B * count):
            b, stripe = task // count, 2 * (task % count) + parity
            flat, out = padded[b].ravel(), grad[b].ravel()
            for y in range(stripe * K, min(H, stripe * K + K)):
                for k in range(K):
                    for x in range(W):
                        d = distance[b, k, y, x]
                        if d == np.inf or (use_mask and not mask[b, y, x]):
                            continue
                        i = (y + p) * Wp + x + p
                        j = y * Wp + x + steps[index[b, k, y, x]]
                        g = scale * _pair_slope(flat[i], flat[j], d, directional)[1]
                        out[i] += g
                        out[j] -= g


@njit(inline="always")
def _affinity_row(alpha, index, distance, b, y, x, K, H, W):
    """(sum_j A_ij a_j / sum_j A_ij - a_i, sum_j A_ij) of pixel (y, x); A = max(0, 1 - d / C)."""
    total = 0.0
    weighted = 0.0
    for k in range(K):
        a = max(0.0, 1.0 - distance[b, k, y, x] / AFFINITY_C)
        total += a
        weighted += a * _neighbour(alpha, b, y, x, index[b, k, y, x], K, H, W)[0]
    return weighted / total - alpha[b, 0, y, x], total


@njit(parallel=True, cache=True)
def _affinity_forward(alpha, index, distance, out):
    B, _, H, W = alpha.shape
    K = index.shape[1]
    for row in prange(B * H):
        b, y = row // H, row % H
        s = 0.0
        for x in range(W):
            s += abs(_affinity_row(alpha, index, distance, b, y, x, K, H, W)[0])
        out[row] = s


@njit(parallel=True, cache=True)
def _affinity_backward(alpha, index, distance, scale, grad):
    B, _, H, W = alpha.shape
    K = index.shape[1]
    stripes = (H + K - 1) // K
    for parity in range(2):
        count = (stripes - parity + 1) // 2
        for task in prange(B * count):
            b, stripe = task // count, 2 * (task % count) + parity
            for y in range(stripe * K, min(H, stripe * K + K)):
                for x in range(W):
                    error, total = _affinity_row(alpha, index, distance, b, y, x, K, H, W)
                    g = scale * np.sign(error)
                    grad[b, 0, y, x] -= g
                    for k in range(K):
                        a = max(0.0, 1.0 - distance[b, k, y, x] / AFFINITY_C)
                        _, yy, xx, inside = _neighbour(alpha, b, y, x, index[b, k, y, x], K, H, W)
                        if inside:
                            grad[b, 0, yy, xx] += g * a / total


# ---------------------------------------------------------------------------------------------
# torch in, torch out
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _spatial_order(K):
    """Window offsets, nearest to the centre first: in photographs nearby pixels tend to be the
    most similar, so the kept K are good early and most later candidates fail the first test
    (a predictable branch). With "valid" padding, the centre comes first and is always kept."""
    dy, dx = np.divmod(np.arange(K * K), K)
    return np.argsort((dy - K // 2) ** 2 + (dx - K // 2) ** 2, kind="stable").astype(np.int32)


def select(image, kernel_size, valid, index_dtype):
    """image (B, C, H, W) float32/64 contiguous -> (index, distance), see NeighbourSelection;
    ``index_dtype``: dtype of the returned window offsets (uint8 or int16)."""
    B, _, H, W = image.shape
    p = kernel_size // 2
    padded = F.pad(image, (p, p, p, p), value=math.inf if valid else 0.0).contiguous()
    index = torch.empty(B, kernel_size, H, W, dtype=index_dtype)
    distance = torch.empty(B, kernel_size, H, W, dtype=image.dtype)
    _threads(image)
    _select(padded.numpy(), kernel_size, _spatial_order(kernel_size), index.numpy(),
            distance.numpy())  # fmt: skip
    return index, distance


def _mask(mask, alpha):
    if mask is None:
        return np.ones((1, 1, 1), np.bool_), False
    return mask.contiguous().numpy(), True


def _padded_alpha(alpha, K):
    """(B, H + K - 1, W + K - 1) zero-padded alpha and the flat window steps of its rows."""
    p = K // 2
    padded = F.pad(alpha[:, 0], (p, p, p, p)).contiguous()
    dy, dx = np.divmod(np.arange(K * K), K)
    return padded, (dy * padded.shape[2] + dx).astype(np.int64)


def pair_forward(alpha, index, distance, mask, directional):
    """Sum over the selected pairs (finite distance, centre in ``mask`` (B, H, W) bool if
    given) of the DDC (directional) or DC term; a float64 scalar tensor."""
    padded, steps = _padded_alpha(alpha, index.shape[1])
    out = np.empty(alpha.shape[0] * alpha.shape[2], np.float64)
    _threads(alpha)
    _pair_forward(padded.numpy(), index.numpy(), distance.numpy(), *_mask(mask, alpha),
                  directional, steps, out)  # fmt: skip
    return torch.tensor(out.sum(), dtype=torch.float64)


def pair_backward(alpha, index, distance, mask, directional, scale):
    """Gradient of ``scale * pair_forward(...)`` with respect to alpha (B, 1, H, W)."""
    K = index.shape[1]
    padded, steps = _padded_alpha(alpha, K)
    grad = torch.zeros_like(padded)
    _threads(alpha)
    _pair_backward(padded.numpy(), index.numpy(), distance.numpy(), *_mask(mask, alpha),
                   directional, steps, float(scale), grad.numpy())  # fmt: skip
    H, W = alpha.shape[2:]
    return grad[:, None, K // 2 : K // 2 + H, K // 2 : K // 2 + W].contiguous()


def affinity_forward(alpha, index, distance):
    """Sum over pixels of |(A alpha)_i - alpha_i| (Eq. 2-4); a float64 scalar tensor."""
    out = np.empty(alpha.shape[0] * alpha.shape[2], np.float64)
    _threads(alpha)
    _affinity_forward(alpha.numpy(), index.numpy(), distance.numpy(), out)
    return torch.tensor(out.sum(), dtype=torch.float64)


def affinity_backward(alpha, index, distance, scale):
    """Gradient of ``scale * affinity_forward(...)`` with respect to alpha."""
    grad = torch.zeros_like(alpha)
    _threads(alpha)
    _affinity_backward(alpha.numpy(), index.numpy(), distance.numpy(), float(scale), grad.numpy())
    return grad
