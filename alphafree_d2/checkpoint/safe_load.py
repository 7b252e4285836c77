"""Reading checkpoint files without running code from them.

A pickle can name any importable callable and have it called while it is read, so a crafted
``.pkl`` or ``.pth`` file runs arbitrary code under a plain ``pickle.load`` / ``torch.load``.
Weights never need that: detectron2's ``.pkl`` formats (its model zoo's ``{"model": ...,
"__author__": ...}`` and Detectron/Caffe2's ``{"blobs": ...}``) hold only dicts, lists, strings,
numbers and numpy arrays, and PyTorch files are read with ``torch.load(weights_only=True)``.
"""

import pickle
import re

import torch

__all__ = ["UnsafeCheckpointError", "load_pickle_weights", "load_torch_weights"]

# (module, name) pairs a pickle of numpy arrays and plain containers refers to, across Python 2
# (Detectron1 files, "__builtin__"/"copy_reg"), numpy 1 ("numpy.core") and numpy 2 ("numpy._core")
# and pickle protocols 2-5 (protocol 5 stores arrays through "_frombuffer").
_ALLOWED_GLOBALS = frozenset(
    [(m, "_reconstruct") for m in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [(m, "scalar") for m in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [(m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [("collections", "OrderedDict"), ("_codecs", "encode")]
    + [(m, n) for m in ("builtins", "__builtin__") for n in ("set", "frozenset", "complex")]
)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file asks to call something that a file of weights never needs."""


class _WeightsUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafeCheckpointError(f"{module}.{name}")
        return super().find_class(module, name)


def load_pickle_weights(f):
    """``pickle.load(f, encoding="latin1")`` (as detectron2 reads ``.pkl`` files) that accepts
    only containers, numbers, strings and numpy arrays.

    Raises:
        UnsafeCheckpointError: with the refused ``module.name`` as its message.
    """
    return _WeightsUnpickler(f, encoding="latin1").load()


def load_torch_weights(f):
    """``torch.load`` on CPU with ``weights_only=True``: tensors, containers, strings and numbers
    only (an optimizer's or scheduler's state included; numpy arrays are not).

    Raises:
        UnsafeCheckpointError: naming what the file asked for.
    """
    try:
        return torch.load(f, map_location=torch.device("cpu"), weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise UnsafeCheckpointError(found.group(1) if found else str(e)) from e
