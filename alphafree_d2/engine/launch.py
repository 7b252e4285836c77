"""detectron2's ``launch`` with an orderly end of the worker processes.

With several processes, detectron2's worker returns with its GLOO/NCCL process group still
alive, and the worker process then shuts its interpreter down. On a loaded machine torch's
runtime sometimes aborts during that shutdown ("terminate called without an active exception",
SIGABRT, after the job had finished and both processes had destroyed their groups; how often:
README "Engineering notes"), and ``launch`` then reports the finished job as failed. Here each spawned worker, once its function has returned, waits for the others, destroys
its process groups, flushes its logs and streams, and leaves with exit status 0 without running
the interpreter's teardown. A single process (``num_gpus_per_machine=1`` on one machine) runs the
function in place, untouched, as in detectron2.
"""

import functools
import gc
import logging
import os
import sys

import torch.distributed as dist

from detectron2.engine import launch as _d2_launch
from detectron2.utils import comm

__all__ = ["launch"]


def _run_then_exit(main_func, *args):
    main_func(*args)
    # After a failure the exception propagates as usual: a barrier could wait forever for a rank
    # stuck in a collective, and torch's spawn terminates the other processes anyway.
    if dist.is_available() and dist.is_initialized():
        comm.synchronize()
        dist.destroy_process_group()  # the default group and every group made from it
    gc.collect()  # runs finalizers that close files
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def launch(main_func, num_gpus_per_machine, num_machines=1, **kwargs):
    """Same arguments and behaviour as :func:`detectron2.engine.launch` (which returns nothing),
    plus the orderly end of spawned workers described in this module's docstring."""
    if num_gpus_per_machine * num_machines > 1:
        main_func = functools.partial(_run_then_exit, main_func)
    return _d2_launch(main_func, num_gpus_per_machine, num_machines=num_machines, **kwargs)
