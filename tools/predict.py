#!/usr/bin/env python
r"""Alpha mattes, cutouts and composites for images and folders of images.

    python tools/predict.py --config-file configs/am2k_ddc.py --input photos/ extra.jpg \
        --output out/ train.init_checkpoint=output/am2k_ddc/model_final.pth
    python tools/predict.py ... --composite white        # or "#00ff00", "0,255,0", bg.jpg
    python tools/predict.py ... --16bit --device cpu --max-megapixels 2
    python tools/predict.py --config-file configs/demo_ddc_trimap.py --input photos/ \
        --trimap trimaps/ --output out/ train.init_checkpoint=output/demo_ddc_trimap/model_final.pth

Writes out/alpha/<stem>.png, out/cutout/<stem>.png (RGBA) and, with --composite,
out/composite/<stem>.png. Inputs whose outputs all exist are skipped unless --overwrite.
Unusable inputs are reported and the rest goes on; the exit status is 1 when anything was not
processed, 2 when the model cannot be loaded or the output folder cannot be written (checked
before any image is processed). Files of other types in an input folder (.gif, .txt, ...) are
listed in a warning. Large images follow the high-resolution policy of
alphafree_d2/inference/highres.py. A trimap-guided model (configs/*_trimap.py) needs --trimap:
a folder holding <stem>.<ext> for every input image, or one file for a single input image.
"""

import argparse
import os
import re
import sys

from detectron2.config import LazyConfig
from detectron2.utils.logger import setup_logger

from alphafree_d2.checkpoint.matting_checkpointer import PARTIAL_CHECKPOINT_FLAG, CheckpointError
from alphafree_d2.data.io import IMAGE_EXTENSIONS, read_image
from alphafree_d2.engine import ConfigError, apply_overrides
from alphafree_d2.inference.batch import (
    check_output_folders,
    collect_inputs,
    plan_jobs,
    remove_created_folders,
    run_jobs,
    unsupported_files,
)
from alphafree_d2.inference.foreground import parse_color
from alphafree_d2.inference.highres import HighResolutionPolicy
from alphafree_d2.inference.predictor import MattingPredictor, add_predictor_arguments
from alphafree_d2.inference.refine import add_refinement_arguments, refinement_from_args


