"""Alpha mattes for numpy images, on CPU or GPU: the API under ``tools/predict.py``."""

import copy
import dataclasses
import logging
import os
from typing import Optional, Union

import numpy as np
import torch

from detectron2.config import instantiate

from ..checkpoint.matting_checkpointer import CheckpointError, load_trained_weights
from ..data.io import DEFAULT_MAX_PIXELS, snap_trimap
from ..utils.argtypes import positive_float, positive_int
from ..utils.device import resolve_device
from .highres import MODES, HighResolutionPolicy
from .refine import RefinementPolicy, refine_and_predict

__all__ = [
    "MattingPredictor",
    "NonFiniteAlphaError",
    "add_predictor_arguments",
    "build_inference_model",
    "load_inference_weights",
]

logger = logging.getLogger(__name__)


class NonFiniteAlphaError(RuntimeError):
    """The model's alpha has NaN or infinite values (broken weights, e.g. a diverged run):
    there is no matte for this image, rather than a silently black one."""


def load_inference_weights(model, path, *, allow_partial=False):
    """Load ``path`` into ``model`` and insist that it holds a complete matting model.

    Raises:
        CheckpointError: when ``path`` is empty, missing or unreadable (MattingCheckpointer),
            or when it lacks weights of the model (e.g. a converted ViT backbone, which leaves
            the decoder random) or has weights of other shapes (another config's model): see
            :func:`alphafree_d2.checkpoint.load_trained_weights` (``allow_partial`` only warns).
    """
    if not path:
        raise CheckpointError(
            "no weights to predict with: the config's train.init_checkpoint is empty. Pass the "
            "trained model, e.g. train.init_checkpoint=output/demo_ddc/model_final.pth "
            "(tools/predict.py) or MattingPredictor(cfg, checkpoint=...)."
        )
    if "://" not in path and not os.path.isfile(path):
        raise CheckpointError(
            f"checkpoint {path} does not exist. Pass the trained model, e.g. "
            f"train.init_checkpoint=output/<run>/model_final.pth"
        )
    load_trained_weights(model, path, allow_partial=allow_partial)


def build_inference_model(
    cfg, checkpoint=None, device=None, *, random_init=False, allow_partial_checkpoint=False
):
    """``cfg.model`` built, loaded (see :func:`load_inference_weights`), moved to ``device``
    (see :func:`resolve_device`) and put in eval mode.

    Args:
        checkpoint: default ``cfg.train.init_checkpoint``.
        random_init: skip loading (for testing export and benchmarks only).
        allow_partial_checkpoint: warn instead of failing when the checkpoint leaves weights of
            the model unloaded or mismatched.
    """
    if checkpoint is None:
        checkpoint = cfg.train.init_checkpoint if "train" in cfg else ""
    device = resolve_device(device)
    model = instantiate(copy.deepcopy(cfg.model))
    if not random_init:
        load_inference_weights(model, checkpoint, allow_partial=allow_partial_checkpoint)
    return model.to(device).eval()


