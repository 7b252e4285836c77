#!/usr/bin/env python
"""tools/lazyconfig_train_net.py with extra folder datasets registered first.

    python benchmarks/loss_policies/_train_entry.py --register NAME IMAGE_ROOT TRIMAP_ROOT ALPHA_ROOT \
        --config-file configs/demo_ddc.py [--num-gpus N] [--eval-only] [KEY=VALUE ...]

Every argument but ``--register`` is the training script's own. ``ALPHA_ROOT`` may be ``-``
(none). A dataset registered with ``register_matting_dataset`` exists only in the process that
registered it (and, with ``--num-gpus N``, must be registered again in each of the N processes
that detectron2's ``launch`` starts), so this entry point registers the datasets in every worker
and then calls the training script's own ``main(args)``: training, evaluation, checkpoints and
logs are exactly those of ``tools/lazyconfig_train_net.py``. ``python -m
benchmarks.loss_policies`` runs it (by its path: it imports only the package) for the mask-label
training set and the ``--real-dir`` photos.
"""

import importlib.util
import os
import sys

from alphafree_d2.engine import argument_parser, launch_training, parse_training_args

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_NET_PATH = os.path.join(REPO, "tools", "lazyconfig_train_net.py")


def _load_train_net():
    """tools/lazyconfig_train_net.py as a module (it is a script, not part of a package)."""
    spec = importlib.util.spec_from_file_location("lazyconfig_train_net", TRAIN_NET_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


train_net = _load_train_net()


def register_datasets(registrations):
    """Register ``[(name, image_root, trimap_root, alpha_root or "-"), ...]`` (idempotent)."""
    from detectron2.data import DatasetCatalog

    from alphafree_d2.data import register_matting_dataset

    for name, image_root, trimap_root, alpha_root in registrations or []:
        if name in DatasetCatalog.list():
            continue
        register_matting_dataset(
            name, image_root, trimap_root, None if alpha_root == "-" else alpha_root
        )


def _worker(args):
    register_datasets([tuple(r) for r in args.register])
    return train_net.main(args)


def build_parser():
    parser = argument_parser()
    parser.add_argument(
        "--register",
        nargs=4,
        action="append",
        default=[],
        metavar=("NAME", "IMAGE_ROOT", "TRIMAP_ROOT", "ALPHA_ROOT"),
        help="register a folder dataset before training (ALPHA_ROOT '-' for none); repeatable",
    )
    return parser


def main(argv=None):
    args = parse_training_args(argv, build_parser())
    launch_training(_worker, args)


if __name__ == "__main__":
    main()
