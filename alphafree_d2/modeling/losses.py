"""The paper's loss family for training matting models on trimaps only, and the loss head.

Paper: "Training Matting Models without Alpha Labels" (Sec. 3, Sec. 4.1, Appendix B and E).
Conventions shared by every function here:

- ``image``: (B, C, H, W) float, RGB in [0, 1], NOT normalised (C = 3 in the paper).
- ``alpha``: (B, 1, H, W) float in [0, 1] (the prediction; gradients flow to it only).
- ``trimap``: (B, 1, H, W) float with values exactly {0, 0.5, 1} (0.5 = unknown).
- Losses return a scalar tensor in ``alpha``'s floating type (float32 for half/bfloat16 inputs:
  under autocast every loss is computed in float32).

Neighbour selection (shared by DDC, DC and affinity): for each pixel i, the ``K`` pixels j of its
K x K window (i itself included) with the smallest Euclidean RGB distance ||I_i - I_j|| (Fig. 3).
With ``padding="zeros"`` (default) the window is zero padded, exactly like ``F.unfold(...,
padding=K // 2)`` in the paper's sample code (Listing 1): out-of-image neighbours are black pixels
with alpha 0. The selection reproduces ``torch.topk(dist, K, dim=1, largest=False)`` of the sample
code exactly, tie-breaking included (see :func:`select_neighbours`), so the default DDC value and
gradient are those of Listing 1. It is computed without autograd and stored compactly (uint8 window
offsets + the K selected distances); the alpha side of each loss is a custom autograd Function
that saves one int8 per pair (or per pixel) and recomputes neighbour positions in backward
instead of keeping K*K-channel tensors. Cost at B=2, 512x512, K=11 on a 2-core CPU: see
``benchmarks/ddc_loss.py`` (forward + backward about 25x faster than Listing 1 on noise images,
about 20x on 8-bit photographs, whose many exactly tied distances go to ``torch.topk``; about
30x less extra memory).

Threads: on the CPU the work runs as tasks on up to ``torch.get_num_threads()`` Python threads
(this one included) with torch single-threaded inside each (see :func:`_run_tasks`); results do
not depend on the number of threads.
"""

import functools
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "NeighbourSelection",
    "select_neighbours",
    "known_loss",
    "ddc_loss",
    "dc_loss",
    "affinity_loss",
    "mask_l1_loss",
    "mask_bce_loss",
    "alpha_l1_loss",
    "MattingCriterion",
    "PAPER_POLICIES",
]

logger = logging.getLogger(__name__)

PADDINGS = ("zeros", "valid")
REGIONS = ("whole", "unknown")
# Eq. 3: A(i, j) = 1 - ||I_i - I_j|| / C with C = sqrt(3), the largest RGB distance in [0, 1]^3.
AFFINITY_C = math.sqrt(3.0)

# Pixels per chunk of the CPU selection (one chunk per worker thread at a time): its two work
# buffers hold K*K values per pixel (2 x 121 x 8192 x 4 B = 8 MB for K = 11 in float32).
_CHUNK_PIXELS = 8192
# Pixels with tied distances per torch.topk call of the CPU selection; above this fraction of
# such pixels in the probe chunk, every pixel goes to torch.topk (see _select_cpu).
_TOPK_ROWS = 1024
_TIED_FRACTION_FOR_TOPK = 0.35
# Pixels per task of the losses' alpha side (its work buffers: 5 x 4 B per pixel).
_ALPHA_CHUNK = 65536
# Most threads the CPU path uses (see _run_tasks).
_MAX_WORKERS = 4


class NeighbourSelection(NamedTuple):
    """The ``kernel_size`` most similar neighbours of every pixel in its K x K window.

    Attributes:
        index: (B, K, H, W) uint8 (int16 when K*K > 256): window offset ``ky * K + kx`` of each
            selected neighbour, i.e. the neighbour of pixel (y, x) is (y + ky - K//2,
            x + kx - K//2); the same numbering as ``F.unfold``'s kernel positions. The order
            of the K entries of a pixel is unspecified (the losses are sums over them).
        distance: (B, K, H, W) float32 (float64 for float64 images): ||I_i - I_j||, bitwise
            the value the sample code computes. ``inf`` marks a slot without a usable neighbour
            (``padding="valid"`` when the image is smaller than the window needs).
        kernel_size: K.
        padding: "zeros" or "valid".
    """

    index: torch.Tensor
    distance: torch.Tensor
    kernel_size: int
    padding: str


# ---------------------------------------------------------------------------------------------
# Neighbour selection
# ---------------------------------------------------------------------------------------------
def select_neighbours(
    image: torch.Tensor, kernel_size: int = 11, padding: str = "zeros"
) -> NeighbourSelection:
    """Select, for every pixel, its ``kernel_size`` nearest pixels in colour within its window.

    Args:
        image: (B, C, H, W) float, RGB in [0, 1] (any finite values work). No gradient flows
            back to it: the selection and the distances are data, not functions of parameters.
        kernel_size: K, odd >= 1; the window is K x K and K neighbours are kept (the paper
            uses 11).
        padding: "zeros" (the sample code: the window is zero padded, out-of-image neighbours
            are black pixels with alpha 0) or "valid" (out-of-image positions are never
            selected). "valid" is the better choice near the borders: with zeros, a dark pixel
            near the border finds the black padding among its most similar "pixels" and the
            losses then tie its alpha to the padding's alpha 0 (DDC pulls it towards
            ||I_i||, affinity towards 0), a bias that depends on the colour and only exists
            within K//2 pixels of the border (and of crop padding). "valid" only compares real
            pixels; for images of at least (K//2 + 1) pixels per side every window still has
            at least K of them.

    Returns:
        :class:`NeighbourSelection`.

    Exactness (``padding="zeros"``): the selected set equals the set of indices returned by
    ``torch.topk(torch.norm(image[:, :, None] - unfold(image), 2, dim=1), K, dim=1,
    largest=False)`` of Listing 1, pixel by pixel, tie-breaking included, and the distances are
    bitwise equal (``padding="valid"``: the same with inf at out-of-image positions). On the
    CPU the distances are computed as the reduction inside ``torch.norm`` does
    (``sqrt((x0*x0 + x1*x1) + x2*x2)`` in the image's type, correctly rounded square root;
    checked against ``torch.norm`` at first use, with a fall back to the plain formulation if
    they ever differ). A pixel whose K-th smallest distance is unique (no other candidate
    within a few ulps of it) has a uniquely defined set, found with a vectorised selection
    network. Every other pixel (ties: flat colours, zero padding, 8-bit colours) goes to
    ``torch.topk`` itself with the same K*K distances in the same order, so it makes the same
    choice: the CPU kernel decides each row from comparisons within that row only
    (``std::nth_element``), which the tests check on tie-heavy images; a window of a single
    colour gets the cached choice of ``torch.topk`` among K*K equal values. When most pixels
    are tied (8-bit photographs, decided on a probe chunk), every pixel goes to
    ``torch.topk``. The order of the K entries of a pixel depends on the method, not on the
    number of threads. Off the CPU, the plain chunked formulation (``torch.norm`` +
    ``torch.topk`` over dim 1, as the sample code) is used: exact as long as those kernels
    decide each pixel independently of the tensor's size (not verified here).
    """
    _check_kernel_padding(kernel_size, padding)
    if image.dim() != 4 or not image.is_floating_point() or image.numel() == 0:
        raise ValueError(
            f"select_neighbours: image must be a non-empty float (B, C, H, W) tensor, got "
            f"{tuple(image.shape)} {image.dtype}"
        )
    with torch.no_grad(), torch.autocast(image.device.type, enabled=False):
        image = image.detach()
        if image.dtype not in (torch.float32, torch.float64):
            image = image.float()  # distances and selection in float32 under autocast
        if image.device.type == "cpu" and _fast_distances_match_norm(image.dtype, image.shape[1]):
            index, distance = _select_cpu(image, kernel_size, padding)
        else:
            index, distance = _select_plain(image, kernel_size, padding)
    return NeighbourSelection(index, distance, kernel_size, padding)


