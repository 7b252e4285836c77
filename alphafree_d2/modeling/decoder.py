"""ViTMatte's detail-capture decoder (Yao et al., "ViTMatte", 2024), written for this package.

A plain ViT sees the image at 1/16 resolution. The decoder recovers detail with a light
convolutional stream on the image (strides 2, 4, 8) and fuses it with the ViT feature while
upsampling back to full resolution, then predicts alpha with a sigmoid.
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["DetailCapture", "decode_tiled"]


def _conv_bn_relu(in_channels, out_channels, stride):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DetailCapture(nn.Module):
    """Detail-capture decoder: conv stream + fusion blocks + matting head.

    Args:
        in_channels: channels of the backbone feature (384 for ViT-S, 768 for ViT-B).
        in_feature: name of the backbone output to decode (detectron2's ViT: "last_feat").
        image_channels: channels of the (normalised) image fed to the conv stream.
        conv_channels: output channels of the stride-2 conv stream stages (1/2, 1/4, 1/8, ...).
        fusion_channels: output channels of the fusion blocks, one more than ``conv_channels``
            (the last one fuses with the full-resolution image).
        head_channels: hidden channels of the matting head.
    """

    def __init__(
        self,
        in_channels: int = 384,
        *,
        in_feature: str = "last_feat",
        image_channels: int = 3,
        conv_channels: Sequence[int] = (48, 96, 192),
        fusion_channels: Sequence[int] = (256, 128, 64, 32),
        head_channels: int = 16,
    ):
        super().__init__()
        if len(fusion_channels) != len(conv_channels) + 1:
            raise ValueError(
                f"fusion_channels needs one entry more than conv_channels, got "
                f"{list(fusion_channels)} and {list(conv_channels)}"
            )
        self.in_feature = in_feature
        stream = [image_channels, *conv_channels]
        self.conv_stream = nn.ModuleList(
            _conv_bn_relu(c_in, c_out, stride=2) for c_in, c_out in zip(stream[:-1], stream[1:])
        )
        # Fusion i takes the upsampled previous output and the conv-stream feature of the same
        # resolution, deepest first: 1/8, 1/4, 1/2, then the image itself.
        fused_in = [in_channels, *fusion_channels[:-1]]
        skips = stream[::-1]
        self.fusion = nn.ModuleList(
            _conv_bn_relu(c_prev + c_skip, c_out, stride=1)
            for c_prev, c_skip, c_out in zip(fused_in, skips, fusion_channels)
        )
        self.head = nn.Sequential(
            nn.Conv2d(fusion_channels[-1], head_channels, 3, padding=1),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, 1, 1),
        )

    def forward(self, features, images):
        """
        Args:
            features: dict with ``in_feature``: (B, in_channels, H / 2^k, W / 2^k) where
                k = len(fusion_channels) (16 for a patch-16 ViT with three conv stages).
            images: (B, image_channels, H, W) normalised images, H and W multiples of 2^k.

        Returns:
            alpha: (B, 1, H, W) in [0, 1].
        """
        skips = [images]
        for stage in self.conv_stream:
            skips.append(stage(skips[-1]))
        x = features[self.in_feature]
        for block, skip in zip(self.fusion, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([skip, x], dim=1))
        return torch.sigmoid(self.head(x))


def _tile_starts(length, tile):
    return list(range(0, length, tile))


def decode_tiled(decoder: DetailCapture, features, images, tile_size=1536, tile_margin=64):
    """Run a :class:`DetailCapture` decoder over overlapping tiles.

    Args:
        decoder: the decoder; ``len(decoder.conv_stream)`` stride-2 stages (s = 2^stages).
        features: dict with ``decoder.in_feature``: (B, C, h, w), any h, w: it is resized
            (bilinear) to the decoder's coarsest grid (H / s, W / s) once, as the decoder would.
        images: (B, C, H, W) normalised network input (image [+ trimap]), H and W multiples of s.
        tile_size, tile_margin: kept tile side and discarded context, multiples of s.

    Returns:
        alpha (B, 1, H, W) in [0, 1]; equal to ``decoder(features, images)`` when the margin
        covers the decoder's receptive field (up to float rounding).
    """
    h, w = images.shape[-2:]
    s = 2 ** len(decoder.conv_stream)
    if h % s or w % s or tile_size % s or tile_margin % s:
        raise ValueError(
            f"decode_tiled needs the image size {h}x{w}, tile_size {tile_size} and tile_margin "
            f"{tile_margin} to be multiples of the decoder stride {s}"
        )
    if h <= tile_size + 2 * tile_margin and w <= tile_size + 2 * tile_margin:
        return decoder(features, images)
    coarse = F.interpolate(
        features[decoder.in_feature], size=(h // s, w // s), mode="bilinear", align_corners=False
    )
    alpha = images.new_empty((images.shape[0], 1, h, w))
    for y0 in _tile_starts(h, tile_size):
        for x0 in _tile_starts(w, tile_size):
            y1, x1 = min(y0 + tile_size, h), min(x0 + tile_size, w)
            ey0, ex0 = max(y0 - tile_margin, 0), max(x0 - tile_margin, 0)
            ey1, ex1 = min(y1 + tile_margin, h), min(x1 + tile_margin, w)
            # The decoder's own resize of an already (h/s, w/s)-sized crop is the identity.
            crop = {decoder.in_feature: coarse[:, :, ey0 // s : ey1 // s, ex0 // s : ex1 // s]}
            out = decoder(crop, images[:, :, ey0:ey1, ex0:ex1])
            alpha[:, :, y0:y1, x0:x1] = out[:, :, y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]
    return alpha
