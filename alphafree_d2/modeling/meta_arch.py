"""The matting meta-architecture: detectron2's ViT + ViTMatte's detail-capture decoder, trained
with a trimap loss head (known + DDC by default); automatic or trimap-guided."""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone

from .build import build_matting_criterion, build_matting_decoder, matting_input_channels
from .decoder import DetailCapture, decode_tiled

__all__ = ["ViTMatte", "pad_bottom_right", "padded_size"]

Images = Union[torch.Tensor, Sequence[torch.Tensor]]


def padded_size(height: int, width: int, divisibility: int) -> Tuple[int, int]:
    """(height, width) rounded up to multiples of ``divisibility`` (unchanged when it is <= 1)."""
    if divisibility <= 1:
        return height, width
    d = divisibility
    return (height + d - 1) // d * d, (width + d - 1) // d * d


def pad_bottom_right(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., H, W) -> (..., height, width) (at least H, W): zeros appended below and to the right.

    The one padding of the network input (:meth:`ViTMatte.preprocess`): zeros after normalisation
    are the mean colour, and 0 in the trimap channel is background. Tensor operations only (empty
    blocks when nothing is missing), without a Python branch on the sizes, so that a trace or an
    export at one size pads correctly at every other size.
    """
    h, w = x.shape[-2:]
    x = torch.cat([x, x.new_zeros(*x.shape[:-2], height - h, w)], dim=-2)
    return torch.cat([x, x.new_zeros(*x.shape[:-2], height, width - w)], dim=-1)


@META_ARCH_REGISTRY.register()
class ViTMatte(nn.Module):
    """Image matting with a plain ViT and a detail-capture decoder, automatic or trimap-guided.

    Two modes, chosen by ``trimap_input``:

    - automatic (``False``, the paper's setting): image in, alpha out. The trimap is only a
      training label (for the criterion) and an evaluation aid (for the metrics).
    - trimap-guided (``True``, ViTMatte's native mode): the trimap in {0, 0.5, 1} is
      concatenated to the normalised image as a 4th channel, for the ViT (its patch embedding
      needs ``in_chans=4``) and the decoder's detail stream (``image_channels=4``). The network
      predicts alpha for the whole image; training losses see that raw prediction, and at
      inference alpha is copied from the input trimap where it is known (0 or 1), so only the
      unknown band comes from the network (ViTMatte's own inference does not copy: it saves the
      raw prediction). With the trimap as the only label, the known loss then anchors the known
      regions and DDC teaches how alpha follows colour in the band.

    Steps of :meth:`forward`:

    1. :meth:`preprocess`: stack the mapper's ``image`` tensors (uint8, (3, H, W),
       ``input_format`` order), normalise with ``pixel_mean``/``pixel_std`` (0-255 units,
       ``input_format`` order), append the ``trimap`` channel in trimap-guided mode, pad
       bottom/right to a multiple of ``size_divisibility`` (zeros after normalisation);
    2. backbone (detectron2's :class:`~detectron2.modeling.backbone.vit.ViT`) -> :meth:`decode`
       -> alpha (B, 1, H_pad, W_pad), cropped back to each image's size;
    3. training: the criterion gets alpha, the RGB image in [0, 1] (not normalised), the
       ``trimap`` label and, when present, the ground-truth ``alpha``; returns its loss dict.
       Inference: known regions from the trimap in trimap-guided mode, then
       ``[{"alpha": (1, height, width)}]`` in [0, 1], resized (bilinear) to the input dict's
       ``height``/``width`` when those differ from the image size.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: nn.Module,
        decoder: nn.Module,
        criterion: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: str = "RGB",
        size_divisibility: int = 32,
        trimap_input: bool = False,
    ):
        """
        Args:
            trimap_input: trimap-guided mode (see the class docstring); the backbone's patch
                embedding and the decoder's detail stream must then take 4 channels.
        """
        super().__init__()
        if input_format not in ("RGB", "BGR"):
            raise ValueError(f"input_format must be 'RGB' or 'BGR', got {input_format!r}")
        if len(pixel_mean) != 3 or len(pixel_std) != 3:
            raise ValueError(f"pixel_mean/pixel_std need 3 values, got {pixel_mean}, {pixel_std}")
        self.backbone = backbone
        self.decoder = decoder
        self.criterion = criterion
        self.input_format = input_format
        self.size_divisibility = size_divisibility
        self.trimap_input = bool(trimap_input)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self._check_input_channels()

    def _check_input_channels(self):
        expected = self.in_channels
        found = {}
        proj = getattr(getattr(self.backbone, "patch_embed", None), "proj", None)
        if isinstance(proj, nn.Conv2d):
            found["model.backbone.in_chans"] = proj.in_channels
        stream = getattr(self.decoder, "conv_stream", None)
        if stream is not None and len(stream) and isinstance(stream[0][0], nn.Conv2d):
            found["model.decoder.image_channels"] = stream[0][0].in_channels
        wrong = {k: v for k, v in found.items() if v != expected}
        if wrong:
            raise ValueError(
                f"ViTMatte with trimap_input={self.trimap_input} feeds {expected} channels "
                f"(image{' + trimap' if self.trimap_input else ''}), but "
                + ", ".join(f"{k}={v}" for k, v in wrong.items())
                + f"; set them to {expected} (configs/demo_ddc_trimap.py shows the trimap mode)"
            )

    @classmethod
    def from_config(cls, cfg):
        # yacs configs (detectron2's `build_model(cfg)`), keys from `add_alphafree_config`.
        backbone = build_backbone(cfg, ShapeSpec(channels=matting_input_channels(cfg)))
        return {
            "backbone": backbone,
            "decoder": build_matting_decoder(cfg, backbone.output_shape()),
            "criterion": build_matting_criterion(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "input_format": cfg.INPUT.FORMAT,
            "size_divisibility": cfg.MODEL.SIZE_DIVISIBILITY,
            "trimap_input": cfg.MODEL.VITMATTE.TRIMAP_INPUT,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    @property
    def in_channels(self) -> int:
        """Channels of the network input: 3 (image) or 4 (image + trimap)."""
        return 4 if self.trimap_input else 3

    @property
    def supports_tiled_decoding(self) -> bool:
        """Whether :meth:`decode` can run in tiles (a :class:`DetailCapture` decoder)."""
        return isinstance(self.decoder, DetailCapture)

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """
        Args:
            batched_inputs: list of dicts from :class:`alphafree_d2.data.MattingDatasetMapper`:
                "image" uint8 (3, H, W); "trimap" float (1, H, W) in {0, 0.5, 1} for training
                and, in trimap-guided mode, also for inference; optionally "alpha" float
                (1, H, W) for training; for inference optionally "height"/"width" (output size).

        Returns:
            training: dict of named scalar losses; inference: list of {"alpha": (1, h, w)}.
        """
        images = [x["image"].to(self.device, non_blocking=True) for x in batched_inputs]
        trimaps = None
        if self.trimap_input or self.training:
            trimaps = [self._trimap_of(x) for x in batched_inputs]
        if self.training:
            return self._losses(images, trimaps, batched_inputs)
        return self.inference(images, batched_inputs, trimaps if self.trimap_input else None)

    def _trimap_of(self, inputs):
        if "trimap" not in inputs:
            what = "trimap-guided inference" if self.trimap_input else "training"
            name = inputs.get("file_name", inputs.get("image_id", "an input"))
            raise KeyError(
                f"{name}: {what} needs a 'trimap' (float (1, H, W) in {{0, 0.5, 1}}); the "
                f"dataset record needs a 'trimap_file_name'"
            )
        return inputs["trimap"].to(self.device, non_blocking=True)

    # ---------------------------------------------------------------------------------------
    # The single place for normalisation, padding, decoding and known regions.

    def preprocess(
        self, images: Images, trimaps: Optional[Images] = None
    ) -> Tuple[torch.Tensor, List[Tuple[int, int]]]:
        """Network input of a batch of images (and trimaps).

        Args:
            images: a (B, 3, H, W) tensor or a list of (3, H_i, W_i) tensors, uint8 or float,
                0-255, ``input_format`` channel order, on the model's device.
            trimaps: same layout with 1 channel, float in {0, 0.5, 1} (0 background,
                1 foreground); required in trimap-guided mode, ignored otherwise.

        Returns:
            (x, sizes): x (B, C, H_pad, W_pad) float, C = :attr:`in_channels`: the image
            normalised with ``pixel_mean``/``pixel_std`` [, the trimap], zero-padded at the
            bottom/right to multiples of ``size_divisibility``; sizes: [(H_i, W_i)] before
            padding.
        """
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            size = tuple(images.shape[-2:])
            return self._preprocess_batch(images, trimaps), [size] * images.shape[0]
        images = list(images)
        x = [(im.float() - self.pixel_mean) / self.pixel_std for im in images]
        if self.trimap_input:
            trimaps = self._check_trimaps(images, trimaps)
            x = [torch.cat([xi, t.to(xi.dtype)], dim=0) for xi, t in zip(x, trimaps)]
        sizes = [tuple(xi.shape[-2:]) for xi in x]
        hp, wp = padded_size(*map(max, zip(*sizes)), self.size_divisibility)
        return torch.stack([pad_bottom_right(xi, hp, wp) for xi in x]), sizes

    def _preprocess_batch(self, images, trimaps):
        # preprocess() of one batch tensor with tensor operations only: tracing and export see
        # it through predict_alpha, with no Python branch on the batch size.
        x = (images.float() - self.pixel_mean) / self.pixel_std
        if self.trimap_input:
            trimaps = self._check_trimaps(images, trimaps)
            x = torch.cat([x, trimaps.to(x.dtype)], dim=1)
        return pad_bottom_right(x, *padded_size(*images.shape[-2:], self.size_divisibility))

    def _check_trimaps(self, images, trimaps):
        if trimaps is None:
            raise ValueError(
                "this model is trimap-guided (model.trimap_input=True): pass a trimap with "
                "every image (tools/predict.py --trimap, MattingPredictor(...)(image, trimap))"
            )
        pairs = [(images, trimaps)] if isinstance(images, torch.Tensor) else None
        if pairs is None:
            trimaps = list(trimaps)
            if len(trimaps) != len(images):
                raise ValueError(f"{len(images)} images but {len(trimaps)} trimaps")
            pairs = list(zip(images, trimaps))
        for image, trimap in pairs:
            if (
                not isinstance(trimap, torch.Tensor)
                or trimap.dim() != image.dim()
                or trimap.shape[-3] != 1
                or trimap.shape[-2:] != image.shape[-2:]
            ):
                shape = tuple(trimap.shape) if isinstance(trimap, torch.Tensor) else type(trimap)
                raise ValueError(
                    f"trimap {shape} does not match the image {tuple(image.shape)}: expected "
                    f"one channel at the image's size"
                )
        return trimaps

    def encode(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Backbone features of ``x`` (from :meth:`preprocess`, or a resized copy of it)."""
        return self.backbone(x)

    def decode(
        self,
        features: Dict[str, torch.Tensor],
        x: torch.Tensor,
        *,
        tile_size: Optional[int] = None,
        tile_margin: int = 0,
    ) -> torch.Tensor:
        """Decoder on the backbone ``features`` of ``x`` (from :meth:`preprocess`) ->
        alpha (B, 1, H_pad, W_pad) in [0, 1], the raw prediction for every pixel.

        With ``tile_size``, the decoder runs in overlapping tiles (see
        :func:`~alphafree_d2.modeling.decoder.decode_tiled`; needs
        :attr:`supports_tiled_decoding`); ``features`` may then be at any grid.
        """
        if tile_size is None:
            return self.decoder(features, x)
        if not self.supports_tiled_decoding:
            raise ValueError(f"{type(self.decoder).__name__} cannot decode in tiles")
        return decode_tiled(self.decoder, features, x, tile_size, tile_margin)

    def known_regions(self, alpha: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Inference output: in trimap-guided mode, alpha (B, 1, H, W) with the input trimap's
        known pixels (exactly 0 or 1 in the last channel of ``x``, cropped to H, W: the network
        input of :meth:`preprocess`, or the trimaps themselves) copied in; otherwise alpha
        unchanged."""
        if not self.trimap_input:
            return alpha
        trimap = x[:, -1:, : alpha.shape[-2], : alpha.shape[-1]].to(alpha.dtype)
        return torch.where((trimap == 0) | (trimap == 1), trimap, alpha)

    def predict_alpha(
        self, images: torch.Tensor, trimaps: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """(B, 3, H, W) float images in 0-255, ``input_format`` order [, (B, 1, H, W) trimaps in
        {0, 0.5, 1}] -> alpha (B, 1, H, W) in [0, 1] (known regions from the trimap in
        trimap-guided mode).

        The inference-only path, without any Python containers: it is what export uses.
        """
        h, w = images.shape[-2:]
        x = self._preprocess_batch(images, trimaps)
        alpha = self.decode(self.encode(x), x)[:, :, :h, :w]
        return self.known_regions(alpha, x)

    def _losses(self, images, trimaps, batched_inputs):
        sizes = {tuple(im.shape[-2:]) for im in images}
        if len(sizes) != 1:
            raise ValueError(
                f"training images of one batch must share one size (use a fixed-size crop), "
                f"got {sorted(sizes)}"
            )
        gt_alpha = None
        if "alpha" in batched_inputs[0]:
            gt_alpha = torch.stack([x["alpha"] for x in batched_inputs]).to(self.device)
        return self.losses(torch.stack(images).float(), torch.stack(trimaps), gt_alpha)

    def losses(
        self,
        images: torch.Tensor,
        trimaps: torch.Tensor,
        gt_alpha: Optional[torch.Tensor] = None,
        criterion: Optional[nn.Module] = None,
    ) -> Dict[str, torch.Tensor]:
        """The training losses of one batch: the raw prediction (known regions not copied in)
        scored by ``criterion`` (default: the model's own).

        Args:
            images: (B, 3, H, W) float, 0-255, ``input_format`` order, on the model's device.
            trimaps: (B, 1, H, W) float in {0, 0.5, 1}: the label (and, trimap-guided, the input).
            gt_alpha: (B, 1, H, W) in [0, 1], for losses that need ground truth only.
            criterion: a :class:`~alphafree_d2.modeling.losses.MattingCriterion`-like module
                ``(alpha, rgb in [0, 1], trimap, gt_alpha) -> {name: loss}``.

        Returns:
            {"loss_<name>": scalar} as the criterion returns it.
        """
        x = self._preprocess_batch(images, trimaps)
        h, w = images.shape[-2:]
        alpha = self.decode(self.encode(x), x)[:, :, :h, :w]
        rgb = images if self.input_format == "RGB" else images.flip(1)
        criterion = self.criterion if criterion is None else criterion
        return criterion(alpha, rgb / 255.0, trimaps, gt_alpha)

    def inference(self, images, batched_inputs, trimaps=None):
        # Different sizes are padded to one batch, then each prediction is cropped back.
        x, sizes = self.preprocess(images, trimaps)
        alphas = self.decode(self.encode(x), x)
        results = []
        for i, ((h, w), inputs) in enumerate(zip(sizes, batched_inputs)):
            alpha = self.known_regions(alphas[i : i + 1, :, :h, :w], x[i : i + 1])[0]
            out_h, out_w = inputs.get("height", h), inputs.get("width", w)
            if (out_h, out_w) != (h, w):
                alpha = F.interpolate(
                    alpha[None], size=(out_h, out_w), mode="bilinear", align_corners=False
                )[0].clamp(0.0, 1.0)
            results.append({"alpha": alpha})
        return results
