"""detectron2's ``launch`` with an orderly end of the worker processes.

With several processes, detectron2's worker returns with its GLOO/NCCL process group still
alive, and the worker process then shuts its interpreter down. On a loaded machine torch's
runtime sometimes aborts during that shutdown ("terminate called without an active exception",
SIGABRT, after the job had finished and both processes had destroyed their groups; how often:
docs/engineering.md), and ``launch`` then reports the finished job as failed. Here each spawned worker, once its function has returned, waits for the others, destroys
its process groups, flushes its logs and streams, and leaves with exit status 0 without running
the interpreter's teardown. A single process (``num_gpus_per_machine=1`` on one machine) runs the
function in place, untouched, as in detectron2.

Expected errors (:func:`~alphafree_d2.engine.cli.expected_errors`) raised in a spawned worker
end it with exit status 2 after writing their message to a file of the launching process,
which prints each different message once (the processes of a run usually stop on the same
error) and exits with status 2; Ctrl+C ends every process, the launching one says
``interrupted`` and exits with status 130. No traceback, unless ``--debug``.

:func:`launch_training` is what ``tools/lazyconfig_train_net.py`` runs: the config checked, the
output folder checked and locked (:mod:`~alphafree_d2.engine.run_folder`) in the launching
process, before anything is written, then :func:`launch`.
"""

import contextlib
import functools
import gc
import json
import logging
import os
import sys
import tempfile

import torch.distributed as dist
import torch.multiprocessing as mp

from detectron2.engine import launch as _d2_launch
from detectron2.utils import comm

from ..utils.device import resolve_device
from .cli import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    debug_enabled,
    expected_errors,
    is_expected_error,
    load_config,
)
from .defaults import check_init_checkpoint, setup_eval_only
from .run_folder import RunLock, check_output_dir, check_resume_config

__all__ = ["launch", "launch_training"]

_ERRORS_ENV = "ALPHAFREE_D2_ERRORS_FILE"


def _end_worker(status):
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _run_then_exit(main_func, *args):
    try:
        main_func(*args)
    except KeyboardInterrupt:
        if debug_enabled():
            raise
        _end_worker(EXIT_INTERRUPTED)  # the launching process says it
    except Exception as e:
        errors_file = os.environ.get(_ERRORS_ENV)
        if debug_enabled() or not is_expected_error(e) or not errors_file:
            raise
        with open(errors_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(str(e)) + "\n")
        _end_worker(EXIT_ERROR)
    # After a failure the exception propagates as usual: a barrier could wait forever for a rank
    # stuck in a collective, and torch's spawn terminates the other processes anyway.
    if dist.is_available() and dist.is_initialized():
        comm.synchronize()
        dist.destroy_process_group()  # the default group and every group made from it
    gc.collect()  # runs finalizers that close files
    _end_worker(0)


def launch(main_func, num_gpus_per_machine, num_machines=1, **kwargs):
    """Same arguments and behaviour as :func:`detectron2.engine.launch` (which returns nothing),
    plus the orderly end of spawned workers and their expected errors described in this
    module's docstring (``SystemExit(2)`` here, after their messages)."""
    if num_gpus_per_machine * num_machines <= 1:
        return _d2_launch(main_func, num_gpus_per_machine, num_machines=num_machines, **kwargs)
    fd, errors_file = tempfile.mkstemp(prefix="alphafree_d2_errors_", suffix=".jsonl")
    os.close(fd)
    previous = os.environ.get(_ERRORS_ENV)
    os.environ[_ERRORS_ENV] = errors_file  # the spawned processes inherit it
    try:
        main_func = functools.partial(_run_then_exit, main_func)
        return _d2_launch(main_func, num_gpus_per_machine, num_machines=num_machines, **kwargs)
    except mp.ProcessExitedException as e:
        with open(errors_file, encoding="utf-8") as f:
            messages = list(dict.fromkeys(json.loads(line) for line in f if line.strip()))
        if e.exit_code == EXIT_INTERRUPTED:
            raise KeyboardInterrupt from None
        if e.exit_code != EXIT_ERROR or not messages:
            raise
        for message in messages:
            print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_ERROR) from None
    finally:
        if previous is None:
            os.environ.pop(_ERRORS_ENV, None)
        else:
            os.environ[_ERRORS_ENV] = previous
        os.remove(errors_file)


def launch_training(main_func, args):
    """Run ``main_func(args)`` for ``tools/lazyconfig_train_net.py``'s ``args`` (module
    docstring), in this process or in ``args.num_gpus`` processes per machine.

    In this process first, before anything is written: the config and its overrides are
    checked; ``--eval-only`` needs existing weights and gets its own folder; a new run needs its
    initial weights and a folder without another run; ``--resume`` a config with the run's
    model (:func:`~alphafree_d2.engine.run_folder.check_resume_config`). Machine 0 checks the
    output folder and locks it until ``main_func`` returns in every process. Expected errors
    end with one message and ``SystemExit(2)``, Ctrl+C with ``SystemExit(130)``.
    """
    with expected_errors():
        cfg = load_config(args.config_file, args.opts)
        cfg.train.device = str(resolve_device(cfg.train.device))
        if args.eval_only:
            setup_eval_only(cfg)
        else:
            check_init_checkpoint(cfg, will_resume=args.resume)
        # Machine 0 guards the (shared) folder for every machine of the run.
        first = args.machine_rank == 0
        with RunLock(cfg.train.output_dir) if first else contextlib.nullcontext():
            if first and not args.eval_only:
                check_output_dir(cfg.train.output_dir, args.resume)
                if args.resume:
                    check_resume_config(cfg, cfg.train.output_dir)
            launch(
                main_func,
                args.num_gpus,
                num_machines=args.num_machines,
                machine_rank=args.machine_rank,
                dist_url=args.dist_url,
                args=(args,),
            )