def get_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="LazyConfig file")
    parser.add_argument(
        "--input", required=True, nargs="+", metavar="PATH", help="images and/or folders"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--16bit", dest="sixteen_bit", action="store_true", help="16-bit alpha")
    parser.add_argument(
        "--composite",
        metavar="COLOR_OR_IMAGE",
        help="also composite over a colour (name, #RRGGBB, R,G,B) or an image file",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo existing outputs")
    add_predictor_arguments(parser)
    parser.add_argument(
        "--trimap",
        metavar="PATH_OR_DIR",
        help="trimaps for a trimap-guided model: a folder with <stem>.<ext> per input image "
        "(0 background, 128 unknown, 255 foreground), or one file for a single input image",
    )
    add_refinement_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        PARTIAL_CHECKPOINT_FLAG,
        action="store_true",
        help="predict even with a checkpoint that leaves model weights random or mismatched",
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        help="config overrides 'path.key=value', e.g. train.init_checkpoint=model_final.pth",
    )
    return parser


def is_override(text):
    """'train.init_checkpoint=x' after the --input list belongs to the overrides, not the inputs
    (argparse gives a nargs='+' option everything up to the next option)."""
    return re.match(r"^[A-Za-z_]\w*(\.\w+)*=", text) is not None and not os.path.exists(text)


def load_background(spec):
    """--composite value -> RGB colour tuple or uint8 RGB image (ValueError if neither)."""
    color = parse_color(spec)
    if color is not None:
        return color
    if not os.path.isfile(spec):
        raise ValueError(
            f"--composite {spec!r} is neither a colour (name, #RRGGBB, R,G,B) nor an image file"
        )
    return read_image(spec, "RGB")


def assign_trimaps(jobs, spec):
    """Set ``job.trimap`` from --trimap (a folder: ``<stem>.<ext>`` per job; a file: the one
    job's). Returns (jobs that have a trimap, problems for those that have none)."""
    from alphafree_d2.inference.batch import Problem

    if os.path.isfile(spec):
        if len(jobs) != 1:
            raise ValueError(
                f"--trimap {spec} is one file but there are {len(jobs)} input images; pass a "
                f"folder with <stem>.<ext> per image"
            )
        jobs[0].trimap = spec
        return jobs, []
    if not os.path.isdir(spec):
        raise ValueError(f"--trimap {spec}: no such file or folder")
    by_stem = {}
    for name in sorted(os.listdir(spec)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
            by_stem.setdefault(stem, os.path.join(spec, name))
    found, problems = [], []
    for job in jobs:
        if job.stem in by_stem:
            job.trimap = by_stem[job.stem]
            found.append(job)
        else:
            missing = f"no trimap {os.path.join(spec, job.stem)}.* found"
            problems.append(Problem(job.source, missing))
    return found, problems


def main(argv=None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    args.opts = [v for v in args.input if is_override(v)] + args.opts
    args.input = [v for v in args.input if not is_override(v)]
    setup_logger(name="alphafree_d2")
    setup_logger(name="fvcore")
    try:
        cfg = apply_overrides(LazyConfig.load(args.config_file), args.opts)
    except ConfigError as e:
        parser.error(str(e))
    try:
        refinement = refinement_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    background = None
    if args.composite is not None:
        try:
            background = load_background(args.composite)
        except ValueError as e:
            parser.error(str(e))

    files, problems = collect_inputs(args.input)
    ignored = unsupported_files(args.input)
    if ignored:
        shown = ", ".join(ignored[:20]) + (
            f", ... ({len(ignored) - 20} more)" if len(ignored) > 20 else ""
        )
        print(
            f"warning: ignored {len(ignored)} files of unsupported types "
            f"(not {', '.join(IMAGE_EXTENSIONS)}): {shown}",
            file=sys.stderr,
        )
    jobs, clashes = plan_jobs(files, args.output, with_composite=background is not None)
    problems += clashes
    if args.trimap is not None:
        try:
            jobs, missing = assign_trimaps(jobs, args.trimap)
        except ValueError as e:
            parser.error(str(e))
        problems += missing
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)

    if args.overwrite or any(job.missing_outputs() for job in jobs):
        try:
            created = check_output_folders(jobs)
        except OSError as e:
            print(f"error: {e.strerror}", file=sys.stderr)
            return 2
        policy = HighResolutionPolicy(max_megapixels=args.max_megapixels, mode=args.highres)
        try:
            predictor = MattingPredictor(
                cfg,
                device=args.device,
                policy=policy,
                allow_partial_checkpoint=args.allow_partial_checkpoint,
                refinement=refinement,
            )
        except (CheckpointError, ValueError) as e:
            remove_created_folders(created)
            print(f"error: {e}", file=sys.stderr)
            return 2
        if predictor.trimap_input != (args.trimap is not None):
            remove_created_folders(created)
            print(
                "error: the model is trimap-guided (model.trimap_input=True): pass --trimap "
                "PATH_OR_DIR"
                if predictor.trimap_input
                else "error: --trimap is for trimap-guided models (configs/*_trimap.py); this "
                "model is automatic",
                file=sys.stderr,
            )
            return 2
    else:
        predictor = None  # nothing to do: do not load the model
    result = run_jobs(
        predictor,
        jobs,
        background=background,
        sixteen_bit=args.sixteen_bit,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    problems += result.problems
    print(
        f"{result.written} written, {result.skipped} skipped (outputs exist), "
        f"{len(problems)} not processed; outputs in {args.output}"
    )
    if problems:
        print(f"not processed ({len(problems)}):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
