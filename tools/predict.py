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
Options and config overrides may come in any order. Unusable inputs (unreadable, above the
--max-pixels cap, a model output with NaN) are reported and the rest goes on; the exit status
is 1 when anything was not processed, 2 when the model cannot be loaded, the output folder
cannot be written or an output would be an input (checked before any image is processed),
130 after Ctrl+C (finished outputs kept, no partial file). Files of other types in an input
folder (.gif, .txt, ...) are listed in a warning. Large images follow the high-resolution
policy of alphafree_d2/inference/highres.py. A trimap-guided model (configs/*_trimap.py) needs
--trimap: a folder holding <stem>.<ext> for every input image, or one file for a single input
image (turned like its photo when the photo has an EXIF orientation and the trimap its stored
size).
"""

import argparse
import sys

from detectron2.utils.logger import setup_logger

from alphafree_d2.checkpoint.matting_checkpointer import PARTIAL_CHECKPOINT_FLAG, CheckpointError
from alphafree_d2.data.io import IMAGE_EXTENSIONS, set_max_pixels
from alphafree_d2.engine import ConfigError, add_overrides_argument, load_config, parse_args
from alphafree_d2.inference.batch import (
    assign_trimaps,
    check_output_folders,
    check_outputs_apart,
    collect_inputs,
    load_background,
    plan_jobs,
    remove_created_folders,
    run_jobs,
    unsupported_files,
)
from alphafree_d2.inference.highres import HighResolutionPolicy
from alphafree_d2.inference.predictor import MattingPredictor, add_predictor_arguments
from alphafree_d2.inference.refine import add_refinement_arguments, refinement_from_args

EXIT_INTERRUPTED = 130


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
    add_overrides_argument(parser)
    return parser


def main(argv=None) -> int:
    parser = get_parser()
    args = parse_args(parser, argv)
    previous_cap = set_max_pixels(args.max_pixels)
    try:
        return _predict(parser, args)
    except KeyboardInterrupt:  # before or after the batch (the batch reports its own)
        print("interrupted (Ctrl+C); nothing more was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        set_max_pixels(previous_cap)


def _predict(parser, args) -> int:
    setup_logger(name="alphafree_d2")
    setup_logger(name="fvcore")
    try:
        cfg = load_config(args.config_file, args.opts)
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
    try:
        given = args.input + ([args.trimap] if args.trimap else [])
        image_background = background is not None and not isinstance(background, tuple)
        check_outputs_apart(jobs, given, [args.composite] if image_background else [])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
        except (CheckpointError, ValueError, KeyboardInterrupt) as e:
            remove_created_folders(created)
            if isinstance(e, KeyboardInterrupt):
                raise
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
    if result.interrupted:
        print(
            "interrupted (Ctrl+C): the batch stopped; the outputs written are complete, run "
            "the same command again to do the rest",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