def _check_kernel_padding(kernel_size, padding):
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd int >= 1, got {kernel_size!r}")
    if kernel_size * kernel_size > 32768:
        raise ValueError(f"kernel_size {kernel_size} is too large (K*K must fit in int16)")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def _index_dtype(kernel_size):
    return torch.uint8 if kernel_size * kernel_size <= 256 else torch.int16


def _padded(image, kernel_size, padding):
    p = kernel_size // 2
    # inf padding makes every out-of-image distance inf ("valid": never selected if avoidable).
    value = 0.0 if padding == "zeros" else math.inf
    return F.pad(image, (p, p, p, p), value=value).contiguous()


def _sqrt_rn(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded square root of a CPU tensor, as ``torch.norm``'s final step computes it.

    torch's own vectorised ``sqrt`` may be one ulp off the correctly rounded result; numpy's
    uses the processor's IEEE square root (and is faster).
    """
    return torch.from_numpy(np.sqrt(x.contiguous().numpy()))


def _accumulate_square(acc: torch.Tensor, diff: torch.Tensor, first: bool) -> None:
    """acc = diff * diff (first channel) or acc += diff * diff, one rounding per operation, in
    the order of ``torch.norm``'s reduction: ((d0*d0 + d1*d1) + d2*d2) + ... ``diff`` is
    overwritten (it may be ``acc`` itself for the first channel)."""
    diff.mul_(diff)
    if first:
        if diff is not acc:
            acc.copy_(diff)
    else:
        acc.add_(diff)


@functools.lru_cache(maxsize=None)
def _fast_distances_match_norm(dtype, channels) -> bool:
    """Whether :func:`_accumulate_square` + :func:`_sqrt_rn` reproduce ``torch.norm(.., dim=1)``
    bitwise on this build (checked once per dtype and channel count, on the CPU)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, channels, 9, 7, 5, generator=gen, dtype=dtype)
    x[1] = (x[1] * 255).round() / 255  # quantised colours
    diff = x - torch.rand(1, channels, 1, 7, 5, generator=gen, dtype=dtype)
    reference = torch.norm(diff, 2, dim=1)
    acc = torch.empty_like(reference)
    for c in range(channels):
        _accumulate_square(acc, diff[:, c].clone(), c == 0)
    if torch.equal(reference, _sqrt_rn(acc)):
        return True
    logger.warning(
        "alphafree_d2 losses: torch.norm of this torch build does not match the fast %s "
        "distances; using the plain (slower, memory-hungrier) selection",
        dtype,
    )
    return False


