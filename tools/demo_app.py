#!/usr/bin/env python
r"""A local web page to try trained matting models on your own photos, compare two, and paint
trimaps for trimap-guided models.

    python tools/demo_app.py --config-file configs/demo_ddc.py \
        train.init_checkpoint=output/demo_ddc/model_final.pth
    python tools/demo_app.py --config-file configs/demo_ddc_trimap.py \
        train.init_checkpoint=output/demo_ddc_trimap/model_final.pth \
        --compare configs/demo_ddc.py output/demo_ddc/model_final.pth --port 7860

Then open the printed address. Upload a photo or pick an example: the page shows the alpha
matte, the cutout over a checkerboard and over a colour of your choice, a magnified detail you
move by clicking, the time taken, and with --compare both models side by side with their
difference; the alpha and cutout PNGs can be downloaded. With a trimap-guided model the photo
comes up in a trimap painter first (brushes, undo, auto trimap, closed-form reference). Overrides
(key=value) apply to the first model's config; the --compare model is its config with
train.init_checkpoint=CHECKPOINT. Large photos follow the high-resolution policy of
tools/predict.py (--max-megapixels, --highres). The page is served on 127.0.0.1 (this machine
only) unless --host says otherwise; --port 0 takes any free port. User guide: docs/web_page.md.
Needs the demo extra: pip install -e .[demo]
"""

import argparse
import sys

from detectron2.utils.logger import setup_logger

from alphafree_d2.checkpoint.matting_checkpointer import CheckpointError
from alphafree_d2.data.io import set_max_pixels
from alphafree_d2.engine import ConfigError, add_overrides_argument, parse_args
from alphafree_d2.inference.highres import HighResolutionPolicy
from alphafree_d2.inference.predictor import add_predictor_arguments
from alphafree_d2.utils.argtypes import non_negative_int, port_number, positive_float


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
    parser.add_argument("--port", type=port_number, default=7860, help="port (0: any free port)")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this host name (e.g. the machine's DNS name with --host "
        "0.0.0.0); others are refused against DNS rebinding",
    )
    add_predictor_arguments(parser)
    parser.add_argument(
        "--examples", metavar="DIR", help="also offer the images of this folder as examples"
    )
    parser.add_argument(
        "--max-upload-mb", type=positive_float, default=64.0, help="largest upload accepted, in MB"
    )
    parser.add_argument(
        "--max-waiting",
        type=non_negative_int,
        default=2,
        help="requests that may wait while the models are busy; more are refused (503, retry "
        "later)",
    )
    add_overrides_argument(parser)
    return parser


def load_models(args):
    """The models of the command line (see :func:`alphafree_d2.app.load_demo_models`)."""
    from alphafree_d2.app import load_demo_models

    return load_demo_models(
        args.config_file,
        args.opts,
        compare=args.compare,
        device=args.device,
        policy=HighResolutionPolicy(max_megapixels=args.max_megapixels, mode=args.highres),
    )


def main(argv=None) -> int:
    parser = get_parser()
    args = parse_args(parser, argv)  # options before or after the overrides
    try:
        from alphafree_d2.app import (
            allowed_hosts,
            bind_socket,
            builtin_examples,
            create_app,
            folder_examples,
            serve,
            warm_up,
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
    set_max_pixels(args.max_pixels)

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
    hosts = allowed_hosts(args.host, sock.getsockname()[1], args.allow_host)
    app = create_app(
        models,
        examples,
        max_upload_mb=args.max_upload_mb,
        max_waiting=args.max_waiting,
        allowed_hosts=hosts,
    )
    serve(app, sock, announce=lambda message: print(message, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
