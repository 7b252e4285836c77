#!/usr/bin/env python
"""Generate seeded trimap labels (or coarse mask labels) from a folder of alpha mattes.

    python tools/alpha_to_trimap.py ALPHA_DIR OUTPUT_DIR [--seed N] [--kernel-size K]
                                    [--workers N] [--overwrite] [--mask | --official]

Each matte ``ALPHA_DIR/<stem>.<ext>`` gives ``OUTPUT_DIR/<stem>.png`` with values 0/128/255
(``--mask``: 0/255). Foreground (alpha == 1, i.e. 255 in 8-bit files, 65535 in 16-bit files) and
background (alpha == 0) are eroded separately with elliptical kernels drawn in [1, 30] per image
(paper, Sec. 4.1) or fixed with ``--kernel-size`` (Table 6: 10, 20, 30). Kernel sizes are in pixels
of the image resized to 640 x 640, as in the paper's code (``--reference-size 0``: native pixels).
``--official`` follows the paper's official ``alpha2trimap.py`` instead: the matte is resized to
640 x 640 with a random interpolation (nearest, linear, cubic or Lanczos), eroded there with
kernels drawn in [1, 29], and the trimap resized back with nearest (the labels the paper's
numbers were trained on; the script itself is not seeded, this one is).
The same seed gives byte-identical files whatever the order or the number of workers.
See ``alphafree_d2/data/trimap.py`` for the exact rules.
"""

import argparse
import logging
import os
import sys

from alphafree_d2.data.trimap import (
    DEFAULT_KERNEL_SIZE_RANGE,
    DEFAULT_REFERENCE_SIZE,
    OFFICIAL_KERNEL_SIZE_RANGE,
    generate_trimaps,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("alpha_dir", metavar="ALPHA_DIR", help="folder of alpha mattes")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="folder for the <stem>.png labels")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    parser.add_argument(
        "--kernel-size",
        type=int,
        default=None,
        help="fixed erosion kernel size (default: random per image)",
    )
    parser.add_argument(
        "--kernel-range",
        type=int,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=None,
        help="inclusive range of random kernel sizes (default: %d %d; with --official: %d %d)"
        % (*DEFAULT_KERNEL_SIZE_RANGE, *OFFICIAL_KERNEL_SIZE_RANGE),
    )
    parser.add_argument(
        "--reference-size",
        type=int,
        default=None,
        help="resolution kernel sizes refer to (default: %d, as in the paper; 0: native pixels; "
        "not with --official, which always works at 640 x 640)" % DEFAULT_REFERENCE_SIZE,
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--mask",
        action="store_true",
        help="write coarse segmentation-mask labels (paper, Appendix B)",
    )
    kind.add_argument(
        "--official",
        action="store_true",
        help="trimaps as the official alpha2trimap.py makes them (640 x 640 resize with a random "
        "interpolation, kernels in [1, 29], nearest back)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="worker processes (default: CPUs, at most 8)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="regenerate labels that already exist"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.official and args.reference_size is not None:
        print("error: --reference-size does not apply to --official (always 640)", file=sys.stderr)
        return 2
    reference_size = DEFAULT_REFERENCE_SIZE if args.reference_size is None else args.reference_size
    try:
        summary = generate_trimaps(
            args.alpha_dir,
            args.output_dir,
            seed=args.seed,
            kernel_size=args.kernel_size,
            kernel_size_range=None if args.kernel_range is None else tuple(args.kernel_range),
            reference_size=reference_size or None,
            mask=args.mask,
            official=args.official,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{args.output_dir}: {summary['written']} written, {summary['kept']} existing kept"
        + (" (--overwrite regenerates them)" if summary["kept"] else "")
        + f", {summary['total']} mattes in {args.alpha_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