def _select_plain(image, kernel_size, padding):
    """The sample code's formulation (unfold, ``torch.norm``, ``torch.topk`` over dim 1), in
    chunks of rows so that the K*K-channel tensors stay small. Exact by construction."""
    B, C, H, W = image.shape
    K = kernel_size
    p = K // 2
    padded = _padded(image, K, padding)
    index = torch.empty(B, K, H, W, dtype=_index_dtype(K), device=image.device)
    distance = torch.empty(B, K, H, W, dtype=image.dtype, device=image.device)
    rows = max(1, min(H, _CHUNK_PIXELS // (W * C)))
    for b in range(B):
        for y0 in range(0, H, rows):
            y1 = min(H, y0 + rows)
            window = padded[b : b + 1, :, y0 : y1 + 2 * p]
            unfolded = F.unfold(window, K).view(1, C, K * K, y1 - y0, W)
            centre = image[b : b + 1, :, None, y0:y1]
            dist = torch.norm(centre - unfolded, 2, dim=1)
            values, indices = torch.topk(dist, K, dim=1, largest=False)
            index[b, :, y0:y1] = indices[0].to(index.dtype)
            distance[b, :, y0:y1] = values[0]
    return index, distance


def _select_cpu(image, kernel_size, padding):
    """Fast exact selection on the CPU (see :func:`select_neighbours`), in chunks of rows.

    Per chunk of n pixels: squared distances s (K*K, n) for the K*K window offsets by shifting
    the padded image (strided views, no unfold); integer keys = float bits of s with the low
    bits replaced by the offset (order-preserving since s >= 0, and all distinct); the K
    smallest keys by a sorting network (:func:`_k_smallest_keys`); then a check that no
    candidate outside the selection lies within the truncation and rounding margin of the
    K-th one. Pixels failing the check get ``torch.topk`` on their exact distances (or its
    known choice when all K*K distances are equal). Chunks run on :func:`_run_tasks`.
    """
    B, C, H, W = image.shape
    K = kernel_size
    job = _SelectionJob(
        image=image,
        kernel_size=K,
        pad_value=0.0 if padding == "zeros" else math.inf,
        index=torch.empty(B, K, H, W, dtype=_index_dtype(K)),
        distance=torch.empty(B, K, H, W, dtype=image.dtype),
        rows=max(1, min(H, _CHUNK_PIXELS // W)),
    )
    chunks = [(b, y0) for b in range(B) for y0 in range(0, H, job.rows)]
    # Work buffers come from the calling thread, so that their memory returns to its allocator
    # arena (and is reused by the losses' forward and backward) rather than to a helper's.
    buffers = [_selection_buffers(job) for _ in range(_num_workers(len(chunks)))]
    # A probe chunk (the middle rows of the first image) decides the method for the others:
    # when most of its pixels have tied distances (8-bit photographs), torch.topk on every
    # pixel is cheaper than the network followed by torch.topk on the tied ones. The result is
    # the same set either way, and the decision depends on the image only (not on threads).
    probe = chunks.pop(len(range(0, H, job.rows)) // 2)
    (tied_fraction,) = _run_tasks(
        [probe], lambda chunk, buf: _select_chunk(job, chunk, buf, False), buffers[:1]
    )
    topk_all = tied_fraction > _TIED_FRACTION_FOR_TOPK
    _run_tasks(chunks, lambda chunk, buf: _select_chunk(job, chunk, buf, topk_all), buffers)
    return job.index, job.distance


_OPENMP = "OpenMP" in torch.__config__.parallel_info()


def _num_workers(num_tasks, device=torch.device("cpu")):
    """Threads for :func:`_run_tasks`: torch's thread count on the CPU (at most
    _MAX_WORKERS: the tasks' Python code holds the GIL), one elsewhere."""
    if device.type != "cpu" or not _OPENMP:
        return 1
    return max(1, min(torch.get_num_threads(), _MAX_WORKERS, num_tasks))


def _run_tasks(tasks, run, states) -> list:
    """``run(task, state)`` for every task, on ``len(states)`` threads (this one included), each
    with its own state and torch running single-threaded in it; returns the results in order.

    The losses are hundreds of small torch operations; with intra-op parallelism each one ends
    with a barrier of the OpenMP threads, which stalls badly (10-100x) when other processes
    compete for the cores. Running whole tasks in parallel (torch releases the GIL inside its
    operations) avoids the barriers. Tasks write disjoint outputs, so results do not depend on
    the scheduling. Only used with torch's OpenMP backend (otherwise: one thread, torch as is).
    """
    results = [None] * len(tasks)
    if not _OPENMP:
        with torch.no_grad():
            for i, task in enumerate(tasks):
                results[i] = run(task, states[0] if states else None)
        return results
    queue = iter(enumerate(tasks))
    lock = threading.Lock()

    def work(state):
        torch.set_num_threads(1)  # per thread with OpenMP
        with torch.no_grad():  # grad mode is per thread
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                results[item[0]] = run(item[1], state)

    threads = torch.get_num_threads()
    helpers = [_helper_pool(len(states) - 1).submit(work, state) for state in states[1:]]
    try:  # this thread works too (alone with one state)
        work(states[0])
    finally:
        torch.set_num_threads(threads)
        wait(helpers)
    for future in helpers:
        future.result()  # re-raises a helper's exception
    return results


# Helper threads live as long as the process: a new thread per call would get a new allocator
# arena each time and the process would keep growing.
_POOL: Optional[ThreadPoolExecutor] = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _helper_pool(size: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < size:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(size, thread_name_prefix="alphafree_d2_losses")
            _POOL_SIZE = size
        return _POOL


def _forget_pool_after_fork():
    global _POOL, _POOL_SIZE, _POOL_LOCK
    _POOL, _POOL_SIZE, _POOL_LOCK = None, 0, threading.Lock()  # its threads are not in the child


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _selection_buffers(job):
    """One worker's buffers for n pixels: squared distances and scratch (2, K*K*n), comparison
    flags (K*K*n,)."""
    size = job.kernel_size**2 * job.rows * job.image.shape[3]
    return torch.empty(2, size, dtype=job.image.dtype), torch.empty(size, dtype=torch.bool)


class _SelectionJob(NamedTuple):
    image: torch.Tensor
    kernel_size: int
    pad_value: float  # 0 ("zeros") or inf ("valid": out-of-image distances are inf)
    index: torch.Tensor  # outputs, (B, K, H, W)
    distance: torch.Tensor
    rows: int  # image rows per chunk


def _select_chunk(job: _SelectionJob, chunk, buffers, topk_all: bool) -> float:
    """Select for the rows y0 .. y0 + job.rows of image b, ``chunk`` = (b, y0), with the
    network (then torch.topk for tied pixels) or with torch.topk for all pixels. Returns the
    fraction of tied pixels (network only)."""
    with torch.no_grad():
        image, K = job.image, job.kernel_size
        _, C, H, W = image.shape
        KK, p = K * K, K // 2
        Wp = W + 2 * p
        key_dtype = torch.int32 if image.dtype == torch.float32 else torch.int64
        low_mask = (1 << (KK - 1).bit_length()) - 1
        offsets = torch.arange(KK, dtype=key_dtype).view(KK, 1)
        finfo = torch.finfo(image.dtype)
        # Any candidate that could share the K-th distance after the key truncation and the
        # square root is below (bucket top) * (1 + 8 eps) + tiny.
        margin = 1.0 + 8.0 * finfo.eps
        count_dtype = torch.uint8 if KK <= 255 else torch.int16  # counts of up to K*K flags
        buf, flags = buffers
        b, y0 = chunk
        r = min(job.rows, H - y0)
        n = r * W
        # rows y0 - p .. y0 + r + p of the padded image: (C, r + 2p, W + 2p)
        top, bottom = max(0, y0 - p), min(H, y0 + r + p)
        padded = F.pad(
            image[b, :, top:bottom],
            (p, p, p - (y0 - top), p - (bottom - y0 - r)),
            value=job.pad_value,
        )
        sq = buf[0, : KK * n].view(K, K, r, W)
        for c in range(C):
            plane = padded[c]
            # window[ky, kx, y, x] = plane[y + ky, x + kx]: the neighbour at offset (ky, kx)
            # of image pixel (y0 + y, x).
            window = plane.as_strided((K, K, r, W), (Wp, 1, Wp, 1), plane.storage_offset())
            centre = plane[p : p + r, p : p + W]
            diff = sq if c == 0 else buf[1, : KK * n].view(K, K, r, W)
            torch.sub(centre, window, out=diff)  # centre - neighbour, as the sample code
            _accumulate_square(sq, diff, c == 0)
        sq = sq.view(KK, n)

        if topk_all:
            rows = buf[1, : KK * n].view(n, KK)
            rows.copy_(sq.t())
            np.sqrt(rows.numpy(), out=rows.numpy())  # _sqrt_rn in place
            # The bits of non-negative floats compare like the floats: same choices as
            # torch.topk on the floats (only the comparisons matter), a bit faster.
            keys = rows.view(key_dtype)
            flat = torch.eq(keys.amax(1), keys.amin(1))  # windows of one colour
            if bool(flat.any()):
                values = rows[:, :K].clone()  # all equal on flat rows
                indices = _topk_choice_among_equals(K, image.dtype).expand(n, K).clone()
                others = (~flat).nonzero()[:, 0]
                v, i = torch.topk(keys.index_select(0, others), K, dim=1, largest=False)
                values.index_copy_(0, others, v.view(image.dtype))
                indices.index_copy_(0, others, i)
            else:
                values, indices = torch.topk(keys, K, dim=1, largest=False)
                values = values.view(image.dtype)
            job.index[b, :, y0 : y0 + r] = indices.t().reshape(K, r, W).to(job.index.dtype)
            job.distance[b, :, y0 : y0 + r] = values.t().reshape(K, r, W)
            return 1.0

        # keys: monotone in sq (sq >= +0, so its bits order like integers), unique per pixel.
        keys = buf[1, : KK * n].view(key_dtype).view(KK, n)
        torch.bitwise_and(sq.view(key_dtype), ~low_mask, out=keys)
        keys.bitwise_or_(offsets)
        smallest = _k_smallest_keys(keys.view(K, K, n), K)  # (K, n)
        sel = torch.bitwise_and(smallest, low_mask).long()
        flat_index = sel * n + torch.arange(n)
        sel_sq = sq.view(-1).index_select(0, flat_index.view(-1)).view(K, n)
        top = torch.bitwise_or(smallest.amax(0), low_mask).view(image.dtype)
        threshold = torch.nan_to_num(top, nan=math.inf) * margin + finfo.tiny
        below = torch.le(sq, threshold, out=flags[: KK * n].view(KK, n))
        counts = below.view(torch.uint8).sum(0, dtype=count_dtype)
        unique = counts == K

        dist = _sqrt_rn(sel_sq)
        tied_fraction = 0.0
        if not bool(unique.all()):
            # Ties. A window of one colour (all K*K distances equal) gets torch.topk's
            # fixed choice for equal values; the others torch.topk on their distances.
            maybe_flat = (counts == KK).nonzero()[:, 0]  # all candidates <= threshold
            rows = sq.index_select(1, maybe_flat)
            flat = maybe_flat[torch.eq(rows.amax(0), rows.amin(0))]
            if flat.numel():
                choice = _topk_choice_among_equals(K, image.dtype).view(K, 1)
                sel.index_copy_(1, flat, choice.expand(K, flat.numel()))
                dist.index_copy_(1, flat, _sqrt_rn(sq[0, flat]).expand(K, -1))
                unique[flat] = True
            ambiguous = (~unique).nonzero()[:, 0]
            tied_fraction = (ambiguous.numel() + flat.numel()) / n
            for start in range(0, ambiguous.numel(), _TOPK_ROWS):
                cols = ambiguous[start : start + _TOPK_ROWS]
                rows = _sqrt_rn(sq.index_select(1, cols).t())  # (m, K*K), unfold order
                values, indices = torch.topk(rows.view(key_dtype), K, dim=1, largest=False)
                dist.index_copy_(1, cols, values.view(image.dtype).t())
                sel.index_copy_(1, cols, indices.t())
        job.index[b, :, y0 : y0 + r] = sel.view(K, r, W).to(job.index.dtype)
        job.distance[b, :, y0 : y0 + r] = dist.view(K, r, W)
        return tied_fraction


@functools.lru_cache(maxsize=None)
def _topk_choice_among_equals(kernel_size, dtype) -> torch.Tensor:
    """The window offsets torch.topk(largest=False) picks from K*K equal values (its CPU kernel
    decides from comparisons only, so the choice is the same for any equal values)."""
    row = torch.zeros(1, kernel_size * kernel_size, dtype=dtype)
    return torch.topk(row, kernel_size, dim=1, largest=False).indices[0]


@functools.lru_cache(maxsize=None)
def _sorting_network(n: int) -> Tuple[Tuple[int, int], ...]:
    """Batcher's odd-even merge sort comparators for n elements (pruned from the next power of
    two; comparators reaching past n would compare with +inf and never swap)."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def _sort_slabs(slabs: List[torch.Tensor], network, scratch: torch.Tensor) -> torch.Tensor:
    """Sort along the list: afterwards slabs[0] <= slabs[1] <= ... elementwise. ``scratch`` has
    the slabs' shape; the buffers rotate between list entries and the returned scratch."""
    for a, b in network:
        torch.minimum(slabs[a], slabs[b], out=scratch)
        torch.maximum(slabs[a], slabs[b], out=slabs[b])
        slabs[a], scratch = scratch, slabs[a]
    return scratch


@functools.lru_cache(maxsize=None)
def _bitonic_merge_network(n: int) -> Tuple[Tuple[int, int], ...]:
    """Comparators that sort a bitonic (ascending then descending) sequence of n elements.

    Batcher's bitonic merger for the next power of two N, applied to the sequence preceded by
    N - n copies of -inf (still bitonic, cyclically); comparators whose lower element is one of
    those never swap and are dropped.
    """
    size = 1
    while size < n:
        size *= 2
    pad = size - n
    pairs = []
    j = size // 2
    while j >= 1:
        pairs += [(i - pad, i + j - pad) for i in range(pad, size) if not i & j]
        j //= 2
    return tuple(pairs)


def _k_smallest_keys(keys: torch.Tensor, k: int) -> torch.Tensor:
    """(k, G, n) distinct integer keys -> (k, n): the k smallest of the k*G keys of each column.

    Each of the G groups (k keys) is sorted by a sorting network; groups are then merged in
    pairs keeping only the k smallest: for ascending a and b, ``min(a[i], b[k-1-i])`` are the k
    smallest of a and b, a bitonic sequence, sorted for the next level by a bitonic merger.
    Groups g < G//2 merge with groups g + (G+1)//2, in place into group g; with odd G the middle
    group passes as it is, so the next level's groups are the first (G+1)//2 rows: no copy.
    Overwrites ``keys``.
    """
    network = _bitonic_merge_network(k)
    groups, n = keys.shape[1], keys.shape[2]
    slabs = list(keys.unbind(0))  # slabs[i]: (G, n), position i of every group
    scratch = _sort_slabs(slabs, _sorting_network(k), torch.empty_like(slabs[0]))
    while groups > 2:
        half, kept = groups // 2, (groups + 1) // 2
        # position i of a merged group reads a[i] (slab i) and b[k-1-i] (slab k-1-i, rows
        # kept..): rows :half of slab i are read by position i only, so they can be overwritten
        for i in range(k):
            torch.minimum(slabs[i][:half], slabs[k - 1 - i][kept:groups], out=slabs[i][:half])
        groups = kept
        slabs = [slab[:groups] for slab in slabs]
        scratch = _sort_slabs(slabs, network, scratch[:groups])
    if groups == 1:
        return torch.stack([s[0] for s in slabs])
    smallest = keys.new_empty((k, n))
    for i in range(k):
        torch.minimum(slabs[i][0], slabs[k - 1 - i][1], out=smallest[i])
    return smallest


# ---------------------------------------------------------------------------------------------
# Alpha side: autograd Functions over a selection
# ---------------------------------------------------------------------------------------------
class _Window(NamedTuple):
    """Flat int32 positions in the zero-padded (H + 2p) x (W + 2p) grid."""

    corner: torch.Tensor  # (H*W,) top-left corner of each pixel's window
    relative: torch.Tensor  # (K*K,) each window offset, relative to the corner
    centre: int  # the pixel itself, relative to the corner
    padded_size: int

    @staticmethod
    def make(kernel_size, height, width, device):
        p = kernel_size // 2
        Wp = width + 2 * p
        ys = torch.arange(height, device=device, dtype=torch.int32).view(-1, 1)
        xs = torch.arange(width, device=device, dtype=torch.int32).view(1, -1)
        ky = torch.arange(kernel_size, device=device, dtype=torch.int32).view(-1, 1)
        kx = torch.arange(kernel_size, device=device, dtype=torch.int32).view(1, -1)
        corner = (ys * Wp + xs).view(-1)
        return _Window(corner, (ky * Wp + kx).view(-1), p * Wp + p, (height + 2 * p) * Wp)


class _Workspace:
    """Buffers for ``n`` pixels, one set per worker thread, allocated by the calling thread (so
    that the helper threads allocate nothing big: their allocator arenas would keep it)."""

    def __init__(self, n, dtype, device):
        self.offsets = torch.empty(n, dtype=torch.int32, device=device)
        self.positions = torch.empty(n, dtype=torch.int32, device=device)
        self.x, self.y, self.z = (torch.empty(n, dtype=dtype, device=device) for _ in range(3))

    def neighbour_positions(self, window: _Window, offsets: torch.Tensor, c0: int, c1: int):
        """Padded flat positions of the neighbours at window ``offsets`` (uint8) of pixels
        c0 .. c1 (flat indices in the image)."""
        off = self.offsets[: c1 - c0]
        off.copy_(offsets)
        positions = torch.index_select(window.relative, 0, off, out=self.positions[: c1 - c0])
        return positions.add_(window.corner[c0:c1])


def _pixel_tasks(batch, pixels):
    """(b, c0, c1) pieces of at most _ALPHA_CHUNK pixels of every image."""
    return [
        (b, c0, min(pixels, c0 + _ALPHA_CHUNK))
        for b in range(batch)
        for c0 in range(0, pixels, _ALPHA_CHUNK)
    ]


class _PairTermsLoss(torch.autograd.Function):
    """sum over selected pairs of |d_ij - (a_i - a_j)| (DDC, Eq. 9) or ||a_i - a_j| - d_ij| (DC,
    Eq. 8), divided by ``normaliser``; optionally only over pairs whose centre i is in
    ``centre_mask`` (B, H*W), and without the inf-distance slots when ``has_inf``. Saves one
    int8 per pair, the derivative of its term with respect to a_i (in {-1, 0, 1}), for
    backward. Runs on :func:`_run_tasks`."""

    @staticmethod
    def forward(ctx, alpha, index, distance, centre_mask, directional, normaliser, has_inf):
        B, _, H, W = alpha.shape
        K, p, N = index.shape[1], index.shape[1] // 2, H * W
        window = _Window.make(K, H, W, alpha.device)
        padded = F.pad(alpha, (p, p, p, p)).view(B, -1)
        centre = alpha.reshape(B, N)
        index, distance = index.reshape(B, K, N), distance.reshape(B, K, N)
        slopes = torch.empty(B, K, N, dtype=torch.int8, device=alpha.device)

        def run(task, ws):
            b, c0, c1 = task
            m = c1 - c0
            partial_sums = []
            for k in range(K):
                positions = ws.neighbour_positions(window, index[b, k, c0:c1], c0, c1)
                neighbour = torch.index_select(padded[b], 0, positions, out=ws.x[:m])
                diff = torch.sub(centre[b, c0:c1], neighbour, out=ws.y[:m])  # alpha_dist
                d = distance[b, k, c0:c1]
                if directional:
                    residual = torch.sub(d, diff, out=ws.z[:m])
                    slope = torch.sign(residual, out=ws.x[:m]).neg_()  # d|residual| / d a_i
                else:
                    residual = torch.sub(d, torch.abs(diff, out=ws.x[:m]), out=ws.z[:m])
                    slope = torch.sign(residual, out=ws.x[:m]).mul_(diff.sign_()).neg_()
                term = residual.abs_()
                drop = None if centre_mask is None else ~centre_mask[b, c0:c1]
                if has_inf:  # padding="valid": slots without a usable neighbour hold inf
                    drop = torch.isinf(d) if drop is None else drop | torch.isinf(d)
                if drop is not None:
                    term.masked_fill_(drop, 0.0)
                    slope.masked_fill_(drop, 0.0)
                partial_sums.append(term.sum())
                slopes[b, k, c0:c1] = slope
            return partial_sums

        tasks = _pixel_tasks(B, N)
        workspaces = [
            _Workspace(min(N, _ALPHA_CHUNK), alpha.dtype, alpha.device)
            for _ in range(_num_workers(len(tasks), alpha.device))
        ]
        sums = [x for task_sums in _run_tasks(tasks, run, workspaces) for x in task_sums]
        total = torch.stack(sums).sum(dtype=torch.float64)
        ctx.save_for_backward(index, slopes)
        ctx.normaliser = normaliser
        ctx.alpha_meta = (alpha.shape, alpha.dtype)
        return (total / normaliser).to(alpha.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        index, slopes = ctx.saved_tensors
        (B, _, H, W), dtype = ctx.alpha_meta
        K, p, N = index.shape[1], index.shape[1] // 2, H * W
        window = _Window.make(K, H, W, index.device)
        scale = grad_output.to(dtype) / ctx.normaliser
        grad = torch.zeros(B, window.padded_size, dtype=dtype, device=index.device)

        def run(b, ws):  # one thread per image: no two threads add into one grad row
            for c0 in range(0, N, _ALPHA_CHUNK):
                c1 = min(N, c0 + _ALPHA_CHUNK)
                m = c1 - c0
                centre_sum = ws.y[:m].zero_()
                for k in range(K):
                    positions = ws.neighbour_positions(window, index[b, k, c0:c1], c0, c1)
                    # a_j of each pair gets minus the pair's slope, a_i the sum of its slopes
                    contribution = ws.x[:m].copy_(slopes[b, k, c0:c1]).mul_(-scale)
                    grad[b].index_add_(0, positions, contribution)
                    centre_sum.add_(slopes[b, k, c0:c1])
                positions = torch.add(window.corner[c0:c1], window.centre, out=ws.positions[:m])
                grad[b].index_add_(0, positions, centre_sum.mul_(scale))

        workspaces = [
            _Workspace(min(N, _ALPHA_CHUNK), dtype, index.device)
            for _ in range(_num_workers(B, index.device))
        ]
        _run_tasks(range(B), run, workspaces)
        grad = grad.view(B, 1, H + 2 * p, W + 2 * p)[:, :, p : p + H, p : p + W]
        return grad, None, None, None, None, None, None


class _AffinityLoss(torch.autograd.Function):
    """Eq. 2-4: sum over pixels of |sum_j w_ij a_j - a_i| / normaliser, w_ij = A_ij / sum_j A_ij
    over the selected neighbours, A_ij = max(0, 1 - d_ij / C). Runs on :func:`_run_tasks`."""

    @staticmethod
    def forward(ctx, alpha, index, distance, normaliser):
        B, _, H, W = alpha.shape
        K, p, N = index.shape[1], index.shape[1] // 2, H * W
        window = _Window.make(K, H, W, alpha.device)
        padded = F.pad(alpha, (p, p, p, p)).view(B, -1)
        centre = alpha.reshape(B, N)
        index, distance = index.reshape(B, K, N), distance.reshape(B, K, N)
        row_sum = torch.zeros_like(centre)
        error = torch.zeros_like(centre)

        def run(task, ws):
            b, c0, c1 = task
            m = c1 - c0
            total, weighted = row_sum[b, c0:c1], error[b, c0:c1]
            for k in range(K):
                affinity = _affinity(distance[b, k, c0:c1], out=ws.x[:m])
                total.add_(affinity)
                positions = ws.neighbour_positions(window, index[b, k, c0:c1], c0, c1)
                weighted.add_(
                    affinity.mul_(torch.index_select(padded[b], 0, positions, out=ws.y[:m]))
                )
            weighted.div_(total).sub_(centre[b, c0:c1])  # now (A alpha)_i - alpha_i

        tasks = _pixel_tasks(B, N)
        workspaces = [
            _Workspace(min(N, _ALPHA_CHUNK), alpha.dtype, alpha.device)
            for _ in range(_num_workers(len(tasks), alpha.device))
        ]
        _run_tasks(tasks, run, workspaces)
        ctx.save_for_backward(index, distance, row_sum, torch.sign(error).to(torch.int8))
        ctx.normaliser = normaliser
        ctx.alpha_meta = (alpha.shape, alpha.dtype)
        return (error.abs_().sum(dtype=torch.float64) / normaliser).to(alpha.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        index, distance, row_sum, sign = ctx.saved_tensors
        (B, _, H, W), dtype = ctx.alpha_meta
        K, p, N = index.shape[1], index.shape[1] // 2, H * W
        window = _Window.make(K, H, W, index.device)
        scale = grad_output.to(dtype) / ctx.normaliser
        grad = torch.zeros(B, window.padded_size, dtype=dtype, device=index.device)

        def run(b, ws):  # one thread per image: no two threads add into one grad row
            for c0 in range(0, N, _ALPHA_CHUNK):
                c1 = min(N, c0 + _ALPHA_CHUNK)
                m = c1 - c0
                grad_error = ws.y[:m].copy_(sign[b, c0:c1]).mul_(scale)
                per_weight = torch.div(grad_error, row_sum[b, c0:c1], out=ws.z[:m])
                for k in range(K):
                    affinity = _affinity(distance[b, k, c0:c1], out=ws.x[:m])
                    positions = ws.neighbour_positions(window, index[b, k, c0:c1], c0, c1)
                    grad[b].index_add_(0, positions, affinity.mul_(per_weight))
                positions = torch.add(window.corner[c0:c1], window.centre, out=ws.positions[:m])
                grad[b].index_add_(0, positions, grad_error.neg_())

        workspaces = [
            _Workspace(min(N, _ALPHA_CHUNK), dtype, index.device)
            for _ in range(_num_workers(B, index.device))
        ]
        _run_tasks(range(B), run, workspaces)
        grad = grad.view(B, 1, H + 2 * p, W + 2 * p)[:, :, p : p + H, p : p + W]
        return grad, None, None, None


def _affinity(distance, out):
    """A = max(0, 1 - d / C) into ``out``: inf (no neighbour) -> 0; clamped at 0 for colours
    outside [0, 1]^3."""
    return torch.div(distance, -AFFINITY_C, out=out).add_(1.0).clamp_(min=0.0)


# ---------------------------------------------------------------------------------------------
# Public losses
# ---------------------------------------------------------------------------------------------
def _as_compute_type(alpha, *others):
    """float32/float64 version of ``alpha`` (half/bfloat16 -> float32), promoted with others."""
    dtype = alpha.dtype if alpha.dtype in (torch.float32, torch.float64) else torch.float32
    for t in others:
        if t is not None and t.dtype == torch.float64:
            dtype = torch.float64
    return alpha.to(dtype)


def _check_alpha(name, alpha, like=None):
    if alpha.dim() != 4 or alpha.shape[1] != 1 or not alpha.is_floating_point():
        raise ValueError(
            f"{name}: alpha must be a float (B, 1, H, W) tensor, got {tuple(alpha.shape)} "
            f"{alpha.dtype}"
        )
    if like is not None:
        what, other = like
        if (
            other.dim() != 4
            or other.shape[0] != alpha.shape[0]
            or other.shape[2:] != alpha.shape[2:]
        ):
            raise ValueError(
                f"{name}: {what} {tuple(other.shape)} does not match alpha {tuple(alpha.shape)} "
                f"(expected (B, *, H, W) with the same B, H, W)"
            )


def _selection_for(name, image, alpha, kernel_size, padding, selection):
    _check_kernel_padding(kernel_size, padding)
    if selection is None:
        if image is None:
            raise ValueError(f"{name}: pass an image or a precomputed selection")
        _check_alpha(name, alpha, ("image", image))
        return select_neighbours(image, kernel_size, padding)
    _check_alpha(name, alpha, ("selection.index", selection.index))
    if selection.kernel_size != kernel_size or selection.padding != padding:
        raise ValueError(
            f"{name}: selection was made with kernel_size={selection.kernel_size}, "
            f"padding={selection.padding!r}, but kernel_size={kernel_size}, "
            f"padding={padding!r} was asked"
        )
    return selection


def _unknown_mask(name, trimap, alpha):
    if trimap is None:
        raise ValueError(f"{name}: region='unknown' needs the trimap")
    _check_alpha(name, trimap, ("trimap", alpha))
    return (trimap == 0.5).reshape(trimap.shape[0], -1)


def _pair_terms_loss(
    name, image, alpha, kernel_size, padding, region, trimap, selection, directional
):
    if region not in REGIONS:
        raise ValueError(f"{name}: region must be one of {REGIONS}, got {region!r}")
    selection = _selection_for(name, image, alpha, kernel_size, padding, selection)
    index, distance = selection.index, selection.distance
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha, distance)
        distance = distance.to(a.dtype)
        centre_mask = _unknown_mask(name, trimap, alpha) if region == "unknown" else None
        B, K, H, W = index.shape
        if centre_mask is None and padding == "zeros":
            normaliser = float(B * K * H * W)  # the sample code's F.l1_loss mean
        else:
            usable = torch.isfinite(distance).reshape(B, K, H * W)
            if centre_mask is not None:
                usable = usable & centre_mask[:, None]
            normaliser = float(max(int(usable.sum()), 1))  # no pair: zero, with a gradient
        has_inf = padding == "valid"
        return _PairTermsLoss.apply(
            a, index, distance, centre_mask, directional, normaliser, has_inf
        )


def ddc_loss(
    image: Optional[torch.Tensor],
    alpha: torch.Tensor,
    kernel_size: int = 11,
    *,
    padding: str = "zeros",
    region: str = "whole",
    trimap: Optional[torch.Tensor] = None,
    selection: Optional[NeighbourSelection] = None,
) -> torch.Tensor:
    """Directional distance consistency loss (Eq. 9).

    L = mean over pixels i and their K selected neighbours j of |(a_i - a_j) - ||I_i - I_j|||.
    With the defaults its value and gradient are those of the paper's Listing 1 (zero padding
    included; the mean runs over B * K * H * W terms).

    Args:
        image: (B, C, H, W) RGB in [0, 1]; may be None when ``selection`` is given.
        alpha: (B, 1, H, W) predicted alpha.
        kernel_size: window size K (and number of neighbours), odd.
        padding: "zeros" or "valid" (see :func:`select_neighbours`). With "valid" the mean runs
            over the usable pairs only.
        region: "whole" (the paper's default) or "unknown" (Table 5): only pairs whose centre
            pixel i is unknown (trimap == 0.5) count, and the mean is over those pairs:
            sum over {i unknown, j selected for i} / (K * number of unknown pixels in the batch)
            (fewer when "valid" drops pairs). Their neighbours j may be known pixels and get
            gradients. Zero (with a gradient) when the batch has no unknown pixel.
        trimap: (B, 1, H, W), needed for region="unknown".
        selection: a precomputed :func:`select_neighbours` result for this image, to share the
            selection between losses.
    """
    return _pair_terms_loss(
        "ddc_loss", image, alpha, kernel_size, padding, region, trimap, selection, True
    )


def dc_loss(
    image: Optional[torch.Tensor],
    alpha: torch.Tensor,
    kernel_size: int = 11,
    *,
    padding: str = "zeros",
    region: str = "whole",
    trimap: Optional[torch.Tensor] = None,
    selection: Optional[NeighbourSelection] = None,
) -> torch.Tensor:
    """Distance consistency loss (Eq. 8): mean of ||a_i - a_j| - ||I_i - I_j||| over the same
    pairs as :func:`ddc_loss` (same arguments and normalisation)."""
    return _pair_terms_loss(
        "dc_loss", image, alpha, kernel_size, padding, region, trimap, selection, False
    )


def affinity_loss(
    image: Optional[torch.Tensor],
    alpha: torch.Tensor,
    kernel_size: int = 11,
    *,
    padding: str = "zeros",
    selection: Optional[NeighbourSelection] = None,
) -> torch.Tensor:
    """Affinity (KNN-matting) loss, Eq. 2-4, within K x K windows (Sec. 3.1).

    A(i, j) = 1 - ||I_i - I_j|| / C for the K selected neighbours j of i (the DDC selection),
    C = sqrt(3) so that A is in [0, 1] for RGB in [0, 1] (clamped at 0 otherwise), zero
    elsewhere; rows normalised to sum to 1; L = mean over the B * H * W pixels of
    |(A alpha)_i - alpha_i|. With zero padding, out-of-image neighbours are black pixels of
    alpha 0. Arguments as :func:`ddc_loss`.
    """
    selection = _selection_for("affinity_loss", image, alpha, kernel_size, padding, selection)
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha, selection.distance)
        B, _, H, W = a.shape
        distance = selection.distance.to(a.dtype)
        return _AffinityLoss.apply(a, selection.index, distance, float(B * H * W))


def known_loss(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """L_known: mean |alpha - trimap| over the known pixels (trimap exactly 0 or 1) of the batch.

    Equals the paper's l1 known loss scaled by s = N / N_known (Sec. 4.1). Zero (with a
    gradient) when nothing is known.
    """
    _check_alpha("known_loss", alpha, ("trimap", trimap))
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha)
        target = trimap.to(a.dtype)
        known = (target == 0) | (target == 1)
        return _masked_mean((a - target).abs(), known)


def _masked_mean(values, mask):
    count = mask.sum().clamp(min=1).to(values.dtype)
    return torch.where(mask, values, torch.zeros_like(values)).sum() / count


def mask_l1_loss(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """l1 loss against a binary segmentation mask label (Appendix B, Table 7 "Mask l1").

    Mean |alpha - mask| over the pixels where the label is 0 or 1; other values (the 0.5 that
    crop padding adds) are ignored. On a binary mask this is :func:`known_loss`: Table 7's
    "Mask l1" and "Trimap l1" differ by their label, not by the formula.
    """
    _check_alpha("mask_l1_loss", alpha, ("mask", mask))
    return known_loss(alpha, mask)


def mask_bce_loss(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross entropy between alpha (a probability) and a binary mask label (Appendix B,
    Table 7 "Mask BCE"): mean over the pixels where the label is 0 or 1 (0.5 ignored).
    Computed in float32 (or float64), autocast disabled; alpha is clamped to [0, 1]."""
    _check_alpha("mask_bce_loss", alpha, ("mask", mask))
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha).clamp(0.0, 1.0)
        target = mask.to(a.dtype)
        known = (target == 0) | (target == 1)
        values = F.binary_cross_entropy(a, target, reduction="none")
        return _masked_mean(values, known)


def alpha_l1_loss(alpha: torch.Tensor, gt_alpha: torch.Tensor) -> torch.Tensor:
    """l1 loss against a ground-truth alpha matte over all pixels (the finely supervised
    baseline, Table 1 row 1)."""
    _check_alpha("alpha_l1_loss", alpha, ("gt_alpha", gt_alpha))
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha)
        return F.l1_loss(a, gt_alpha.to(a.dtype))


# ---------------------------------------------------------------------------------------------
# Loss head
# ---------------------------------------------------------------------------------------------
_SELECTION_LOSSES = ("ddc", "dc", "affinity")
LOSS_NAMES = ("known", "ddc", "dc", "affinity", "mask_l1", "mask_bce", "alpha_l1")

# The loss policies of the paper's tables, as MattingCriterion keyword arguments (use any other
# combination the same way). lambda = 10 for DC/DDC (Sec. 4.1). The paper gives no weight for
# the affinity loss (Table 4 row 2): 10 is our choice, not the paper's.
PAPER_POLICIES: Dict[str, dict] = {
    # Table 1 row 1: finely supervised baseline (needs alpha labels).
    "alpha_l1": {"losses": {"alpha_l1": 1.0}},
    # Table 4 rows 1-4; "known_dc"/"known_ddc" are also Table 5's "Whole" rows, and
    # "known_ddc" is Table 1 row 2 and Table 7's "Trimap l1" (Eq. 11).
    "known": {"losses": {"known": 1.0}},
    "known_affinity": {"losses": {"known": 1.0, "affinity": 10.0}},
    "known_dc": {"losses": {"known": 1.0, "dc": 10.0}},
    "known_ddc": {"losses": {"known": 1.0, "ddc": 10.0}},
    # Table 5 "Unknown" rows.
    "known_dc_unknown": {"losses": {"known": 1.0, "dc": 10.0}, "region": "unknown"},
    "known_ddc_unknown": {"losses": {"known": 1.0, "ddc": 10.0}, "region": "unknown"},
    # Table 7: segmentation-mask labels (the dataset's trimap holds a 0/1 mask).
    "mask_l1_ddc": {"losses": {"mask_l1": 1.0, "ddc": 10.0}},
    "mask_bce_ddc": {"losses": {"mask_bce": 1.0, "ddc": 10.0}},
}


class MattingCriterion(nn.Module):
    """Loss head: the paper's losses by name with weights; returns detectron2's loss dict.

    Example (Eq. 11, the paper's default): ``MattingCriterion({"known": 1.0, "ddc": 10.0})``;
    every policy of Tables 1, 4, 5 and 7 is in :data:`PAPER_POLICIES`
    (``MattingCriterion(**PAPER_POLICIES["known_ddc_unknown"])``), Table 8 is ``kernel_size``.

    Args:
        losses: {name: weight} with names from "known", "ddc", "dc", "affinity", "mask_l1",
            "mask_bce", "alpha_l1". A weight of 0 switches that loss off.
        kernel_size: window size K of DDC / DC / affinity (odd).
        region: "whole" or "unknown": the pairs DDC and DC supervise (see :func:`ddc_loss`).
        padding: "zeros" (sample code) or "valid" (see :func:`select_neighbours`).
    """

    def __init__(
        self,
        losses: Mapping[str, float],
        kernel_size: int = 11,
        region: str = "whole",
        padding: str = "zeros",
    ):
        super().__init__()
        if not isinstance(losses, Mapping) or not losses:
            raise ValueError(
                f"MattingCriterion: losses must be a non-empty {{name: weight}}, got {losses!r}"
            )
        unknown = sorted(set(losses) - set(LOSS_NAMES))
        if unknown:
            raise ValueError(
                f"MattingCriterion: unknown loss names {unknown}; expected some of {LOSS_NAMES}"
            )
        weights = {}
        for name, weight in losses.items():
            if (
                isinstance(weight, bool)
                or not isinstance(weight, (int, float))
                or not math.isfinite(weight)
            ):
                raise ValueError(
                    f"MattingCriterion: weight of {name!r} must be a finite number, got {weight!r}"
                )
            weights[name] = float(weight)
        _check_kernel_padding(kernel_size, padding)
        if region not in REGIONS:
            raise ValueError(f"MattingCriterion: region must be one of {REGIONS}, got {region!r}")
        # A zero weight switches a loss off (it is neither computed nor logged), so a policy can
        # be changed from the command line: model.criterion.losses.ddc=0 model.criterion.losses.dc=10
        self.losses = {name: w for name, w in weights.items() if w != 0.0}
        if not self.losses:
            raise ValueError(f"MattingCriterion: every loss weight is zero in {losses!r}")
        self.kernel_size = kernel_size
        self.region = region
        self.padding = padding

    def extra_repr(self):
        return (
            f"losses={self.losses}, kernel_size={self.kernel_size}, region={self.region!r}, "
            f"padding={self.padding!r}"
        )

    def forward(
        self,
        pred_alpha: torch.Tensor,
        image: torch.Tensor,
        trimap: torch.Tensor,
        alpha: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """
        Args:
            pred_alpha: (B, 1, H, W) in [0, 1].
            image: (B, 3, H, W) RGB in [0, 1], not normalised.
            trimap: (B, 1, H, W) in {0, 0.5, 1} (a {0, 1} mask for mask labels).
            alpha: (B, 1, H, W) ground truth, only needed by "alpha_l1".

        Returns:
            {"loss_<name>": weight * value} for each configured loss.
        """
        if "alpha_l1" in self.losses and alpha is None:
            raise ValueError(
                "MattingCriterion: the 'alpha_l1' loss needs ground-truth alpha, but alpha=None "
                "(the dataset has no alpha_file_name?)"
            )
        _check_alpha("MattingCriterion", pred_alpha, ("trimap", trimap))
        selection = None
        if any(name in self.losses for name in _SELECTION_LOSSES):
            _check_alpha("MattingCriterion", pred_alpha, ("image", image))
            selection = select_neighbours(image, self.kernel_size, self.padding)
        K, pad, region = self.kernel_size, self.padding, self.region
        compute = {
            "known": lambda: known_loss(pred_alpha, trimap),
            "mask_l1": lambda: mask_l1_loss(pred_alpha, trimap),
            "mask_bce": lambda: mask_bce_loss(pred_alpha, trimap),
            "alpha_l1": lambda: alpha_l1_loss(pred_alpha, alpha),
            "ddc": lambda: ddc_loss(
                None, pred_alpha, K, padding=pad, region=region, trimap=trimap, selection=selection
            ),
            "dc": lambda: dc_loss(
                None, pred_alpha, K, padding=pad, region=region, trimap=trimap, selection=selection
            ),
            "affinity": lambda: affinity_loss(
                None, pred_alpha, K, padding=pad, selection=selection
            ),
        }
        return {f"loss_{name}": weight * compute[name]() for name, weight in self.losses.items()}
