#!/usr/bin/env python
"""Generate the training trimap labels of AM-2K and P3M-10K once, beside their alpha mattes.

    python datasets/prepare_matting_trimaps.py [am2k] [p3m10k] [--root DIR] [--seed 0] [--workers N]

writes ``AM-2K/train/trimap_generated/`` from ``AM-2K/train/mask/`` and
``P3M-10k/train/trimap_generated/`` from ``P3M-10k/train/mask/`` (the folders that ``am2k_train``
and ``p3m10k_train`` read), with the paper's setting: fg and bg eroded separately with elliptical
kernels drawn in [1, 30] per image at the 640 px reference resolution (Sec. 4.1), seed 0.
``--mask`` writes coarse segmentation-mask labels into ``mask_generated/`` instead (Appendix B,
Table 7; dataset ``am2k_train_mask``); ``--kernel-size K`` a fixed erosion kernel into
``trimap_generated_k<K>/`` (Table 6; ``am2k_train_trimap_k10/20/30``); ``--official`` the
labels of the paper's official ``alpha2trimap.py`` (640 x 640 resize with a random interpolation,
kernels in [1, 29]) into ``trimap_generated_official/`` (datasets ``am2k_train_trimap_official``,
``p3m10k_train_trimap_official``; ``configs/am2k_ddc_official.py``). Existing files are kept
unless ``--overwrite``. Other settings: ``tools/alpha_to_trimap.py`` into a folder of your choice,
registered with ``alphafree_d2.data.register_matting_dataset``.
"""

import argparse
import os
import sys

from alphafree_d2.data.trimap import generate_trimaps

_TRAIN_MATTES = {"am2k": "AM-2K/train", "p3m10k": "P3M-10k/train"}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "datasets", nargs="*", help="am2k and/or p3m10k (default: those present under --root)"
    )
    parser.add_argument(
        "--root",
        default=os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets")),
        help="datasets root (default: $DETECTRON2_DATASETS or 'datasets')",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mask", action="store_true", help="coarse mask labels (Appendix B) into mask_generated/"
    )
    parser.add_argument(
        "--kernel-size",
        type=int,
        help="fixed erosion kernel (Table 6) into trimap_generated_k<K>/ instead of drawn in [1, 30]",
    )
    parser.add_argument(
        "--official",
        action="store_true",
        help="the official alpha2trimap.py's labels into trimap_generated_official/",
    )
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    unknown = sorted(set(args.datasets) - set(_TRAIN_MATTES))
    if unknown:
        parser.error(f"unknown datasets {unknown}: choose from {sorted(_TRAIN_MATTES)}")
    names = args.datasets or [
        n for n, d in _TRAIN_MATTES.items() if os.path.isdir(os.path.join(args.root, d))
    ]
    if not names:
        print(
            f"error: neither AM-2K/train nor P3M-10k/train found under {args.root}", file=sys.stderr
        )
        return 2
    for name in names:
        split = os.path.join(args.root, _TRAIN_MATTES[name])
        if args.mask and (args.kernel_size or args.official):
            parser.error("--mask combines with neither --kernel-size nor --official")
        if args.official and args.kernel_size:
            parser.error("--official and --kernel-size do not combine")
        folder = "mask_generated" if args.mask else "trimap_generated"
        if args.kernel_size:
            folder += f"_k{args.kernel_size}"
        if args.official:
            folder += "_official"
        output = os.path.join(split, folder)
        try:
            summary = generate_trimaps(
                os.path.join(split, "mask"),
                output,
                seed=args.seed,
                mask=args.mask,
                official=args.official,
                kernel_size=args.kernel_size,
                workers=args.workers,
                overwrite=args.overwrite,
            )
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            return 2
        print(
            f"{output}: {summary['written']} written, {summary['kept']} existing kept, {summary['total']} mattes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
