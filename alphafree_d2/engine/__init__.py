"""Training: the trainer, epoch-based schedules and what the train script wires together."""

from .config_checks import ConfigError, apply_overrides, check_config
from .defaults import (
    argument_parser,
    build_ddp_model,
    build_hooks,
    build_trainer,
    check_init_checkpoint,
    check_output_dir,
    eval_output_dir,
    limit_cpu_threads,
    setup_eval_only,
)
from .hooks import DropRedoneRecords, PeriodicCheckpointer
from .launch import launch
from .schedule import epochs_to_iters, resolve_schedule, warmup_multistep_lr
from .trainer import MattingTrainer

__all__ = [
    "ConfigError",
    "apply_overrides",
    "check_config",
    "argument_parser",
    "build_ddp_model",
    "build_hooks",
    "build_trainer",
    "check_init_checkpoint",
    "check_output_dir",
    "eval_output_dir",
    "limit_cpu_threads",
    "setup_eval_only",
    "DropRedoneRecords",
    "PeriodicCheckpointer",
    "launch",
    "epochs_to_iters",
    "resolve_schedule",
    "warmup_multistep_lr",
    "MattingTrainer",
]
