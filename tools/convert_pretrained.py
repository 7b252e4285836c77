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

Whole pretrained ViTMatte models (backbone and decoder; see docs/transformers.md):

    python tools/convert_pretrained.py --format hf-vitmatte HF_FOLDER pretrained/vitmatte_s.pth
    python tools/convert_pretrained.py --format vitmatte ViTMatte_S_Com.pth pretrained/vitmatte_s.pth

hf-vitmatte reads a transformers VitMatteForImageMatting folder (config.json, model.safetensors
or pytorch_model.bin, preprocessor_config.json), or one weights file beside its config.json, and
prints the config overrides (model.*) of the same network; vitmatte reads the original release's
detectron2-layout checkpoints. --in-chans defaults to the checkpoint's own; --in-chans 4 on a
3-channel model zero-fills the trimap channel. With --config-file, an hf-vitmatte conversion must
match the config's model (settings and every weight) and, with transformers installed, is run
against the transformers model (same input tensor max |diff| <= 1e-5, each side's own
preprocessing mean |diff| <= 1e-3 in the unknown band); exit status 1 otherwise.
"""

import argparse
import os
import sys

import torch

from alphafree_d2.checkpoint import convert_vit_checkpoint, load_pretrained_state_dict
from alphafree_d2.checkpoint.pretrained import FORMATS
from alphafree_d2.checkpoint.vitmatte import (
    check_output_apart,
    convert_hf_vitmatte,
    convert_original_vitmatte,
)
from alphafree_d2.checkpoint.vitmatte_config import format_overrides
from alphafree_d2.utils.file_io import atomic_write

VITMATTE_FORMATS = ("hf-vitmatte", "vitmatte")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("input", help="the downloaded checkpoint")
    p.add_argument("output", help="where to write the converted checkpoint (.pth)")
    p.add_argument("--format", required=True, choices=FORMATS + VITMATTE_FORMATS)
    p.add_argument(
        "--pretrain-img-size", type=int, default=224, help="the model's ViT pretrain_img_size"
    )
    p.add_argument("--patch-size", type=int, default=16)
    p.add_argument(
        "--in-chans",
        type=int,
        default=None,
        choices=(3, 4),
        help="the model's ViT in_chans: 4 for a trimap-guided model (trimap channel zero-filled "
        "when the checkpoint has 3); default 3 for dino/mae/timm, the checkpoint's own for "
        "hf-vitmatte/vitmatte",
    )
    p.add_argument("--config-file", help="check the result against this config's model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--check-sizes",
        nargs="+",
        default=["384x640", "725x533"],
        metavar="HxW",
        help="hf-vitmatte with --config-file: image sizes to compare with transformers at",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.path.exists(args.output) and not args.overwrite:
        sys.exit(f"{args.output} exists; pass --overwrite to replace it")
    if args.format in VITMATTE_FORMATS:
        try:
            return convert_vitmatte(args)
        except (ValueError, OSError, ImportError) as e:  # bad files, refused settings, no extra
            sys.exit(f"error: {e}")
    state = load_pretrained_state_dict(args.input, args.format)
    model_state, report = convert_vit_checkpoint(
        state,
        pretrain_img_size=args.pretrain_img_size,
        patch_size=args.patch_size,
        in_chans=args.in_chans or 3,
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
    save(model_state, args)


def save(model_state, args):
    with atomic_write(args.output) as f:  # creates the folder; no half-written file on a kill
        torch.save(
            {
                "model": model_state,
                "__author__": f"alphafree_d2 convert_pretrained ({args.format})",
            },
            f,
        )
    print(f"wrote {args.output}")


def convert_vitmatte(args):
    """The whole model (backbone + decoder) of a pretrained ViTMatte."""
    check_output_apart(args.input, args.output)
    if args.format == "vitmatte":
        model_state, report = convert_original_vitmatte(args.input, args.in_chans)
        settings = None
        print(f"converted {report['converted']} tensors; dropped: {report['dropped']}")
    else:
        model_state, settings, report = convert_hf_vitmatte(args.input, args.in_chans)
        print(f"converted {report['converted']} tensors (backbone and decoder)")
        if report["dropped_blocks"]:
            print(
                f"blocks {report['dropped_blocks']} left out: transformers decodes an earlier block"
            )
        if report["processor"] is None:
            print(
                "no preprocessor_config.json: the normalisation (model.pixel_mean/std) is unknown"
            )
        print(
            "the same network in this package's configs:\n  " + " ".join(format_overrides(settings))
        )
    if args.config_file:
        from detectron2.config import LazyConfig

        import alphafree_d2  # noqa: F401
        from alphafree_d2.inference.hf import check_against_config, report_lines

        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.check_sizes]
        src = args.input if settings is not None else None
        cfg = LazyConfig.load(args.config_file)
        report = check_against_config(cfg, model_state, settings, src, sizes)
        if report["overrides"]:
            print(f"with {args.config_file} add:\n  " + " ".join(report["overrides"]))
        for line in report["mismatches"] + report["load"]:
            print(f"  {line}")
        if report["mismatches"] or report["load"]:
            sys.exit(f"{args.config_file}: its model is not this network (see above)")
        print("\n".join(report_lines(report)) or "every weight of the config's model loads")
        if not report["ok"]:
            sys.exit(f"error: a difference exceeds its limit: {report['worst']}")
    save(model_state, args)


if __name__ == "__main__":
    main()
