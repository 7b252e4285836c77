"""What ``tools/lazyconfig_train_net.py`` wires together: device choice, output-folder safety,
the trainer and its hooks. Kept here so the script stays a thin detectron2-style entry point."""
import logging
import os

import torch

from detectron2.config import instantiate
from detectron2.engine import create_ddp_model, default_writers, hooks
from detectron2.utils import comm

from ..checkpoint import INIT_CHECKPOINT_HINT, CheckpointError
from .trainer import MattingTrainer

__all__ = [
    "limit_cpu_threads",
    "check_output_dir",
    "check_init_checkpoint",
    "build_ddp_model",
    "build_trainer",
    "build_hooks",
]

logger = logging.getLogger(__name__)


def limit_cpu_threads(device):
    """On CPU with several processes per machine (``--num-gpus N`` without GPUs), give each
    process its share of the cores: N processes with torch's default of one thread per core
    oversubscribe the machine and slow every step down many times. A lower thread count set
    by the user (``OMP_NUM_THREADS``) is kept."""
    local = comm.get_local_size()
    if device == "cpu" and local > 1:
        threads = max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) // local))
        torch.set_num_threads(threads)
        logger.info(f"{local} CPU processes on this machine: {threads} torch thread(s) each")


def check_output_dir(output_dir, resume):
    """Refuse to start a new run over checkpoints of an earlier one, unless resuming."""
    last = os.path.join(output_dir, "last_checkpoint")
    if not resume and os.path.exists(last):
        with open(last) as f:
            name = f.read().strip()
        raise FileExistsError(
            f"{output_dir} already holds the checkpoints of a run (last: {name}). Pass --resume "
            f"to continue it, or choose another train.output_dir=... to start a new run; "
            f"nothing was overwritten."
        )


def check_init_checkpoint(cfg, will_resume):
    """Fail at once (before building data or model) when the initial weights are missing."""
    path = cfg.train.init_checkpoint
    if path and not will_resume and "://" not in path and not os.path.isfile(path):
        raise CheckpointError(f"train.init_checkpoint={path} does not exist.\n{INIT_CHECKPOINT_HINT}")


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
    evaluation every ``cfg.train.eval_period`` iterations and at the end."""
    main = comm.is_main_process()
    return [
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(
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
