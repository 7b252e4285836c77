"""What ``tools/lazyconfig_train_net.py`` wires together: its arguments, the setup of each
training process, device threads, the ``--eval-only`` folder, the trainer and its hooks. Kept
here so the script stays a thin detectron2-style entry point; the checks before launch are in
:func:`~alphafree_d2.engine.launch.launch_training`."""

import logging
import os
from urllib.parse import urlparse

import torch
from omegaconf import OmegaConf

from detectron2.config import instantiate
from detectron2.engine import (
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    hooks,
)
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..checkpoint import INIT_CHECKPOINT_HINT, PARTIAL_CHECKPOINT_FLAG, CheckpointError
from ..data.build import preflight_check
from ..data.io import get_max_pixels, set_max_pixels
from ..utils.device import resolve_device
from .cli import add_debug_argument, hide_expected_tracebacks, load_config
from .cli import parse_args as _parse_args
from .hooks import DropRedoneRecords, PeriodicCheckpointer
from .run_folder import check_output_dir
from .schedule import resolve_schedule
from .trainer import MattingTrainer

__all__ = [
    "argument_parser",
    "parse_training_args",
    "setup",
    "preflight_evaluation_set",
    "limit_cpu_threads",
    "check_output_dir",
    "check_init_checkpoint",
    "eval_output_dir",
    "setup_eval_only",
    "build_ddp_model",
    "build_trainer",
    "build_hooks",
]

logger = logging.getLogger(__name__)


def argument_parser():
    """detectron2's ``default_argument_parser`` plus ``--allow-partial-checkpoint`` (use a
    checkpoint that leaves model weights random or skipped) and ``--debug``. Parse with
    :func:`parse_training_args`, which takes the overrides from anywhere on the line."""
    parser = default_argument_parser()
    parser.add_argument(
        PARTIAL_CHECKPOINT_FLAG,
        action="store_true",
        help="with --eval-only: evaluate even a checkpoint that leaves model weights random or "
        "mismatched; for training: initialise from a trained matting model of another config "
        "(train.init_checkpoint) with the weights that fit (by default both are refused)",
    )
    add_debug_argument(parser)
    return parser


def parse_training_args(argv=None, parser=None):
    """The train script's arguments (``parser``, default :func:`argument_parser`), with the
    config overrides before, between or after the options (:mod:`~alphafree_d2.engine.cli`)."""
    return _parse_args(argument_parser() if parser is None else parser, argv)


def setup(args):
    """What every training process does first; returns its config.

    The config and its checked overrides, ``train.device`` resolved, the pixel cap of every
    image reader from ``dataloader.max_pixels``, the ``--eval-only`` folder or the schedule in
    iterations, detectron2's ``default_setup`` (log, config.yaml, seed), the plugin's logger in
    the same log, the CPU threads, expected errors without traceback in the trainer's log, and
    the pre-flight check of the evaluation set (:func:`preflight_evaluation_set`).
    """
    cfg = load_config(args.config_file, args.opts)
    cfg.train.device = str(resolve_device(cfg.train.device))
    set_max_pixels(OmegaConf.select(cfg, "dataloader.max_pixels", default=None))
    if args.eval_only:
        setup_eval_only(cfg)  # its own output folder
    else:
        resolve_schedule(cfg)
    default_setup(cfg, args)
    # The plugin's own messages (the evaluator's line with every metric, SAD-T and MSE-T
    # included, which detectron2's copypaste line leaves out) go to the same console and log.txt.
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="alphafree_d2")
    logger.info(
        f"Pixel cap: image files that declare more than {get_max_pixels():,} pixels are "
        "refused before decoding (dataloader.max_pixels)"
    )
    limit_cpu_threads(cfg.train.device)
    hide_expected_tracebacks()
    preflight_evaluation_set(cfg)
    return cfg


def preflight_evaluation_set(cfg):
    """The pre-flight check of the training set (:mod:`alphafree_d2.data.preflight`) for the
    evaluation set ``cfg.dataloader.test.dataset``, at the start of the run instead of at the
    first evaluation (possibly epochs in). Only when the config has an evaluator and
    ``dataloader.train.preflight`` is not False (one switch for both sets). Call it in every
    process."""
    if "evaluator" not in cfg.dataloader or "test" not in cfg.dataloader:
        return
    if not OmegaConf.select(cfg, "dataloader.train.preflight", default=True):
        return
    names = OmegaConf.select(cfg, "dataloader.test.dataset.names", default=None)
    label = names if isinstance(names, str) else "+".join(names or []) or "evaluation set"
    preflight_check(
        instantiate(cfg.dataloader.test.dataset),
        evaluation=True,
        name=f"evaluation set '{label}'",
    )


