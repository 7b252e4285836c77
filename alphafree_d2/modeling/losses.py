"""The paper's loss family for training matting models on trimaps only, and the loss head.

Paper: "Training Matting Models without Alpha Labels" (Sec. 3, Sec. 4.1, Appendix B and E).
Conventions shared by every function here:

- ``image``: (B, C, H, W) float, RGB in [0, 1], NOT normalised (C = 3 in the paper).
- ``alpha``: (B, 1, H, W) float in [0, 1] (the prediction; gradients flow to it only).
- ``trimap``: (B, 1, H, W) float with values exactly {0, 0.5, 1} (0.5 = unknown).
- Losses return a scalar tensor in ``alpha``'s floating type (float32 for half/bfloat16 inputs:
  under autocast every loss is computed in float32).

Neighbour selection (shared by DDC, DC and affinity; :mod:`.neighbour_selection`): for each
pixel i, the ``K`` pixels j of its K x K window (i itself included) with the smallest Euclidean
RGB distance ||I_i - I_j|| (Fig. 3). With ``padding="zeros"`` (default) it reproduces the paper's
sample code (Listing 1) exactly, tie-breaking included, so the default DDC value and gradient are
those of Listing 1. The alpha side of each loss is a custom autograd Function that saves one int8
per pair (or per pixel) and recomputes neighbour positions in backward instead of keeping
K*K-channel tensors. Cost at B=2, 512x512, K=11 on a 2-core CPU: see ``benchmarks/ddc_loss.py``
(forward + backward about 20-25x faster than Listing 1, about 30x less extra memory).

Threads: on the CPU the work runs as tasks on up to ``torch.get_num_threads()`` Python threads
(this one included) with torch single-threaded inside each (see
:func:`.neighbour_selection.run_tasks`); results do not depend on the number of threads.
"""

import logging
import math
from typing import Dict, Mapping, Optional

import torch
from torch import nn
from torch.nn import functional as F

from .neighbour_selection import (
    NeighbourSelection,
    PixelWindow,
    check_kernel_padding,
    num_workers,
    run_tasks,
    select_neighbours,
)

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

REGIONS = ("whole", "unknown")
# Eq. 3: A(i, j) = 1 - ||I_i - I_j|| / C with C = sqrt(3), the largest RGB distance in [0, 1]^3.
AFFINITY_C = math.sqrt(3.0)
# Pixels per task of the losses' alpha side (its work buffers: 5 x 4 B per pixel).
_ALPHA_CHUNK = 65536


class _Workspace:
    """Buffers for ``n`` pixels, one set per worker thread, allocated by the calling thread (so
    that the helper threads allocate nothing big: their allocator arenas would keep it)."""

    def __init__(self, n, dtype, device):
        self.offsets = torch.empty(n, dtype=torch.int32, device=device)
        self.positions = torch.empty(n, dtype=torch.int32, device=device)
        self.x, self.y, self.z = (torch.empty(n, dtype=dtype, device=device) for _ in range(3))

    def neighbour_positions(self, window: PixelWindow, offsets: torch.Tensor, c0: int, c1: int):
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
    backward. Runs on :func:`run_tasks`."""

    @staticmethod
    def forward(ctx, alpha, index, distance, centre_mask, directional, normaliser, has_inf):
        B, _, H, W = alpha.shape
        K, p, N = index.shape[1], index.shape[1] // 2, H * W
        window = PixelWindow.make(K, H, W, alpha.device)
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
            for _ in range(num_workers(len(tasks), alpha.device))
        ]
        sums = [x for task_sums in run_tasks(tasks, run, workspaces) for x in task_sums]
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
        window = PixelWindow.make(K, H, W, index.device)
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
            for _ in range(num_workers(B, index.device))
        ]
        run_tasks(range(B), run, workspaces)
        grad = grad.view(B, 1, H + 2 * p, W + 2 * p)[:, :, p : p + H, p : p + W]
        return grad, None, None, None, None, None, None


class _AffinityLoss(torch.autograd.Function):
    """Eq. 2-4: sum over pixels of |sum_j w_ij a_j - a_i| / normaliser, w_ij = A_ij / sum_j A_ij
    over the selected neighbours, A_ij = max(0, 1 - d_ij / C). Runs on :func:`run_tasks`."""

    @staticmethod
    def forward(ctx, alpha, index, distance, normaliser):
        B, _, H, W = alpha.shape
        K, p, N = index.shape[1], index.shape[1] // 2, H * W
        window = PixelWindow.make(K, H, W, alpha.device)
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
            for _ in range(num_workers(len(tasks), alpha.device))
        ]
        run_tasks(tasks, run, workspaces)
        ctx.save_for_backward(index, distance, row_sum, torch.sign(error).to(torch.int8))
        ctx.normaliser = normaliser
        ctx.alpha_meta = (alpha.shape, alpha.dtype)
        return (error.abs_().sum(dtype=torch.float64) / normaliser).to(alpha.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        index, distance, row_sum, sign = ctx.saved_tensors
        (B, _, H, W), dtype = ctx.alpha_meta
        K, p, N = index.shape[1], index.shape[1] // 2, H * W
        window = PixelWindow.make(K, H, W, index.device)
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
            for _ in range(num_workers(B, index.device))
        ]
        run_tasks(range(B), run, workspaces)
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
    check_kernel_padding(kernel_size, padding)
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
    """l1 loss against a ground-truth alpha matte (the finely supervised baseline, Table 1
    row 1): mean over the pixels where ``gt_alpha >= 0``; negative values mark pixels without a
    label (crop padding, see ``MattingDatasetMapper``)."""
    _check_alpha("alpha_l1_loss", alpha, ("gt_alpha", gt_alpha))
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha)
        target = gt_alpha.to(a.dtype)
        return _masked_mean((a - target).abs(), target >= 0)


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
        check_kernel_padding(kernel_size, padding)
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
