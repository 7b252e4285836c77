#!/usr/bin/env python
"""Generate (or regenerate) the built-in demo matting dataset explicitly.

    python datasets/prepare_demo.py [--root DIR] [--force]

writes ``DIR/alphafree_demo/`` (default ``DIR``: ``$DETECTRON2_DATASETS`` or ``datasets``) and
prints its path. Not needed before training: ``demo_train`` / ``demo_val`` generate it on first
use. A complete copy made by the current generator is kept unless ``--force``.
"""

import argparse
import logging

from alphafree_d2.data.datasets import default_datasets_root, ensure_demo_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", default=None, help="datasets root (default: $DETECTRON2_DATASETS or 'datasets')"
    )
    parser.add_argument(
        "--force", action="store_true", help="regenerate even if a complete copy exists"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure_demo_dataset(args.root or default_datasets_root(), force=args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
