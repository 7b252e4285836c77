"""Plain reference implementations shared by the tests and the benchmarks.

DDC family: the paper's Listing 1 and the same K*K-channel unfold formulation for the selection,
DC and affinity (float64 in the tests). Slow and memory-hungry by design: they are the
definition the kernels of :mod:`alphafree_d2.modeling` are checked against.
"""

import math

import torch
from torch.nn import functional as F

__all__ = [
    "listing1_ddc",
    "reference_selection",
    "reference_neighbour_alpha",
    "reference_pair_loss",
    "reference_affinity_loss",
]


def listing1_ddc(image, alpha, kernel_size, return_selection=False):
    """The paper's sample code (Appendix E, Listing 1): unfold, torch.norm, torch.topk, gather,
    l1 mean. image (B, C, H, W), alpha (B, 1, H, W) -> scalar (and, with ``return_selection``,
    the selected distances, sorted, and their window offsets, both (B, K, H, W)))."""
    b, c, h, w = image.shape
    unfold_image = F.unfold(image, kernel_size, padding=kernel_size // 2).view(
        b, c, kernel_size**2, h, w
    )
    image_dist = torch.norm(image.view(b, c, 1, h, w) - unfold_image, 2, dim=1)
    image_dist, indices = torch.topk(image_dist, k=kernel_size, dim=1, largest=False)
    unfold_alpha = F.unfold(alpha, kernel_size, padding=kernel_size // 2).view(
        b, kernel_size**2, h, w
    )
    alpha_dist = torch.gather(alpha - unfold_alpha, dim=1, index=indices)
    loss = F.l1_loss(image_dist, alpha_dist)
    return (loss, image_dist, indices) if return_selection else loss


def reference_selection(image, kernel_size, padding="zeros"):
    """All K*K window distances (B, K*K, H, W) (inf outside the image with "valid") and
    Listing 1's choice: (sorted distances (B, K, H, W), their window offsets)."""
    b, c, h, w = image.shape
    K = kernel_size
    unfolded = F.unfold(image, K, padding=K // 2).view(b, c, K * K, h, w)
    dist = torch.norm(image.view(b, c, 1, h, w) - unfolded, 2, dim=1)
    if padding == "valid":
        ones = torch.ones(1, 1, h, w, dtype=image.dtype, device=image.device)
        inside = F.unfold(ones, K, padding=K // 2).view(1, K * K, h, w) > 0
        dist = dist.masked_fill(~inside, math.inf)
    selected, index = torch.topk(dist, K, dim=1, largest=False)
    return dist, selected, index


def reference_neighbour_alpha(alpha, index, kernel_size):
    """(B, K, H, W) alpha of the neighbours at window offsets ``index`` (0 outside)."""
    b, _, h, w = alpha.shape
    K = kernel_size
    unfolded = F.unfold(alpha, K, padding=K // 2).view(b, K * K, h, w)
    return torch.gather(unfolded, 1, index.long())


def reference_pair_loss(alpha, distance, index, kernel_size, region="whole", trimap=None,
                        directional=True):  # fmt: skip
    """DDC (Eq. 9, ``directional``) or DC (Eq. 8) over a given selection: the mean of the terms
    of the finite-distance pairs (with region="unknown": whose centre is unknown)."""
    alpha_dist = alpha - reference_neighbour_alpha(alpha, index, kernel_size)
    if not directional:
        alpha_dist = alpha_dist.abs()
    keep = torch.isfinite(distance)
    if region == "unknown":
        keep = keep & (trimap == 0.5)
    terms = torch.where(keep, (distance - alpha_dist).abs(), torch.zeros_like(distance))
    return terms.sum() / keep.sum().clamp(min=1)


def reference_affinity_loss(alpha, distance, index, kernel_size):
    """Affinity loss (Eq. 2-4) over a given selection, A = max(0, 1 - d / sqrt(3))."""
    affinity = (1 - distance / math.sqrt(3)).clamp(min=0)
    weights = affinity / affinity.sum(1, keepdim=True)
    smoothed = (weights * reference_neighbour_alpha(alpha, index, kernel_size)).sum(1, keepdim=True)
    return (smoothed - alpha).abs().mean()