class MattingPredictor:
    """Alpha matte of one image, from a LazyConfig and a trained checkpoint.

    The model is built from ``cfg.model``, loaded with :class:`MattingCheckpointer` and run in
    eval mode under ``torch.inference_mode``. Large images follow ``policy`` (see
    :mod:`alphafree_d2.inference.highres`).

    Example::

        cfg = LazyConfig.load("configs/am2k_ddc.py")
        predictor = MattingPredictor(cfg, "output/am2k_ddc/model_final.pth")
        alpha = predictor(read_image("photo.jpg"))  # (H, W) float32 in [0, 1]

        # a trimap-guided model (configs/*_trimap.py) also takes the trimap:
        alpha = predictor(read_image("photo.jpg"), read_trimap("photo_trimap.png"))

    Args:
        cfg: a LazyConfig with ``model`` (and ``train.init_checkpoint`` when ``checkpoint`` is
            None).
        checkpoint: path (or URL) of the trained weights; default ``cfg.train.init_checkpoint``.
        device: "cpu", "cuda", "cuda:1", a torch.device, or None / "auto" (CUDA if visible).
        policy: the high-resolution policy; default :class:`HighResolutionPolicy()`.
        allow_partial_checkpoint: see :func:`build_inference_model`.
        refinement: per-photo refinement of a trimap-guided model before each prediction
            (:mod:`alphafree_d2.inference.refine`); default ``RefinementPolicy()`` (off).
    """

    def __init__(
        self,
        cfg,
        checkpoint: Optional[str] = None,
        device: Union[str, torch.device, None] = None,
        *,
        policy: Optional[HighResolutionPolicy] = None,
        allow_partial_checkpoint: bool = False,
        refinement: Optional[RefinementPolicy] = None,
    ):
        self.model = build_inference_model(
            cfg, checkpoint, device, allow_partial_checkpoint=allow_partial_checkpoint
        )
        self.device = self.model.pixel_mean.device
        self.policy = policy if policy is not None else HighResolutionPolicy()
        self.input_format = self.model.input_format
        self.refinement = refinement if refinement is not None else RefinementPolicy()
        if self.refinement.steps and not self.trimap_input:
            raise ValueError(
                "per-photo refinement needs a trimap-guided model (configs/*_trimap.py); this "
                "model is automatic"
            )

    @property
    def trimap_input(self) -> bool:
        """Whether the model is trimap-guided (then every call needs a trimap)."""
        return self.model.trimap_input

    def __call__(
        self,
        image: np.ndarray,
        trimap: Optional[np.ndarray] = None,
        *,
        refinement: Optional[RefinementPolicy] = None,
    ) -> np.ndarray:
        """
        Args:
            image: uint8 numpy array, (H, W, 3) in RGB order, (H, W) grayscale or (H, W, 4)
                RGBA (the alpha channel is ignored). The model's ``input_format`` (RGB or BGR)
                is applied internally.
            trimap: for a trimap-guided model only (and then required): uint8 (H, W) with
                0 background, 128 unknown, 255 foreground (other values are snapped as
                :func:`~alphafree_d2.data.io.read_trimap` does), at the image's size.
            refinement: this call's refinement policy instead of ``self.refinement``.

        Returns:
            alpha: float32 numpy array (H, W) in [0, 1], 1 = foreground. For a trimap-guided
            model it equals the trimap where that is known (0 or 255).

        Raises:
            NonFiniteAlphaError: the model's alpha has NaN or infinite values (before the
                clamp to [0, 1], which would turn NaN into a black matte or pass it on).
        """
        image = self._as_rgb(image)
        trimap = self._check_trimap(trimap, image.shape[:2])
        if self.input_format == "BGR":
            image = image[:, :, ::-1]
        tensor = torch.from_numpy(np.require(image, requirements=("C", "W"))).to(self.device)
        tensor = tensor.permute(2, 0, 1)[None]
        tensor = tensor.to(torch.float32, memory_format=torch.contiguous_format)
        if trimap is not None:
            label = np.full(trimap.shape, 0.5, dtype=np.float32)
            label[trimap == 0] = 0.0
            label[trimap == 255] = 1.0
            trimap = torch.from_numpy(label)[None, None].to(self.device)
        refinement = self.refinement if refinement is None else refinement
        alpha = refine_and_predict(self.model, tensor, trimap, refinement, self.policy)
        bad = int((~torch.isfinite(alpha)).sum())
        if bad:
            raise NonFiniteAlphaError(
                f"the model's alpha has {bad} non-finite (NaN or infinite) values of "
                f"{alpha.numel()} pixels: its weights are broken (a diverged run?); no matte "
                "for this image"
            )
        return alpha[0, 0].clamp(0.0, 1.0).float().cpu().numpy()

    def refine(self, image: np.ndarray, trimap: np.ndarray, **options) -> np.ndarray:
        """Alpha of ``image`` from a copy of the model first refined on it with ``trimap``; the
        predictor's own model is unchanged. ``options`` replace fields of ``self.refinement``
        (:class:`~alphafree_d2.inference.refine.RefinementPolicy`), e.g.
        ``predictor.refine(image, trimap, steps=50, lr=1e-4, losses={"known": 1, "ddc": 10})``.
        """
        return self(image, trimap, refinement=dataclasses.replace(self.refinement, **options))

    def _check_trimap(self, trimap, size):
        if not self.trimap_input:
            if trimap is not None:
                raise ValueError(
                    "this model is automatic (model.trimap_input=False) and takes no trimap; "
                    "use a trimap-guided config (configs/*_trimap.py) and its checkpoint"
                )
            return None
        if trimap is None:
            raise ValueError(
                "this model is trimap-guided (model.trimap_input=True): pass the trimap too, "
                "predictor(image, trimap) (tools/predict.py --trimap PATH_OR_DIR); uint8 (H, W) "
                "with 0 background, 128 unknown, 255 foreground"
            )
        trimap = np.asarray(trimap)
        if trimap.ndim == 3 and trimap.shape[2] in (1, 3, 4):
            trimap = trimap[:, :, 0]
        if trimap.dtype != np.uint8 or trimap.ndim != 2:
            raise ValueError(
                f"expected a uint8 trimap of shape (H, W), got {trimap.dtype} {trimap.shape}"
            )
        if trimap.shape != tuple(size):
            raise ValueError(
                f"the trimap is {trimap.shape[1]}x{trimap.shape[0]} (WxH) but the image is "
                f"{size[1]}x{size[0]}: they must have the same size"
            )
        return snap_trimap(trimap)

    @staticmethod
    def _as_rgb(image):
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise TypeError(f"expected a uint8 image (0-255), got dtype {image.dtype}")
        if image.ndim == 2:
            return np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim == 3 and image.shape[2] in (3, 4):
            return image[:, :, :3]
        raise ValueError(
            f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}"
        )


def add_predictor_arguments(parser):
    """Add the command-line options of a :class:`MattingPredictor` shared by the tools:
    ``--device``, ``--max-megapixels`` and ``--highres`` (see :class:`HighResolutionPolicy`),
    and ``--max-pixels`` (the pixel cap of every image read: ``args.max_pixels`` is None when
    not given; pass it to :func:`alphafree_d2.data.io.set_max_pixels`). Values are checked by
    the parser, before anything starts."""
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA if visible)"
    )
    parser.add_argument(
        "--max-megapixels",
        type=positive_float,
        default=HighResolutionPolicy.max_megapixels,
        help="pixel budget of the ViT pass; larger images follow --highres",
    )
    parser.add_argument(
        "--highres",
        choices=MODES,
        default=HighResolutionPolicy.mode,
        help="guided: ViT on a downscaled copy, decoder at full resolution (tiles); "
        "resize: all on the downscaled copy, alpha upsampled",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=None,
        metavar="N",
        help="refuse image files that declare more than N pixels, before decoding them "
        f"(default {DEFAULT_MAX_PIXELS:,}; a small file can declare a huge image)",
    )
