"""Per-photo refinement: a trimap-guided model fine-tuned, without any label, on the very photo it
is about to matte.

The known loss and DDC (paper Sec. 3, Eq. 9 and 11) need only the image and its trimap, and at
inference a trimap-guided model (``model.trimap_input=True``) has both. :func:`refine_model`
therefore copies the model and trains the copy for ``steps`` Adam steps on the one photo with the
model's own criterion (or the losses of :attr:`RefinementPolicy.losses`); :func:`refine_and_predict`
then predicts with the copy under the high-resolution policy. The original model is never
modified.

What a step sees (:attr:`RefinementPolicy.region`):

- ``"crops"``: ``batch_size`` crops of at most ``crop_size`` x ``crop_size`` pixels, each centred
  on an unknown trimap pixel drawn uniformly (clamped so that the crop stays inside the photo;
  uniform over the photo when it has no unknown pixel). Memory is that of training on the crops,
  whatever the photo's size.
- ``"whole"``: the whole photo, as inference sees it; photos above ``max_megapixels`` are
  downscaled for training (image bilinear and antialiased, trimap nearest, as the
  high-resolution policy does for the ViT), which bounds memory.

The copy is trained in eval mode: BatchNorm keeps the statistics learnt on the training set (one
photo is no batch to estimate them from), dropout and drop-path are off. With no other source of
randomness than the crop positions (drawn from ``seed``), refinement is deterministic for a seed
on a given device and thread count.
"""

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..modeling.losses import LOSSES, MattingCriterion
from ..utils.argtypes import non_negative_int, positive_float, positive_int
from .highres import (
    HighResolutionPolicy,
    _budget_size,
    _resize,
    _resize_trimap,
    predict_alpha_highres,
)

__all__ = [
    "DEFAULT_LOSSES",
    "REGIONS",
    "RefinementPolicy",
    "refinement_criterion",
    "crop_boxes",
    "refine_model",
    "refine_and_predict",
    "parse_losses",
    "add_refinement_arguments",
    "refinement_from_args",
]

REGIONS = ("crops", "whole")
# What a loss may need from the photo for refinement: never alpha or a segmentation mask.
_USABLE_NEEDS = {"trimap", "selection"}


@dataclass(frozen=True)
class RefinementPolicy:
    """How to refine a trimap-guided model on one photo (see the module docstring).

    Attributes:
        steps: optimiser steps; 0 switches refinement off (the plain prediction).
        lr: Adam learning rate (no weight decay, constant). The default, 3e-4, was the most
            even over 10, 50 and 200 steps in the study of docs/refinement.md (1e-3 was best at
            200 steps but worse than no refinement at 10).
        losses: {name: weight} from :data:`~alphafree_d2.modeling.losses.LOSSES` (e.g.
            ``{"known": 1, "ddc": 10}``, ``{"known": 1}``, ``{"known": 1, "dc": 10}``), with the
            kernel size, region, padding and backend of the model's criterion; None: the model's
            criterion itself (its config's losses), or :data:`DEFAULT_LOSSES` when it has none.
        region: "crops" or "whole".
        crop_size: side in pixels of the crops ("crops"); smaller photos are used whole.
        batch_size: crops per step ("crops").
        max_megapixels: "whole": photos with more pixels are downscaled to about this many for
            training.
        seed: seed of the crop positions.
    """

    steps: int = 0
    lr: float = 3e-4
    losses: Optional[Mapping[str, float]] = field(default=None, hash=False)
    region: str = "crops"
    crop_size: int = 256
    batch_size: int = 2
    max_megapixels: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"refinement steps must be an integer >= 0, got {self.steps!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"refinement lr must be > 0, got {self.lr!r}")
        if self.region not in REGIONS:
            raise ValueError(f"refinement region must be one of {REGIONS}, got {self.region!r}")
        if self.crop_size < 32 or self.batch_size < 1:
            raise ValueError(
                f"refinement needs crop_size >= 32 and batch_size >= 1, got {self.crop_size}, "
                f"{self.batch_size}"
            )
        if not self.max_megapixels > 0:
            raise ValueError(f"refinement max_megapixels must be > 0, got {self.max_megapixels}")
        if self.losses is not None:
            unusable = [
                n for n in self.losses if n not in LOSSES or set(LOSSES[n].needs) - _USABLE_NEEDS
            ]
            if unusable:
                usable = [n for n, e in LOSSES.items() if set(e.needs) <= _USABLE_NEEDS]
                raise ValueError(
                    f"refinement losses {unusable} cannot be used on a photo without labels; "
                    f"choose from {usable}"
                )


