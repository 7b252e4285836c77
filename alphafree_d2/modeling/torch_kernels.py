"""The torch backend of the DDC family: the paper's plain formulation (Listing 1: K*K-channel
unfold, ``torch.norm``, ``torch.topk``, gather), differentiated by autograd, on any device. The
reference the compiled backends (:mod:`.cpu_kernels`, :mod:`.triton_kernels`) are checked
against, and the fallback when they cannot be trusted.

Listing 1 holds every pixel's K*K window at once: at batch 16, 512 x 512, K = 11 its image unfold
alone is 16 * 3 * 121 * 512 * 512 * 4 bytes = 6.1 GB in float32, and its difference and norm as
much again. Here the work runs in bands of image rows whose temporaries stay under
:data:`CHUNK_BYTES` (one band, i.e. Listing 1 as written, when everything fits). Each band reads
its rows plus the K // 2 rows around them; the loss bands are recomputed one at a time in the
backward (``torch.utils.checkpoint``), so the autograd graph keeps no band's temporaries either.
Banded and whole results are the same selections, and the same values and gradients up to the
order of floating-point sums.
"""

import math

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

__all__ = ["AFFINITY_C", "CHUNK_BYTES", "select", "pair_loss", "affinity_loss"]

# Eq. 3: A(i, j) = 1 - ||I_i - I_j|| / C with C = sqrt(3), the largest RGB distance in [0, 1]^3.
# The one definition of C for every backend.
AFFINITY_C = math.sqrt(3.0)

# Bytes of temporaries one band of rows may take (an estimate: the unfolded windows and what is
# computed from them). Set it lower on a small GPU, higher to trade memory for fewer bands.
CHUNK_BYTES = 1 << 30


def _bands(height, bytes_per_row):
    """[(first row, end row)] covering ``height`` rows, each band within :data:`CHUNK_BYTES`."""
    rows = max(1, min(height, CHUNK_BYTES // max(1, bytes_per_row)))
    return [(r, min(height, r + rows)) for r in range(0, height, rows)]


def select(image, kernel_size, valid, index_dtype):
    """image (B, C, H, W) float32/64 -> (index, distance), see ``NeighbourSelection``: the K
    smallest of the K*K window distances by ``torch.topk`` (its choice among ties); ``valid``:
    out-of-image positions are never selected (inf distance) instead of being black pixels."""
    B, C, H, W = image.shape
    K, p = kernel_size, kernel_size // 2
    padded = F.pad(image, (p, p, p, p))  # Listing 1's zero padding
    index = torch.empty(B, K, H, W, dtype=index_dtype, device=image.device)
    distance = torch.empty(B, K, H, W, dtype=image.dtype, device=image.device)
    # per row: the unfolded windows, their difference to the centre, the norms, topk's copy
    for r0, r1 in _bands(H, B * W * K * K * (2 * C + 2) * image.element_size()):
        h = r1 - r0
        unfolded = F.unfold(padded[:, :, r0 : r1 + 2 * p], K).view(B, C, K * K, h, W)
        d = torch.norm(image[:, :, None, r0:r1] - unfolded, 2, dim=1)
        del unfolded
        if valid:
            d = d.masked_fill(~_inside(K, r0, r1, H, W, image.device), math.inf)
        d, i = torch.topk(d, K, dim=1, largest=False)
        index[:, :, r0:r1] = i
        distance[:, :, r0:r1] = d
    return index, distance


def _inside(K, r0, r1, H, W, device):
    """(K*K, r1 - r0, W) bool: whether window offset o of pixel (y, x) lies inside the image."""
    offset = torch.arange(K * K, device=device)
    y = torch.arange(r0, r1, device=device)[None, :, None] + (offset // K - K // 2)[:, None, None]
    x = torch.arange(W, device=device)[None, None, :] + (offset % K - K // 2)[:, None, None]
    return (y >= 0) & (y < H) & (x >= 0) & (x < W)


def pair_loss(alpha, index, distance, mask, directional, normaliser):
    """Sum over the selected pairs (finite distance, centre in ``mask`` (B, H, W) bool if given)
    of |d - (a_i - a_j)| (``directional``, Eq. 9) or |d - |a_i - a_j|| (Eq. 8), divided by
    ``normaliser``; alpha (B, 1, H, W), index/distance (B, K, H, W). Differentiable in alpha."""

    def band(rows, r0, r1):
        neighbour, centre = _neighbour_alpha(rows, index[:, :, r0:r1])
        diff = centre - neighbour
        d = distance[:, :, r0:r1]
        terms = (d - (diff if directional else diff.abs())).abs()
        keep = torch.isfinite(d)
        if mask is not None:
            keep = keep & mask[:, None, r0:r1]
        return torch.where(keep, terms, torch.zeros_like(terms)).sum()

    return _banded(band, alpha, index.shape[1]) / normaliser


def affinity_loss(alpha, index, distance, normaliser):
    """Sum over pixels of |(A alpha)_i - alpha_i| (Eq. 2-4, A = max(0, 1 - d / C) on the
    selected neighbours, rows normalised), divided by ``normaliser``. Differentiable in alpha."""

    def band(rows, r0, r1):
        neighbour, centre = _neighbour_alpha(rows, index[:, :, r0:r1])
        affinity = (1 - distance[:, :, r0:r1] / AFFINITY_C).clamp(min=0)
        smoothed = (affinity * neighbour).sum(1, keepdim=True) / affinity.sum(1, keepdim=True)
        return (smoothed - centre).abs().sum()

    return _banded(band, alpha, index.shape[1]) / normaliser


def _neighbour_alpha(rows, index):
    """rows: (B, 1, h + K - 1, W + K - 1) zero-padded alpha around a band of h rows; index
    (B, K, h, W) -> ((B, K, h, W) alpha of the selected neighbours, (B, 1, h, W) the centres)."""
    B, K, h, W = index.shape
    unfolded = F.unfold(rows, K).view(B, K * K, h, W)
    centre = rows[:, :, K // 2 : K // 2 + h, K // 2 : K // 2 + W]
    return torch.gather(unfolded, 1, index.long()), centre


def _banded(band, alpha, K):
    """sum of ``band(padded rows, r0, r1)`` over the bands of alpha's rows; several bands are
    each recomputed in the backward, so only one band's temporaries exist at a time."""
    B, _, H, W = alpha.shape
    p = K // 2
    padded = F.pad(alpha, (p, p, p, p))
    # per row: the unfolded alpha and its gradient (K*K), the K-channel terms and their grads
    bands = _bands(H, B * W * (2 * K * K + 8 * K) * alpha.element_size())
    if len(bands) == 1:
        return band(padded, 0, H)
    total = 0
    for r0, r1 in bands:
        rows = padded[:, :, r0 : r1 + 2 * p]
        total = total + checkpoint(
            band, rows, r0, r1, use_reentrant=False, preserve_rng_state=False
        )
    return total
