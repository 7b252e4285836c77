"""The paper's loss family for training matting models on trimaps only, the table of losses, and
the loss head.

Paper: "Training Matting Models without Alpha Labels" (Sec. 3, Sec. 4.1, Appendix B and E).
Conventions shared by every function here:

- ``image``: (B, C, H, W) float, RGB in [0, 1], NOT normalised (C = 3 in the paper).
- ``alpha``: (B, 1, H, W) float in [0, 1] (the prediction; gradients flow to it only).
- ``trimap``: (B, 1, H, W) float with values exactly {0, 0.5, 1} (0.5 = unknown).
- Losses return a scalar tensor in ``alpha``'s floating type (float32 for half/bfloat16 inputs:
  under autocast every loss is computed in float32).

DDC, DC and affinity share one neighbour selection (:mod:`.neighbour_selection`). Their alpha
side is a custom autograd Function running a backend's kernels (``backend=``, see
:mod:`.neighbour_selection`): it keeps only the selection (K offsets and K distances per pixel)
and alpha, and recomputes what the backward needs. ``backend="torch"`` is the plain unfold and
gather formulation (:mod:`.torch_kernels`, in bands of rows above a memory budget),
differentiated by autograd. On tie-free images the default DDC value and
gradient are those of the paper's Listing 1; with ties any of the equally close neighbours may be
selected (see :mod:`.neighbour_selection`).

Adding a loss: write its function and add one entry to :data:`LOSSES` (what it needs from the
batch); :class:`MattingCriterion`, the configs (``model.criterion.losses.<name>``) and
``benchmarks/loss_policies/`` take it from there.
"""

import math
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from . import torch_kernels
from .backends import BACKENDS, configured_backend, kernels, loss_backend, resolve_backend
from .neighbour_selection import NeighbourSelection, check_kernel_padding, select_neighbours

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
    "LossEntry",
    "LOSSES",
    "MattingCriterion",
]

REGIONS = ("whole", "unknown")


# ---------------------------------------------------------------------------------------------
# The alpha side of DDC, DC and affinity
# ---------------------------------------------------------------------------------------------
class _NeighbourLoss(torch.autograd.Function):
    """sum of the pair terms (``directional`` True: DDC, False: DC) or of the affinity terms
    (``directional`` None) over the selection, divided by ``normaliser``, on a compiled backend.
    Saves alpha and the selection; the backward kernels recompute the terms' slopes."""

    @staticmethod
    def forward(ctx, alpha, index, distance, mask, directional, normaliser, backend):
        alpha = alpha.contiguous()
        ctx.save_for_backward(alpha, index, distance, mask)
        ctx.settings = (directional, normaliser, backend)
        k = kernels(backend)
        if directional is None:
            total = k.affinity_forward(alpha, index, distance)
        else:
            total = k.pair_forward(alpha, index, distance, mask, directional)
        return (total / normaliser).to(alpha.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        alpha, index, distance, mask = ctx.saved_tensors
        directional, normaliser, backend = ctx.settings
        scale = grad_output.to(alpha.dtype) / normaliser  # 0-dim: no device sync here
        k = kernels(backend)
        if directional is None:
            grad = k.affinity_backward(alpha, index, distance, scale)
        else:
            grad = k.pair_backward(alpha, index, distance, mask, directional, scale)
        return grad, None, None, None, None, None, None


def _neighbour_loss(alpha, selection, mask, directional, normaliser, backend):
    backend = loss_backend(backend, alpha.device)
    distance = selection.distance.to(alpha.dtype)
    if backend == "torch":  # autograd's gradient
        if directional is None:
            return torch_kernels.affinity_loss(alpha, selection.index, distance, normaliser)
        return torch_kernels.pair_loss(
            alpha, selection.index, distance, mask, directional, normaliser
        )
    index = selection.index.contiguous()
    return _NeighbourLoss.apply(
        alpha, index, distance.contiguous(), mask, directional, normaliser, backend
    )


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


def _selection_for(name, image, alpha, kernel_size, padding, selection, backend):
    check_kernel_padding(kernel_size, padding)
    resolve_backend(backend, alpha.device)  # a bad name fails before any work
    if selection is None:
        if image is None:
            raise ValueError(f"{name}: pass an image or a precomputed selection")
        _check_alpha(name, alpha, ("image", image))
        return select_neighbours(image, kernel_size, padding, backend)
    _check_alpha(name, alpha, ("selection.index", selection.index))
    if selection.kernel_size != kernel_size or selection.padding != padding:
        raise ValueError(
            f"{name}: selection was made with kernel_size={selection.kernel_size}, "
            f"padding={selection.padding!r}, but kernel_size={kernel_size}, "
            f"padding={padding!r} was asked"
        )
    return selection


def _pair_terms_loss(name, image, alpha, kernel_size, padding, region, trimap, selection,
                     backend, directional):  # fmt: skip
    if region not in REGIONS:
        raise ValueError(f"{name}: region must be one of {REGIONS}, got {region!r}")
    selection = _selection_for(name, image, alpha, kernel_size, padding, selection, backend)
    mask = None
    if region == "unknown":
        if trimap is None:
            raise ValueError(f"{name}: region='unknown' needs the trimap")
        _check_alpha(name, trimap, ("trimap", alpha))
        mask = (trimap == 0.5)[:, 0].contiguous()
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha, selection.distance)
        B, K, H, W = selection.index.shape
        if mask is None and padding == "zeros":
            normaliser = float(B * K * H * W)  # the sample code's F.l1_loss mean
        else:
            usable = torch.isfinite(selection.distance)
            if mask is not None:
                usable = usable & mask[:, None]
            normaliser = float(max(int(usable.sum()), 1))  # no pair: zero, with a gradient
        return _neighbour_loss(a, selection, mask, directional, normaliser, backend)