# The paper's loss (Eq. 11: L_known + 10 L_DDC), for models whose config has no MattingCriterion.
DEFAULT_LOSSES = {"known": 1.0, "ddc": 10.0}


def refinement_criterion(model: nn.Module, losses: Optional[Mapping[str, float]] = None):
    """The criterion a refinement trains with: the model's own when ``losses`` is None and it
    is a :class:`MattingCriterion`, else a MattingCriterion of ``losses`` (default
    :data:`DEFAULT_LOSSES`) with the model criterion's kernel size, region, padding and backend
    (the defaults when the model has no MattingCriterion)."""
    own = getattr(model, "criterion", None)
    if losses is None:
        if isinstance(own, MattingCriterion):
            return own
        losses = DEFAULT_LOSSES
    if not isinstance(own, MattingCriterion):
        return MattingCriterion(dict(losses))
    return MattingCriterion(
        dict(losses),
        kernel_size=own.kernel_size,
        region=own.region,
        padding=own.padding,
        backend=own.backend,
    )


def crop_boxes(
    trimap: torch.Tensor, crop_size: int, count: int, rng: np.random.Generator
) -> List[Tuple[int, int, int, int]]:
    """``count`` crop boxes (y0, x0, h, w) of one photo, h = min(crop_size, H) and
    w = min(crop_size, W), each centred on an unknown pixel (trimap == 0.5) drawn uniformly from
    ``rng`` and shifted to lie inside the photo; uniform positions when nothing is unknown.

    Args:
        trimap: (H, W) or (1, 1, H, W) float in {0, 0.5, 1}.
    """
    t = trimap.reshape(trimap.shape[-2:])
    H, W = t.shape
    h, w = min(crop_size, H), min(crop_size, W)
    unknown = torch.nonzero(t == 0.5).cpu().numpy()
    boxes = []
    for _ in range(count):
        if len(unknown):
            cy, cx = unknown[rng.integers(len(unknown))]
            y0, x0 = int(cy) - h // 2, int(cx) - w // 2
        else:
            y0, x0 = int(rng.integers(H - h + 1)), int(rng.integers(W - w + 1))
        boxes.append((min(max(y0, 0), H - h), min(max(x0, 0), W - w), h, w))
    return boxes


def _whole_view(images, trimaps, max_megapixels):
    h, w = images.shape[-2:]
    if h * w <= max_megapixels * 1e6:
        return images, trimaps
    size = _budget_size(h, w, int(max_megapixels * 1e6), 1)
    return _resize(images, size), _resize_trimap(trimaps, size)


