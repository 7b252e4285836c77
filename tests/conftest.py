import os
import tempfile

# Tests must never write into the checkout's datasets/ folder: the demo data and any
# registered fake trees go to a per-session temporary root unless the caller chose one.
os.environ.setdefault("DETECTRON2_DATASETS", tempfile.mkdtemp(prefix="alphafree_d2_datasets_"))

# Triton decides at import whether its kernels run compiled (CUDA) or in its interpreter (CPU
# tensors): without CUDA, run them interpreted so that tests/modeling/test_neighbour_kernels.py
# checks the Triton kernels on CPU. Set before anything imports triton (detectron2 does).
import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")
    config.addinivalue_line(
        "markers",
        "slow: an end-to-end run (training, a tool, a server or a benchmark in a subprocess); "
        "the quick loop deselects them with -m 'not slow' (docs/engineering.md)",
    )


def pytest_collection_modifyitems(config, items):
    import pytest

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