def limit_cpu_threads(device):
    """On CPU, give each process its share of the cores and log it (on every process, in its
    log). With several processes per machine (``--num-gpus N`` without GPUs), N processes with
    torch's default of one thread per core oversubscribe the machine and slow every step down
    many times. A lower thread count set by the user (``OMP_NUM_THREADS``) is kept. Call it
    after the loggers are set up."""
    if device != "cpu":
        return
    local = comm.get_local_size()
    threads = max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) // local))
    torch.set_num_threads(threads)
    logger.info(
        f"CPU: {local} process(es) on this machine, {threads} torch thread(s) each "
        f"(this is process {comm.get_local_rank()})"
    )


def check_init_checkpoint(cfg, will_resume):
    """Fail at once (before building data or model) when the initial weights are missing."""
    path = cfg.train.init_checkpoint
    if path and not will_resume and "://" not in path and not os.path.isfile(path):
        raise CheckpointError(
            f"train.init_checkpoint={path} does not exist.\n{INIT_CHECKPOINT_HINT}"
        )


def eval_output_dir(cfg):
    """``<train.output_dir>/eval/<checkpoint stem>-<test datasets>``: where ``--eval-only``
    writes its config, log, per-image CSV and previews, apart from the training run's files."""
    stem = os.path.splitext(os.path.basename(urlparse(cfg.train.init_checkpoint).path))[0]
    names = cfg.dataloader.test.dataset.names
    names = [names] if isinstance(names, str) else list(names)
    return os.path.join(cfg.train.output_dir, "eval", f"{stem}-{'+'.join(names)}")


def setup_eval_only(cfg):
    """Check that ``--eval-only`` has weights to evaluate and point ``cfg.train.output_dir`` to
    :func:`eval_output_dir`, so that evaluation changes nothing of a training run's folder (an
    earlier evaluation of the same checkpoint on the same data is replaced). Returns that
    folder."""
    if not cfg.train.init_checkpoint:
        raise ValueError("--eval-only needs the weights: add train.init_checkpoint=PATH")
    check_init_checkpoint(cfg, will_resume=False)
    cfg.train.output_dir = eval_output_dir(cfg)
    return cfg.train.output_dir


def build_ddp_model(model, cfg):
    """Wrap in DistributedDataParallel when there are several processes (GLOO on CPU)."""
    kwargs = dict(cfg.train.ddp)
    if cfg.train.device == "cpu":
        kwargs["device_ids"] = None
    return create_ddp_model(model, **kwargs)


def build_trainer(cfg, model, data_loader, optimizer):
    amp = cfg.train.amp
    return MattingTrainer(
        model,
        data_loader,
        optimizer,
        device_type="cuda" if str(cfg.train.device).startswith("cuda") else "cpu",
        amp_enabled=amp.enabled,
        amp_dtype=amp.get("dtype", "float16"),
    )


def build_hooks(cfg, checkpointer, test_fn):
    """detectron2's standard hooks: timer, LR schedule, checkpoints and writers (main process),
    evaluation every ``cfg.train.eval_period`` iterations and at the end; on resume, the
    clean-up of :mod:`alphafree_d2.engine.hooks` (main process)."""
    main = comm.is_main_process()
    return [
        DropRedoneRecords(os.path.join(cfg.train.output_dir, "metrics.json")) if main else None,
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        PeriodicCheckpointer(
            checkpointer,
            period=cfg.train.checkpointer.period,
            max_iter=cfg.train.max_iter,
            max_to_keep=cfg.train.checkpointer.max_to_keep,
        )
        if main
        else None,
        hooks.EvalHook(cfg.train.eval_period, test_fn),
        hooks.PeriodicWriter(
            default_writers(cfg.train.output_dir, cfg.train.max_iter),
            period=cfg.train.log_period,
        )
        if main
        else None,
    ]
