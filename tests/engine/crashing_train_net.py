"""tools/lazyconfig_train_net.py that dies like a killed process right after a chosen iteration:
a deterministic stand-in for ``kill -9`` (no clean-up, no flush, exit status 137).

    python tests/engine/crashing_train_net.py ITERATION --config-file ... [overrides]

The hook runs after every other hook of that iteration (checkpoint, writers), as a kill landing
between two iterations would.
"""

import importlib.util
import os
import sys
from pathlib import Path

from detectron2.engine import HookBase

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "lazyconfig_train_net.py"


class DieAfter(HookBase):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            os._exit(137)


def main():
    iteration = int(sys.argv.pop(1))
    spec = importlib.util.spec_from_file_location("lazyconfig_train_net", SCRIPT)
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    build_hooks = train_net.build_hooks
    train_net.build_hooks = lambda *a, **k: build_hooks(*a, **k) + [DieAfter(iteration)]
    train_net.launch_training(train_net.main, train_net.parse_training_args())


if __name__ == "__main__":
    main()