def ddc_loss(
    image: Optional[torch.Tensor],
    alpha: torch.Tensor,
    kernel_size: int = 11,
    *,
    padding: str = "zeros",
    region: str = "whole",
    trimap: Optional[torch.Tensor] = None,
    selection: Optional[NeighbourSelection] = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Directional distance consistency loss (Eq. 9).

    L = mean over pixels i and their K selected neighbours j of |(a_i - a_j) - ||I_i - I_j|||.
    With the defaults this is the paper's Listing 1 (zero padding included; the mean runs over
    B * K * H * W terms).

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
        backend: "auto", "torch", "numba" or "triton" (see :mod:`.neighbour_selection`).
    """
    return _pair_terms_loss("ddc_loss", image, alpha, kernel_size, padding, region, trimap,
                            selection, backend, True)  # fmt: skip


def dc_loss(
    image: Optional[torch.Tensor],
    alpha: torch.Tensor,
    kernel_size: int = 11,
    *,
    padding: str = "zeros",
    region: str = "whole",
    trimap: Optional[torch.Tensor] = None,
    selection: Optional[NeighbourSelection] = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Distance consistency loss (Eq. 8): mean of ||a_i - a_j| - ||I_i - I_j||| over the same
    pairs as :func:`ddc_loss` (same arguments and normalisation)."""
    return _pair_terms_loss("dc_loss", image, alpha, kernel_size, padding, region, trimap,
                            selection, backend, False)  # fmt: skip


