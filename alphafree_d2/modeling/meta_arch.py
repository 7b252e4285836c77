"""The matting meta-architecture: detectron2's ViT + ViTMatte's detail-capture decoder, trained
with a trimap loss head (known + DDC by default)."""
from typing import Dict, List, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList

from .build import build_matting_criterion, build_matting_decoder

__all__ = ["ViTMatte"]


@META_ARCH_REGISTRY.register()
class ViTMatte(nn.Module):
    """Automatic matting: image in, alpha out (no trimap input; the trimap is only a label).

    Steps of :meth:`forward`:

    1. stack the mapper's ``image`` tensors (uint8, (3, H, W), ``input_format`` order),
       normalise with ``pixel_mean``/``pixel_std`` (0-255 units, ``input_format`` order);
    2. pad bottom/right to a multiple of ``size_divisibility`` (zeros after normalisation);
    3. backbone (detectron2's :class:`~detectron2.modeling.backbone.vit.ViT`) -> decoder ->
       alpha (B, 1, H_pad, W_pad), cropped back to each image's size;
    4. training: the criterion gets alpha, the RGB image in [0, 1] (not normalised), the
       ``trimap`` label and, when present, the ground-truth ``alpha``; returns its loss dict.
       Inference: ``[{"alpha": (1, height, width)}]`` in [0, 1], resized (bilinear) to the
       input dict's ``height``/``width`` when those differ from the image size.
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
    ):
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
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        # yacs configs (detectron2's `build_model(cfg)`), keys from `add_alphafree_config`.
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "decoder": build_matting_decoder(cfg, backbone.output_shape()),
            "criterion": build_matting_criterion(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "input_format": cfg.INPUT.FORMAT,
            "size_divisibility": cfg.MODEL.SIZE_DIVISIBILITY,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """
        Args:
            batched_inputs: list of dicts from :class:`alphafree_d2.data.MattingDatasetMapper`:
                "image" uint8 (3, H, W); for training also "trimap" float (1, H, W) in
                {0, 0.5, 1} and optionally "alpha" float (1, H, W); for inference optionally
                "height"/"width" (output size).

        Returns:
            training: dict of named scalar losses; inference: list of {"alpha": (1, h, w)}.
        """
        images = [x["image"].to(self.device, non_blocking=True) for x in batched_inputs]
        if self.training:
            return self._losses(images, batched_inputs)
        return self.inference(images, batched_inputs)

    def predict_alpha(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images in 0-255, ``input_format`` order -> alpha (B, 1, H, W).

        The inference-only path, without any Python containers: it is what export uses.
        """
        h, w = images.shape[-2:]
        x = (images - self.pixel_mean) / self.pixel_std
        d = self.size_divisibility
        pad_h, pad_w = (d - h % d) % d, (d - w % d) % d
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        alpha = self.decoder(self.backbone(x), x)
        return alpha[:, :, :h, :w]

    def _losses(self, images, batched_inputs):
        sizes = {tuple(im.shape[-2:]) for im in images}
        if len(sizes) != 1:
            raise ValueError(
                f"training images of one batch must share one size (use a fixed-size crop), "
                f"got {sorted(sizes)}"
            )
        images = torch.stack(images).float()
        alpha = self.predict_alpha(images)
        rgb = images if self.input_format == "RGB" else images.flip(1)

        def stacked(key):
            return torch.stack([x[key] for x in batched_inputs]).to(self.device)

        gt_alpha = stacked("alpha") if "alpha" in batched_inputs[0] else None
        return self.criterion(alpha, rgb / 255.0, stacked("trimap"), gt_alpha)

    def inference(self, images, batched_inputs):
        # Different sizes are padded to one batch, then each prediction is cropped back.
        batch = ImageList.from_tensors(
            [(im.float() - self.pixel_mean) / self.pixel_std for im in images],
            self.size_divisibility,
        )
        alphas = self.decoder(self.backbone(batch.tensor), batch.tensor)
        results = []
        for alpha, (h, w), inputs in zip(alphas, batch.image_sizes, batched_inputs):
            alpha = alpha[:, :h, :w]
            out_h, out_w = inputs.get("height", h), inputs.get("width", w)
            if (out_h, out_w) != (h, w):
                alpha = F.interpolate(
                    alpha[None], size=(out_h, out_w), mode="bilinear", align_corners=False
                )[0].clamp(0.0, 1.0)
            results.append({"alpha": alpha})
        return results