def refine_model(
    model: nn.Module,
    images: torch.Tensor,
    trimaps: torch.Tensor,
    policy: RefinementPolicy,
    *,
    on_step: Optional[Callable[[int, nn.Module, Dict[str, float]], None]] = None,
) -> nn.Module:
    """A copy of ``model`` trained ``policy.steps`` steps on one photo (``model`` is unchanged).

    Args:
        model: a trimap-guided :class:`~alphafree_d2.modeling.meta_arch.ViTMatte`.
        images: (1, 3, H, W) float, 0-255, ``model.input_format`` order, on the model's device.
        trimaps: (1, 1, H, W) float in {0, 0.5, 1}.
        policy: steps, lr, losses, region, crop size, seed.
        on_step: called after every step with (step (1-based), the copy in eval mode, the
            step's {"loss_<name>": float}); it may predict with the copy but not change it.

    Returns:
        the refined copy, in eval mode, on ``model``'s device.
    """
    if not getattr(model, "trimap_input", False):
        raise ValueError(
            "refinement needs a trimap-guided model (model.trimap_input=True, configs/*_trimap.py)"
        )
    if images.dim() != 4 or images.shape[0] != 1 or trimaps.shape != (1, 1, *images.shape[-2:]):
        raise ValueError(
            f"refinement takes one photo: images (1, 3, H, W) and trimaps (1, 1, H, W), got "
            f"{tuple(images.shape)} and {tuple(trimaps.shape)}"
        )
    criterion = refinement_criterion(model, policy.losses)
    with torch.inference_mode(False), torch.enable_grad():
        images, trimaps = images.detach().clone(), trimaps.detach().clone()
        refined = copy.deepcopy(model).eval()
        params = list(refined.parameters())
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params, lr=policy.lr)
        rng = np.random.default_rng(policy.seed)
        if policy.region == "whole":
            view = _whole_view(images, trimaps, policy.max_megapixels)
        for step in range(1, policy.steps + 1):
            if policy.region == "crops":
                boxes = crop_boxes(trimaps, policy.crop_size, policy.batch_size, rng)
                view = tuple(
                    torch.cat([t[..., y : y + h, x : x + w] for y, x, h, w in boxes])
                    for t in (images, trimaps)
                )
            losses = refined.losses(*view, criterion=criterion)
            total = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, refined, {k: v.item() for k, v in losses.items()})
        for p in params:
            p.requires_grad_(False)
    return refined


def refine_and_predict(
    model: nn.Module,
    images: torch.Tensor,
    trimaps: torch.Tensor,
    policy: RefinementPolicy,
    highres: HighResolutionPolicy = HighResolutionPolicy(),
) -> torch.Tensor:
    """Alpha (1, 1, H, W) in [0, 1] of one photo, predicted (under ``highres``) by a copy of
    ``model`` refined on it (:func:`refine_model`); with ``policy.steps == 0`` the plain
    prediction. Arguments as :func:`refine_model`."""
    if policy.steps:
        model = refine_model(model, images, trimaps, policy)
    with torch.inference_mode():
        return predict_alpha_highres(model, images, highres, trimaps)


def parse_losses(text: str) -> Dict[str, float]:
    """'known=1,ddc=10' -> {"known": 1.0, "ddc": 10.0} (ValueError naming the bad part)."""
    losses = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        try:
            losses[name.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(
                f"expected NAME=WEIGHT[,NAME=WEIGHT...], e.g. known=1,ddc=10; got {part!r}"
            )
    return losses


def add_refinement_arguments(parser):
    """Add ``--refine-steps`` (0: off), ``--refine-lr``, ``--refine-losses``, ``--refine-region``,
    ``--refine-crop-size`` and ``--refine-seed`` (see :class:`RefinementPolicy`)."""
    d = RefinementPolicy()
    group = parser.add_argument_group("per-photo refinement (trimap-guided models)")
    group.add_argument(
        "--refine-steps",
        type=non_negative_int,
        default=d.steps,
        metavar="N",
        help="fine-tune a copy of the model on each photo with its trimap for N steps before "
        "predicting (0: no refinement)",
    )
    group.add_argument("--refine-lr", type=positive_float, default=d.lr, help="Adam learning rate")
    group.add_argument(
        "--refine-losses",
        metavar="NAME=W[,NAME=W]",
        help="losses and weights, e.g. known=1,ddc=10 (default: the config's criterion)",
    )
    group.add_argument("--refine-region", choices=REGIONS, default=d.region)
    group.add_argument("--refine-crop-size", type=positive_int, default=d.crop_size, metavar="PX")
    group.add_argument("--refine-seed", type=non_negative_int, default=d.seed)


def refinement_from_args(args) -> RefinementPolicy:
    """The :class:`RefinementPolicy` of :func:`add_refinement_arguments`' options (ValueError
    for bad values)."""
    losses = None if args.refine_losses is None else parse_losses(args.refine_losses)
    return replace(
        RefinementPolicy(),
        steps=args.refine_steps,
        lr=args.refine_lr,
        losses=losses,
        region=args.refine_region,
        crop_size=args.refine_crop_size,
        seed=args.refine_seed,
    )
