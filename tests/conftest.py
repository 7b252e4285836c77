import os
import tempfile

# Tests must never write into the checkout's datasets/ folder: the demo data and any
# registered fake trees go to a per-session temporary root unless the caller chose one.
os.environ.setdefault("DETECTRON2_DATASETS", tempfile.mkdtemp(prefix="alphafree_d2_datasets_"))

# Triton decides at import whether its kernels run compiled (CUDA) or in its interpreter (CPU
# tensors): without CUDA, run them interpreted so that tests/modeling/test_neighbour_kernels.py
# checks the Triton kernels on CPU. Set before anything imports triton (detectron2 does).
import pytest  # noqa: E402
import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


# Folders of tiny-model tests: their tensors gain nothing from intra-op threads, and on a CPU
# shared with other processes threads waiting for each other made them up to 20x slower.
ONE_THREAD_FOLDERS = ("app", "hf", "inference")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread(request):
    """One torch thread for the modules of ONE_THREAD_FOLDERS, restored after each module, so
    tests elsewhere keep torch's default."""
    if request.path.parent.name not in ONE_THREAD_FOLDERS:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")
    config.addinivalue_line(
        "markers",
        "slow: an end-to-end run (training, a tool, a server or a benchmark in a subprocess); "
        "the quick loop deselects them with -m 'not slow' (docs/engineering.md)",
    )


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
