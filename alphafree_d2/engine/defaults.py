"""What ``tools/lazyconfig_train_net.py`` wires together: its arguments, device threads,
output-folder safety, the ``--eval-only`` folder, the trainer and its hooks. Kept here so the
script stays a thin detectron2-style entry point."""

import logging
import os
from urllib.parse import urlparse

import torch

from detectron2.config import instantiate
from detectron2.engine import create_ddp_model, default_argument_parser, default_writers, hooks
from detectron2.utils import comm

from ..checkpoint import INIT_CHECKPOINT_HINT, PARTIAL_CHECKPOINT_FLAG, CheckpointError
from .hooks import DropRedoneRecords, PeriodicCheckpointer
from .trainer import MattingTrainer

__all__ = [
    "argument_parser",
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
    """detectron2's ``default_argument_parser`` plus ``--allow-partial-checkpoint`` (for
    ``--eval-only``: evaluate even when the checkpoint leaves model weights random)."""
    parser = default_argument_parser()
    parser.add_argument(
        PARTIAL_CHECKPOINT_FLAG,
        action="store_true",
        help="with --eval-only: evaluate even a checkpoint that leaves model weights random or "
        "mismatched (by default such a checkpoint is refused)",
    )
    return parser


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


def _has_records(output_dir):
    metrics = os.path.join(output_dir, "metrics.json")
    return os.path.isfile(metrics) and os.path.getsize(metrics) > 0


def check_output_dir(output_dir, resume):
    """Refuse to start a new run (no ``resume``) in a folder that holds another run's
    checkpoints, or the records (non-empty ``metrics.json``) of a run that stopped before its
    first checkpoint: a new run would append to them and mix two runs' curves. With ``resume``,
    a folder without checkpoints restarts at iteration 0 and its old ``metrics.json`` records
    are dropped (:class:`~alphafree_d2.engine.hooks.DropRedoneRecords`)."""
    if resume:
        return
    last = os.path.join(output_dir, "last_checkpoint")
    if os.path.exists(last):
        with open(last) as f:
            name = f.read().strip()
        raise FileExistsError(
            f"{output_dir} already holds the checkpoints of a run (last: {name}). Pass --resume "
            f"to continue it, or choose another train.output_dir=... to start a new run; "
            f"nothing was overwritten."
        )
    if _has_records(output_dir):
        raise FileExistsError(
            f"{output_dir} holds the records (metrics.json, TensorBoard events) of a run that "
            f"stopped before its first checkpoint. Pass --resume to start that run again in this "
            f"folder from iteration 0 (its metrics.json records are dropped), or choose another "
            f"train.output_dir=... to start a new run; nothing was changed."
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
