#!/usr/bin/env python
r"""Export the inference forward to TorchScript and/or ONNX, or the model to Hugging Face
transformers, and check it against PyTorch.

    python tools/export.py --config-file configs/am2k_ddc.py --output export/ --format both \
        train.init_checkpoint=output/am2k_ddc/model_final.pth

Writes DIR/model.torchscript.pt and/or DIR/model.onnx, with dynamic batch, height and width:
input "image" (B, 3, H, W) uint8 (or float32 with --input-dtype float32), 0-255, in the model's
input_format order (RGB for the shipped configs); a trimap-guided model (configs/*_trimap.py) has
a second input "trimap" (B, 1, H, W) of the same dtype, 0 background, 128 unknown, 255
foreground; output "alpha" (B, 1, H, W) float32 in [0, 1].
Each file is then run (TorchScript in PyTorch, ONNX with onnxruntime on CPU) on random images
of the --check-sizes, which differ from the export size, and compared with the eager
predict_alpha; the max abs differences are printed and saved in DIR/export.json. The exit status
is 1 when one exceeds --tolerance. See alphafree_d2/inference/export.py for what the wrapper does
to keep the graph size-generic.

--format hf writes a folder for transformers' VitMatteForImageMatting.from_pretrained(DIR) and
VitMatteImageProcessor.from_pretrained(DIR) (config.json, model.safetensors,
preprocessor_config.json; needs pip install -e .[hf]), loads it back offline and compares, at
the --check-sizes: the same input tensor (max |diff| <= 1e-5), each side's own preprocessing
(mean |diff| over the trimap's unknown pixels <= 1e-3; transformers' unknown trimap value is
128/255, ours 0.5) and ours -> transformers -> ours (identical); exit status 1 above those.
Settings transformers cannot hold exactly (e.g. model.decoder.head_channels other than 16) are
refused by name. See alphafree_d2/inference/hf.py and docs/transformers.md.
"""

import argparse
import os
import sys

import torch

from detectron2.utils.logger import setup_logger

from alphafree_d2.checkpoint.matting_checkpointer import CheckpointError
from alphafree_d2.engine import ConfigError, add_overrides_argument, load_config, parse_args
from alphafree_d2.inference.export import (
    ONNX_EXPORTERS,
    compare_onnx,
    compare_torchscript,
    export_onnx,
    export_torchscript,
    random_images,
)
from alphafree_d2.inference.predictor import build_inference_model
from alphafree_d2.utils.file_io import write_json


def size(text):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 480x640), got {text!r}")
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return h, w


def get_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="LazyConfig file")
    parser.add_argument("--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--format", choices=["torchscript", "onnx", "both", "hf"], default="both")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17)")
    parser.add_argument(
        "--onnx-exporter",
        choices=ONNX_EXPORTERS,
        default="dynamo",
        help="dynamo: torch.export-based (default); torchscript: legacy, faster, deprecated",
    )
    parser.add_argument("--export-size", type=size, default=(512, 512), metavar="HxW")
    parser.add_argument(
        "--check-sizes",
        type=size,
        nargs="+",
        default=[(384, 640), (725, 533)],
        metavar="HxW",
        help="sizes to compare at (should differ from --export-size)",
    )
    parser.add_argument("--input-dtype", choices=["uint8", "float32"], default="uint8")
    parser.add_argument("--device", default="cpu", help="device to trace on (cpu, cuda)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference")
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="export randomly initialised weights (to test the export itself)",
    )
    add_overrides_argument(parser)
    return parser


def main(argv=None) -> int:
    parser = get_parser()
    args = parse_args(parser, argv)  # options before or after the overrides
    setup_logger(name="alphafree_d2")
    setup_logger(name="fvcore")
    try:
        cfg = load_config(args.config_file, args.opts)
    except ConfigError as e:
        parser.error(str(e))
    try:
        model = build_inference_model(cfg, device=args.device, random_init=args.random_init)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.format == "hf":
        return export_hf(model, args)
    dtype = getattr(torch, args.input_dtype)
    example = random_images(args.export_size, dtype, model.pixel_mean.device)
    report = {
        "config_file": args.config_file,
        "checkpoint": None if args.random_init else cfg.train.init_checkpoint,
        "input": {
            "name": "image",
            "shape": ["batch", 3, "height", "width"],
            "dtype": args.input_dtype,
            "range": [0, 255],
            "channel_order": model.input_format,
        },
        **(
            {
                "trimap": {
                    "name": "trimap",
                    "shape": ["batch", 1, "height", "width"],
                    "dtype": args.input_dtype,
                    "values": {"background": 0, "unknown": 128, "foreground": 255},
                }
            }
            if model.trimap_input
            else {}
        ),
        "output": {"name": "alpha", "shape": ["batch", 1, "height", "width"], "range": [0, 1]},
        "export_size": list(args.export_size),
        "max_abs_diff": {},
    }
    os.makedirs(args.output, exist_ok=True)
    if args.format in ("torchscript", "both"):
        path = os.path.join(args.output, "model.torchscript.pt")
        traced = export_torchscript(model, path, example)
        report["torchscript"] = path
        report["max_abs_diff"]["torchscript"] = compare_torchscript(
            model, traced, args.check_sizes, dtype
        )
    if args.format in ("onnx", "both"):
        path = os.path.join(args.output, "model.onnx")
        export_onnx(model.cpu(), path, example.cpu(), args.opset, args.onnx_exporter)
        report["onnx"] = path
        report["onnx_opset"] = args.opset
        report["onnx_exporter"] = args.onnx_exporter
        report["max_abs_diff"]["onnxruntime_cpu"] = compare_onnx(
            model, path, args.check_sizes, dtype
        )
    write_json(os.path.join(args.output, "export.json"), report, indent=2)
    worst = 0.0
    for backend, diffs in report["max_abs_diff"].items():
        for hw, diff in diffs.items():
            print(f"{backend:16s} {hw:>10s}  max |diff| vs PyTorch = {diff:.3g}")
            worst = max(worst, diff)
    if worst > args.tolerance:
        print(f"error: max abs difference {worst:.3g} > --tolerance {args.tolerance}")
        return 1
    return 0


def export_hf(model, args) -> int:
    from alphafree_d2.checkpoint.vitmatte_config import NotExportableError
    from alphafree_d2.inference.hf import export_hf_checked, report_lines

    try:
        report = export_hf_checked(model.cpu(), args.output, args.check_sizes)
    except (NotExportableError, FileExistsError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report.update(config_file=args.config_file, format="hf")
    write_json(os.path.join(args.output, "export.json"), report, indent=2)
    print(f"wrote {', '.join(report['files'])}")
    print("\n".join(report_lines(report)))
    if not report["ok"]:
        print(f"error: a difference exceeds its limit: {report['worst']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
