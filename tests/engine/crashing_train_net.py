"""tools/lazyconfig_train_net.py that dies like a killed process right after a chosen iteration:
a deterministic stand-in for ``kill -9`` (no clean-up, no flush, exit status 137).

    python tests/engine/crashing_train_net.py ITERATION --config-file ... [overrides]
    python tests/engine/crashing_train_net.py sigint-in-save --config-file ... [overrides]

The hook runs after every other hook of that iteration (checkpoint, writers), as a kill landing
between two iterations would. ``sigint-in-save`` instead sends the process SIGINT (Ctrl+C) from
inside the first checkpoint write, after torch.save has started writing the file.
"""

import importlib.util
import os
import signal
import sys
from pathlib import Path

import torch

from detectron2.engine import HookBase

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "lazyconfig_train_net.py"


class DieAfter(HookBase):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            os._exit(137)


class _CtrlCWhileWriting:
    """A file that receives Ctrl+C at its second write (torch.save's zip writer calls back)."""

    def __init__(self, f):
        self._f, self._writes = f, 0

    def write(self, data):
        self._writes += 1
        if self._writes == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def interrupt_the_first_save():
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        torch.save = real_save
        return real_save(obj, _CtrlCWhileWriting(f), *args, **kwargs)

    torch.save = save


def main():
    mode = sys.argv.pop(1)
    spec = importlib.util.spec_from_file_location("lazyconfig_train_net", SCRIPT)
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    if mode == "sigint-in-save":
        # Ctrl+C as in a terminal: a test run started in the background by a shell would
        # otherwise hand this process SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        interrupt_the_first_save()
    else:
        build_hooks = train_net.build_hooks
        train_net.build_hooks = lambda *a, **k: build_hooks(*a, **k) + [DieAfter(int(mode))]
    train_net.launch_training(train_net.main, train_net.parse_training_args())


if __name__ == "__main__":
    main()
