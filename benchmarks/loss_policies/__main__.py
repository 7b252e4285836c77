"""``python -m benchmarks.loss_policies``: see the package docstring (``--help``)."""

import sys

from .cli import main

sys.exit(main())
