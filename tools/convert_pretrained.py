#!/usr/bin/env python
"""Convert pretrained ViT weights to a checkpoint for this package's ViTMatte backbone.

    python tools/convert_pretrained.py --format dino dino_deitsmall16_pretrain.pth pretrained/dino_vit_s16.pth
    python tools/convert_pretrained.py --format mae mae_pretrain_vit_base.pth pretrained/mae_vit_b16.pth
    python tools/convert_pretrained.py --format timm vit_small_patch16_224.pth pretrained/timm_vit_s16.pth

then train with ``train.init_checkpoint=pretrained/dino_vit_s16.pth``. For a trimap-guided model
(configs/*_trimap.py) add ``--in-chans 4``: the trimap channel of the patch embedding starts at 0. Downloads (for users with
internet): DINO ViT-S/16 https://dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth,
MAE ViT-B/16 https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth.
With ``--config-file`` the result is loaded into that config's model and the keys the model
initialises itself are listed.
"""

import argparse
import os
import sys

import torch

from alphafree_d2.checkpoint import convert_vit_checkpoint, load_pretrained_state_dict
from alphafree_d2.checkpoint.pretrained import FORMATS
from alphafree_d2.utils.file_io import atomic_write


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("input", help="the downloaded checkpoint")
    p.add_argument("output", help="where to write the converted checkpoint (.pth)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument(
        "--pretrain-img-size", type=int, default=224, help="the model's ViT pretrain_img_size"
    )
    p.add_argument("--patch-size", type=int, default=16)
    p.add_argument(
        "--in-chans",
        type=int,
        default=3,
        choices=(3, 4),
        help="the model's ViT in_chans: 4 for a trimap-guided model (trimap channel zero-filled)",
    )
    p.add_argument("--config-file", help="check the result against this config's model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.path.exists(args.output) and not args.overwrite:
        sys.exit(f"{args.output} exists; pass --overwrite to replace it")
    state = load_pretrained_state_dict(args.input, args.format)
    model_state, report = convert_vit_checkpoint(
        state,
        pretrain_img_size=args.pretrain_img_size,
        patch_size=args.patch_size,
        in_chans=args.in_chans,
    )
    print(f"converted {len(report['converted'])} tensors; dropped: {sorted(report['dropped'])}")
    if args.config_file:
        from detectron2.config import LazyConfig, instantiate

        import alphafree_d2  # noqa: F401

        model = instantiate(LazyConfig.load(args.config_file).model)
        result = model.load_state_dict(model_state, strict=False)
        if result.unexpected_keys:
            sys.exit(f"keys the model does not have: {result.unexpected_keys}")
        fresh = sorted({k.rsplit(".", 1)[0] for k in result.missing_keys})
        print(f"initialised by the model ({len(result.missing_keys)} tensors): {fresh}")
    with atomic_write(args.output) as f:  # creates the folder; no half-written file on a kill
        torch.save(
            {
                "model": model_state,
                "__author__": f"alphafree_d2 convert_pretrained ({args.format})",
            },
            f,
        )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
