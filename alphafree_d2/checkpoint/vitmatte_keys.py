"""Weight names of ViTMatte in three layouts, and the one mapping between them.

- ``ours``: this package's :class:`~alphafree_d2.modeling.ViTMatte` (detectron2's ViT +
  :class:`~alphafree_d2.modeling.decoder.DetailCapture`);
- ``hf``: Hugging Face transformers' ``VitMatteForImageMatting`` (``VitDetBackbone`` +
  ``VitMatteDetailCaptureModule``);
- ``original``: the ViTMatte release (hustvl/ViTMatte, detectron2 layout: the same ViT names as
  ours, ``convstream`` / ``fusion_blks`` / ``matting_head`` in the decoder).

Each row of :data:`_RULES` names one group of weights in the three layouts (``{i}`` a number,
``{rest}`` any tail); :func:`rename` reads them in either direction, so the export to
transformers and the conversion from it use the same table. Values are the same tensors except
the absolute position embedding: transformers always keeps a class-token row in front
(``(1, 1 + g*g, C)``), which a ViT built with ``pretrain_use_cls_token=False`` lacks; the export
puts a zero row there (transformers drops that row before use) and the conversion removes it.
"""

import re
from typing import Dict, List, Tuple

import torch

__all__ = ["LAYOUTS", "rename", "rename_state_dict", "to_hf_state_dict", "from_hf_state_dict"]

LAYOUTS = ("ours", "hf", "original")

_POS_EMBED = {"ours": "backbone.pos_embed", "hf": "backbone.embeddings.position_embeddings"}

# (ours, hf, original)
_RULES = (
    ("backbone.pos_embed", "backbone.embeddings.position_embeddings", "backbone.pos_embed"),
    (
        "backbone.patch_embed.proj.{rest}",
        "backbone.embeddings.projection.{rest}",
        "backbone.patch_embed.proj.{rest}",
    ),
    (
        "backbone.blocks.{i}.attn.{rest}",
        "backbone.encoder.layer.{i}.attention.{rest}",
        "backbone.blocks.{i}.attn.{rest}",
    ),
    # norm1, norm2, mlp.fc1, mlp.fc2 and the conv residual block (conv1-3, norm1-3).
    (
        "backbone.blocks.{i}.{rest}",
        "backbone.encoder.layer.{i}.{rest}",
        "backbone.blocks.{i}.{rest}",
    ),
    (
        "decoder.conv_stream.{i}.0.weight",
        "decoder.convstream.convs.{i}.conv.weight",
        "decoder.convstream.convs.{i}.conv.weight",
    ),
    (
        "decoder.conv_stream.{i}.1.{rest}",
        "decoder.convstream.convs.{i}.batch_norm.{rest}",
        "decoder.convstream.convs.{i}.bn.{rest}",
    ),
    (
        "decoder.fusion.{i}.0.weight",
        "decoder.fusion_blocks.{i}.conv.conv.weight",
        "decoder.fusion_blks.{i}.conv.conv.weight",
    ),
    (
        "decoder.fusion.{i}.1.{rest}",
        "decoder.fusion_blocks.{i}.conv.batch_norm.{rest}",
        "decoder.fusion_blks.{i}.conv.bn.{rest}",
    ),
    # conv 3x3 (0), BatchNorm (1), ReLU (2), conv 1x1 (3) in all three.
    (
        "decoder.head.{i}.{rest}",
        "decoder.matting_head.matting_convs.{i}.{rest}",
        "decoder.matting_head.matting_convs.{i}.{rest}",
    ),
)


def _pattern(template):
    escaped = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)")
    return re.compile("^" + escaped.replace(r"\{rest\}", r"(?P<rest>.+)") + "$")


_COMPILED = [{layout: (_pattern(t), t) for layout, t in zip(LAYOUTS, row)} for row in _RULES]


def rename(key: str, src: str, dst: str):
    """The name in layout ``dst`` of the weight called ``key`` in layout ``src``; None when
    ``key`` is not a ViTMatte weight of ``src``."""
    for row in _COMPILED:
        match = row[src][0].match(key)
        if match:
            return row[dst][1].format(**match.groupdict())
    return None


def rename_state_dict(
    state: Dict[str, torch.Tensor], src: str, dst: str
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``state`` with every key renamed from ``src`` to ``dst`` (see :func:`rename`).

    Returns:
        (renamed, unknown): the renamed tensors and the keys no rule matched (left out).
    """
    for layout in (src, dst):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    renamed, unknown = {}, []
    for key, value in state.items():
        new = rename(key, src, dst)
        if new is None:
            unknown.append(key)
        else:
            renamed[new] = value
    return renamed, unknown


def to_hf_state_dict(state: Dict[str, torch.Tensor], *, cls_token: bool = True):
    """Our model's state dict -> ``VitMatteForImageMatting``'s.

    Args:
        cls_token: whether our position embedding has the class-token row
            (``pretrain_use_cls_token``); without it a zero row is put in front.

    Returns:
        (hf_state, unknown): see :func:`rename_state_dict` (``criterion.*`` keys are left out
        without being listed: the losses hold no weights transformers knows of).
    """
    state = {k: v for k, v in state.items() if not k.startswith("criterion.")}
    hf, unknown = rename_state_dict(state, "ours", "hf")
    pos = hf.get(_POS_EMBED["hf"])
    if pos is not None and not cls_token:
        hf[_POS_EMBED["hf"]] = torch.cat([pos.new_zeros(1, 1, pos.shape[-1]), pos], dim=1)
    return hf, unknown


def from_hf_state_dict(state: Dict[str, torch.Tensor], *, cls_token: bool = True):
    """``VitMatteForImageMatting``'s state dict -> ours; the inverse of :func:`to_hf_state_dict`.

    Args:
        cls_token: whether our position embedding keeps the class-token row
            (``pretrain_use_cls_token``); without it the first row is dropped.
    """
    ours, unknown = rename_state_dict(state, "hf", "ours")
    pos = ours.get(_POS_EMBED["ours"])
    if pos is not None and not cls_token:
        ours[_POS_EMBED["ours"]] = pos[:, 1:]
    return ours, unknown
