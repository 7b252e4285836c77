"""The built-in demo dataset on disk: generated on demand, once, atomically (no download).

The samples come from :mod:`.demo_render`. Layout under ``$DETECTRON2_DATASETS/alphafree_demo``
(generated at the first ``DatasetCatalog.get("demo_train")`` / ``("demo_val")``, or explicitly
with ``python datasets/prepare_demo.py``)::

    alphafree_demo/
      manifest.json                    version and parameters; written last
      train/{image,alpha,trimap}/demo_train_000.png ...   64 samples
      val/{image,alpha,trimap}/demo_val_000.png ...       12 samples

``train/trimap`` holds training labels (random kernel per sample), ``val/trimap`` evaluation
trimaps (fixed kernel); see :mod:`.demo_render`.

Generation is atomic: samples are written into a temporary folder beside the target, which is
renamed into place once complete (``manifest.json`` included), under a file lock so that the
processes of a multi-GPU run generate it once; a crash leaves only a temporary folder that is never
read. A folder whose manifest does not match the current version is regenerated.
"""

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time

from ...utils.file_io import write_json, write_png
from .demo_render import (
    REFERENCE_SIZE,
    SIZE_RANGE,
    TRAIN_KERNEL_SIZE_RANGE,
    VAL_KERNEL_SIZE,
    render_demo_record,
)

try:
    import fcntl
except ImportError:  # Windows: rely on the atomic rename only
    fcntl = None

__all__ = [
    "DEMO_DIRNAME",
    "DEMO_NUM_TRAIN",
    "DEMO_NUM_VAL",
    "DEMO_SEED",
    "DEMO_VERSION",
    "ensure_demo_dataset",
    "generate_demo_dataset",
]

logger = logging.getLogger(__name__)

DEMO_DIRNAME = "alphafree_demo"
DEMO_VERSION = 2
DEMO_SEED = 0
DEMO_NUM_TRAIN = 64
DEMO_NUM_VAL = 12


def generate_demo_dataset(
    output_dir, *, num_train=DEMO_NUM_TRAIN, num_val=DEMO_NUM_VAL, seed=DEMO_SEED
):
    """Write the demo dataset into ``output_dir`` (not atomic; see :func:`ensure_demo_dataset`).

    Returns:
        dict: the manifest written to ``output_dir/manifest.json``.
    """
    for split, count in (("train", num_train), ("val", num_val)):
        for kind in ("image", "alpha", "trimap"):
            os.makedirs(os.path.join(output_dir, split, kind), exist_ok=True)
        for index in range(count):
            name = f"demo_{split}_{index:03d}"
            image, alpha, trimap = render_demo_record(seed, name, train=split == "train")
            write_png(os.path.join(output_dir, split, "image", name + ".png"), image[:, :, ::-1])
            write_png(os.path.join(output_dir, split, "alpha", name + ".png"), alpha)
            write_png(os.path.join(output_dir, split, "trimap", name + ".png"), trimap)
    manifest = _manifest(num_train, num_val, seed)
    write_json(os.path.join(output_dir, "manifest.json"), manifest)
    return manifest


def _manifest(num_train, num_val, seed):
    return {
        "version": DEMO_VERSION,
        "seed": int(seed),
        "num_train": int(num_train),
        "num_val": int(num_val),
        "size_range": list(SIZE_RANGE),
        "train_kernel_size_range": list(TRAIN_KERNEL_SIZE_RANGE),
        "val_kernel_size": VAL_KERNEL_SIZE,
        "reference_size": REFERENCE_SIZE,
    }


def _is_complete(path, manifest):
    try:
        with open(os.path.join(path, "manifest.json"), encoding="utf-8") as f:
            return json.load(f) == manifest
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _lock(path):
    """Exclusive lock between processes, held on a directory (a folder, unlike a file, is
    covered by the ``/datasets/*/`` rule of .gitignore)."""
    os.makedirs(path, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def ensure_demo_dataset(root, *, force=False):
    """Return ``root/alphafree_demo``, generating it first if it is missing, incomplete or made by
    another version of the generator (or ``force``). Safe against crashes and concurrent callers
    (module docstring)."""
    target = os.path.join(root, DEMO_DIRNAME)
    manifest = _manifest(DEMO_NUM_TRAIN, DEMO_NUM_VAL, DEMO_SEED)
    if not force and _is_complete(target, manifest):
        return target
    os.makedirs(root, exist_ok=True)
    with _lock(os.path.join(root, f".{DEMO_DIRNAME}.lock")):
        if not force and _is_complete(target, manifest):  # another process made it meanwhile
            return target
        if fcntl is not None:  # holding the lock: temporary folders left now are from crashed runs
            for entry in os.listdir(root):
                if entry.startswith((f".{DEMO_DIRNAME}.tmp-", f".{DEMO_DIRNAME}.old-")):
                    shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
        start = time.perf_counter()
        tmp = tempfile.mkdtemp(prefix=f".{DEMO_DIRNAME}.tmp-", dir=root)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset is not
        try:
            generate_demo_dataset(
                tmp, num_train=DEMO_NUM_TRAIN, num_val=DEMO_NUM_VAL, seed=DEMO_SEED
            )
            if os.path.exists(target):  # stale or forced: move aside, then replace
                old = tempfile.mkdtemp(prefix=f".{DEMO_DIRNAME}.old-", dir=root)
                os.replace(target, os.path.join(old, DEMO_DIRNAME))
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info(
            f"Generated the demo dataset in {target} in {time.perf_counter() - start:.1f} s"
        )
    return target
