#!/usr/bin/env python
"""Generate the trimap labels of a COCO instances json once, before training.

    python datasets/prepare_coco_matting.py data/annotations.json [--trimap-root DIR]
        [--category-ids 1 2] [--seed 0] [--kernel-size-range 10 30 | --kernel-size K]
        [--reference-size 640] [--skip-unlabeled] [--overwrite]

The union of each image's chosen instances (polygons or RLE) is the foreground; foreground and
background are eroded separately with seeded elliptical kernels, leaving an unknown band around
the outline (``alphafree_d2/data/datasets/register_coco.py``). Writes ``<stem>.png`` (0/128/255)
and ``generation.json`` into ``--trimap-root`` (default ``<json folder>/<json stem>_trimaps``),
each file atomically; existing trimaps are kept unless ``--overwrite``. Then register the
dataset with the same parameters::

    register_coco_matting_dataset("mine", "data/annotations.json", "data/images",
                                  category_ids=[1], seed=0)

Loading it only reads these files (safe in every process of a multi-GPU run) and names this
command when they are missing or were made with other parameters.
"""

import argparse
import sys

from alphafree_d2.data.datasets.register_coco import (
    COCO_KERNEL_SIZE_RANGE,
    prepare_coco_matting_trimaps,
)
from alphafree_d2.data.trimap import DEFAULT_REFERENCE_SIZE


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("json_file", metavar="JSON", help="COCO instances json")
    parser.add_argument(
        "--trimap-root", help="output folder (default: <json folder>/<json stem>_trimaps)"
    )
    parser.add_argument(
        "--category-ids", type=int, nargs="+", help="foreground categories (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--kernel-size", type=int, help="fixed erosion kernel size")
    sizes.add_argument(
        "--kernel-size-range",
        type=int,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=list(COCO_KERNEL_SIZE_RANGE),
        help="kernel sizes drawn per image in [LOW, HIGH] (default: %(default)s)",
    )
    parser.add_argument(
        "--reference-size",
        type=int,
        default=DEFAULT_REFERENCE_SIZE,
        help="kernel sizes are in pixels at this resolution; 0: native pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--skip-unlabeled", action="store_true", help="leave out images without a chosen instance"
    )
    parser.add_argument("--overwrite", action="store_true", help="regenerate every trimap")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        stats = prepare_coco_matting_trimaps(
            args.json_file,
            args.trimap_root,
            category_ids=args.category_ids,
            seed=args.seed,
            kernel_size=args.kernel_size,
            kernel_size_range=tuple(args.kernel_size_range),
            reference_size=args.reference_size or None,
            skip_unlabeled=args.skip_unlabeled,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"{stats['trimap_root']}: {stats['written']} trimaps written, {stats['kept']} kept "
        f"({stats['total']} images)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
