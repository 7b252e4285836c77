#!/usr/bin/env python
r"""A local web page to try trained matting models on your own photos, and compare two.

    python tools/demo_app.py --config-file configs/demo_ddc.py \
        train.init_checkpoint=output/demo_ddc/model_final.pth
    python tools/demo_app.py --config-file configs/demo_ddc.py \
        train.init_checkpoint=output/demo_ddc/model_final.pth \
        --compare configs/demo_ddc.py output/demo_ddc/model_0000199.pth --port 7860

Then open the printed address. Upload a photo or pick an example: the page shows the alpha
matte, the cutout over a checkerboard and over a colour of your choice, a magnified detail you
move by clicking, the time taken, and with --compare both models side by side with their
difference; the alpha and cutout PNGs can be downloaded. Overrides (key=value) apply to the
first model's config; the --compare model is its config with train.init_checkpoint=CHECKPOINT.
Large photos follow the high-resolution policy of tools/predict.py (--max-megapixels,
--highres). The page is served on 127.0.0.1 (this machine only) unless --host says otherwise;
--port 0 takes any free port. Needs the demo extra: pip install -e .[demo]
"""

import argparse
import sys

import numpy as np

from detectron2.utils.logger import setup_logger

from alphafree_d2.checkpoint.matting_checkpointer import CheckpointError
from alphafree_d2.data.io import set_max_pixels
from alphafree_d2.engine import ConfigError, add_overrides_argument, load_config, parse_args
from alphafree_d2.inference.foreground import estimate_foreground
from alphafree_d2.inference.highres import HighResolutionPolicy
from alphafree_d2.inference.predictor import MattingPredictor, add_predictor_arguments


def get_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="LazyConfig file")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("CONFIG", "CHECKPOINT"),
        help="a second model shown side by side with the first",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=7860, help="port (0: any free port)")
    add_predictor_arguments(parser)
    parser.add_argument(
        "--examples", metavar="DIR", help="also offer the images of this folder as examples"
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=64.0, help="largest upload accepted, in MB"
    )
    add_overrides_argument(parser)
    return parser


def load_models(args):
    """The models of the command line: "model", or "A" (--config-file and its overrides) and
    "B" (--compare), as :class:`~alphafree_d2.app.DemoModel` s around MattingPredictors that
    follow --device, --max-megapixels and --highres.

    Raises:
        CheckpointError: a checkpoint that cannot be used, with the model named.
    """
    from alphafree_d2.app import DemoModel

    policy = HighResolutionPolicy(max_megapixels=args.max_megapixels, mode=args.highres)
    specs = [("model", args.config_file, args.opts, None)]
    if args.compare:
        config_file, checkpoint = args.compare
        specs = [("A", args.config_file, args.opts, None), ("B", config_file, [], checkpoint)]
    models = []
    for name, config_file, opts, checkpoint in specs:
        cfg = load_config(config_file, opts)
        try:
            predictor = MattingPredictor(cfg, checkpoint, device=args.device, policy=policy)
        except CheckpointError as e:
            which = f"model {name}" if args.compare else "the model"
            raise CheckpointError(f"{which} ({config_file}): {e}") from e
        checkpoint = checkpoint if checkpoint is not None else cfg.train.init_checkpoint
        models.append(DemoModel(name, predictor, f"{checkpoint} ({config_file})"))
    return models


def warm_up(models):
    """Run everything once on a small image, so that the first photo's time is the model's:
    pymatting compiles (or loads from its cache) its foreground solver on first use."""
    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    for model in models:
        alpha = model.predictor(image)
    estimate_foreground(image, np.asarray(alpha, dtype=np.float32))


def main(argv=None) -> int:
    parser = get_parser()
    args = parse_args(parser, argv)  # options before or after the overrides
    set_max_pixels(args.max_pixels)  # --max-pixels: the cap of every upload and example read
    try:
        from alphafree_d2.app import (
            bind_socket,
            builtin_examples,
            create_app,
            folder_examples,
            serve,
        )
    except ImportError as e:
        print(
            f"error: the demo page needs the demo extra ({e}); install it with "
            f"pip install -e .[demo]",
            file=sys.stderr,
        )
        return 2
    setup_logger(name="alphafree_d2")
    setup_logger(name="fvcore")

    examples = builtin_examples()
    if args.examples:
        try:
            examples.update(folder_examples(args.examples))
        except ValueError as e:
            parser.error(str(e))

    try:
        models = load_models(args)
    except ConfigError as e:
        parser.error(str(e))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    try:
        sock = bind_socket(args.host, args.port)
    except OSError as e:
        print(f"error: {e.strerror}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: --host {args.host}: the page is reachable from other machines and has "
            f"no password; anyone who reaches it can run the model",
            file=sys.stderr,
        )
    print("warming up the model(s) and the foreground solver ...", flush=True)
    warm_up(models)
    app = create_app(models, examples, max_upload_mb=args.max_upload_mb)
    serve(app, sock, announce=lambda message: print(message, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