def affinity_loss(
    image: Optional[torch.Tensor],
    alpha: torch.Tensor,
    kernel_size: int = 11,
    *,
    padding: str = "zeros",
    selection: Optional[NeighbourSelection] = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Affinity (KNN-matting) loss, Eq. 2-4, within K x K windows (Sec. 3.1).

    A(i, j) = 1 - ||I_i - I_j|| / C for the K selected neighbours j of i (the DDC selection),
    C = sqrt(3) so that A is in [0, 1] for RGB in [0, 1] (clamped at 0 otherwise), zero
    elsewhere; rows normalised to sum to 1; L = mean over the B * H * W pixels of
    |(A alpha)_i - alpha_i|. With zero padding, out-of-image neighbours are black pixels of
    alpha 0. Arguments as :func:`ddc_loss`.
    """
    selection = _selection_for("affinity_loss", image, alpha, kernel_size, padding, selection,
                               backend)  # fmt: skip
    with torch.autocast(alpha.device.type, enabled=False):
        a = _as_compute_type(alpha, selection.distance)
        B, _, H, W = a.shape
        return _neighbour_loss(a, selection, None, None, float(B * H * W), backend)


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
# The table of losses and the loss head
# ---------------------------------------------------------------------------------------------
class LossInputs(NamedTuple):
    """What the criterion hands to every loss of :data:`LOSSES` (see :class:`MattingCriterion`)."""

    trimap: torch.Tensor  # (B, 1, H, W): the trimap, or the {0, 1} mask for mask labels
    alpha: Optional[torch.Tensor]  # (B, 1, H, W) ground truth, None without alpha labels
    selection: Optional[NeighbourSelection]  # shared by the "selection" losses
    region: str  # "whole" or "unknown": the pairs DDC and DC supervise
    backend: str


class LossEntry(NamedTuple):
    """One loss of the table: ``function(pred_alpha, inputs: LossInputs) -> scalar``, what it
    needs from the batch (any of "selection", "trimap", "mask" (the trimap input holds a
    segmentation mask), "alpha" (ground-truth alpha)), and where it comes from."""

    function: Callable[[torch.Tensor, LossInputs], torch.Tensor]
    needs: Tuple[str, ...]
    paper: str


def _pair_entry(fn):
    def loss(pred, x):
        s = x.selection
        return fn(None, pred, s.kernel_size, padding=s.padding, region=x.region, trimap=x.trimap,
                  selection=s, backend=x.backend)  # fmt: skip

    return loss


def _affinity_entry(pred, x):
    s = x.selection
    return affinity_loss(None, pred, s.kernel_size, padding=s.padding, selection=s,
                         backend=x.backend)  # fmt: skip


# name -> entry; the name is the config key (model.criterion.losses.<name>) and the logged
# term (loss_<name>).
LOSSES: Dict[str, LossEntry] = {
    "known": LossEntry(lambda p, x: known_loss(p, x.trimap), ("trimap",), "Sec. 4.1, Eq. 11"),
    "ddc": LossEntry(_pair_entry(ddc_loss), ("selection", "trimap"), "Eq. 9, Listing 1"),
    "dc": LossEntry(_pair_entry(dc_loss), ("selection", "trimap"), "Eq. 8"),
    "affinity": LossEntry(_affinity_entry, ("selection",), "Eq. 2-4"),
    "mask_l1": LossEntry(lambda p, x: mask_l1_loss(p, x.trimap), ("mask",), "App. B, Table 7"),
    "mask_bce": LossEntry(lambda p, x: mask_bce_loss(p, x.trimap), ("mask",), "App. B, Table 7"),
    "alpha_l1": LossEntry(lambda p, x: alpha_l1_loss(p, x.alpha), ("alpha",), "Table 1 row 1"),
}


class MattingCriterion(nn.Module):
    """Loss head: the losses of :data:`LOSSES` by name with weights; returns detectron2's loss
    dict, one ``loss_<name>`` term per configured loss.

    Example (Eq. 11, the paper's default): ``MattingCriterion({"known": 1.0, "ddc": 10.0})``;
    the policies of Tables 1, 4, 5 and 7 are ``configs/ablations/`` (their
    ``model.criterion``), Table 8 is ``kernel_size``.

    Args:
        losses: {name: weight}, names from :data:`LOSSES`, weights finite and >= 0 (a weight of
            0 switches that loss off: it is neither computed nor logged).
        kernel_size: window size K of DDC / DC / affinity (odd).
        region: "whole" or "unknown": the pairs DDC and DC supervise (see :func:`ddc_loss`).
        padding: "zeros" (sample code) or "valid" (see :func:`select_neighbours`).
        backend: "auto", "torch", "numba" or "triton": how DDC / DC / affinity run.
    """

    def __init__(
        self,
        losses: Mapping[str, float],
        kernel_size: int = 11,
        region: str = "whole",
        padding: str = "zeros",
        backend: str = "auto",
    ):
        super().__init__()
        if not isinstance(losses, Mapping) or not losses:
            raise ValueError(
                f"MattingCriterion: losses must be a non-empty {{name: weight}}, got {losses!r}"
            )
        unknown = sorted(set(losses) - set(LOSSES))
        if unknown:
            raise ValueError(
                f"MattingCriterion: unknown loss names {unknown}; expected some of {tuple(LOSSES)}"
            )
        for name, weight in losses.items():
            ok = isinstance(weight, (int, float)) and not isinstance(weight, bool)
            if not ok or not math.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"MattingCriterion: the weight of loss {name!r} (model.criterion.losses."
                    f"{name} in a LazyConfig) must be a finite number >= 0 (0 switches it off), "
                    f"got {weight!r}; a negative weight would maximise the loss"
                )
        check_kernel_padding(kernel_size, padding)
        if region not in REGIONS:
            raise ValueError(f"MattingCriterion: region must be one of {REGIONS}, got {region!r}")
        if backend not in BACKENDS:
            raise ValueError(
                f"MattingCriterion: backend must be one of {BACKENDS}, got {backend!r}"
            )
        configured_backend(backend)  # a bad ALPHAFREE_DDC_BACKEND fails when the model is built
        # A zero weight switches a loss off, so a policy can be changed from the command line:
        # model.criterion.losses.ddc=0 model.criterion.losses.dc=10
        self.losses = {name: float(w) for name, w in losses.items() if w != 0}
        if not self.losses:
            raise ValueError(f"MattingCriterion: every loss weight is zero in {losses!r}")
        self.kernel_size = kernel_size
        self.region = region
        self.padding = padding
        self.backend = backend

    def extra_repr(self):
        return (
            f"losses={self.losses}, kernel_size={self.kernel_size}, region={self.region!r}, "
            f"padding={self.padding!r}, backend={self.backend!r}"
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
            alpha: (B, 1, H, W) ground truth, only needed by losses that need "alpha".

        Returns:
            {"loss_<name>": weight * value} for each configured loss.
        """
        needs = {n for name in self.losses for n in LOSSES[name].needs}
        if "alpha" in needs and alpha is None:
            users = [name for name in self.losses if "alpha" in LOSSES[name].needs]
            raise ValueError(
                f"MattingCriterion: the {users} loss needs ground-truth alpha, but alpha=None "
                "(the dataset has no alpha_file_name?)"
            )
        _check_alpha("MattingCriterion", pred_alpha, ("trimap", trimap))
        selection = None
        if "selection" in needs:
            _check_alpha("MattingCriterion", pred_alpha, ("image", image))
            selection = select_neighbours(image, self.kernel_size, self.padding, self.backend)
        inputs = LossInputs(trimap, alpha, selection, self.region, self.backend)
        return {
            f"loss_{name}": weight * LOSSES[name].function(pred_alpha, inputs)
            for name, weight in self.losses.items()
        }
