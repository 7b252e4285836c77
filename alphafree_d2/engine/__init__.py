"""Training: the trainer, epoch-based schedules, what the train script wires together, and the
command lines of every tool (config overrides anywhere, one config loader, expected errors as
one message)."""

from .cli import (
    add_debug_argument,
    add_overrides_argument,
    expected_errors,
    is_override,
    load_config,
    parse_args,
)
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
    parse_training_args,
    preflight_evaluation_set,
    setup,
    setup_eval_only,
)
from .hooks import DropRedoneRecords, PeriodicCheckpointer
from .launch import launch, launch_training
from .run_folder import OutputFolderError, RunLock, check_resume_config
from .schedule import epochs_to_iters, resolve_schedule, warmup_multistep_lr
from .trainer import MattingTrainer

__all__ = [
    "ConfigError",
    "OutputFolderError",
    "add_debug_argument",
    "add_overrides_argument",
    "apply_overrides",
    "check_config",
    "expected_errors",
    "is_override",
    "load_config",
    "parse_args",
    "argument_parser",
    "parse_training_args",
    "setup",
    "preflight_evaluation_set",
    "build_ddp_model",
    "build_hooks",
    "build_trainer",
    "check_init_checkpoint",
    "check_output_dir",
    "check_resume_config",
    "RunLock",
    "eval_output_dir",
    "limit_cpu_threads",
    "setup_eval_only",
    "DropRedoneRecords",
    "PeriodicCheckpointer",
    "launch",
    "launch_training",
    "epochs_to_iters",
    "resolve_schedule",
    "warmup_multistep_lr",
    "MattingTrainer",
]
