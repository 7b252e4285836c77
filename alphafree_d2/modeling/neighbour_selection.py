"""Neighbour selection for the DDC, DC and affinity losses (paper Sec. 3.1, Fig. 3).

For each pixel i, the ``K`` pixels j of its K x K window (i itself included) with the smallest
Euclidean RGB distance ||I_i - I_j||. With ``padding="zeros"`` (default) the window is zero
padded exactly like ``F.unfold(..., padding=K // 2)`` in the paper's sample code (Listing 1), and
the result reproduces its ``torch.topk(dist, K, dim=1, largest=False)``, tie-breaking included.
The selection depends only on the image: it is computed without autograd and stored compactly
(uint8 window offsets + the K selected distances, :class:`NeighbourSelection`).

How (CPU): distances are computed by shifting the image (bitwise equal to ``torch.norm`` in the
sample code), the K smallest of each pixel's K*K distances come from a vectorised sorting
network where the K-th distance is unique, and pixels with tied distances go to ``torch.topk``
itself so ties break as in the sample code. The work runs as chunked tasks on a few Python
threads with torch single-threaded in each (see :func:`run_tasks`). Elsewhere (CUDA) a chunked
plain formulation is used.
"""

import functools
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["PADDINGS", "NeighbourSelection", "select_neighbours"]

logger = logging.getLogger(__name__)

PADDINGS = ("zeros", "valid")

# Pixels per chunk of the CPU selection (one chunk per worker thread at a time): its two work
# buffers hold K*K values per pixel (2 x 121 x 8192 x 4 B = 8 MB for K = 11 in float32).
_CHUNK_PIXELS = 8192
# Pixels with tied distances per torch.topk call of the CPU selection; above this fraction of
# such pixels in the probe chunk, every pixel goes to torch.topk (see _select_cpu).
_TOPK_ROWS = 1024
_TIED_FRACTION_FOR_TOPK = 0.35
# Most threads the CPU path uses (see run_tasks).
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
    check_kernel_padding(kernel_size, padding)
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


def check_kernel_padding(kernel_size, padding):
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
    known choice when all K*K distances are equal). Chunks run on :func:`run_tasks`.
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
    buffers = [_selection_buffers(job) for _ in range(num_workers(len(chunks)))]
    # A probe chunk (the middle rows of the first image) decides the method for the others:
    # when most of its pixels have tied distances (8-bit photographs), torch.topk on every
    # pixel is cheaper than the network followed by torch.topk on the tied ones. The result is
    # the same set either way, and the decision depends on the image only (not on threads).
    probe = chunks.pop(len(range(0, H, job.rows)) // 2)
    (tied_fraction,) = run_tasks(
        [probe], lambda chunk, buf: _select_chunk(job, chunk, buf, False), buffers[:1]
    )
    topk_all = tied_fraction > _TIED_FRACTION_FOR_TOPK
    run_tasks(chunks, lambda chunk, buf: _select_chunk(job, chunk, buf, topk_all), buffers)
    return job.index, job.distance


_OPENMP = "OpenMP" in torch.__config__.parallel_info()


def num_workers(num_tasks, device=torch.device("cpu")):
    """Threads for :func:`run_tasks`: torch's thread count on the CPU (at most
    _MAX_WORKERS: the tasks' Python code holds the GIL), one elsewhere."""
    if device.type != "cpu" or not _OPENMP:
        return 1
    return max(1, min(torch.get_num_threads(), _MAX_WORKERS, num_tasks))


def run_tasks(tasks, run, states) -> list:
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
class PixelWindow(NamedTuple):
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
        return PixelWindow(corner, (ky * Wp + kx).view(-1), p * Wp + p, (height + 2 * p) * Wp)
