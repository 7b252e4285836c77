"""The training data loader: detectron2's, after a pre-flight check of the training set."""

import logging

from detectron2.data import build_detection_train_loader
from detectron2.utils import comm

from .preflight import DatasetCheckError, check_evaluation_set, check_training_set

__all__ = ["build_matting_train_loader", "preflight_check"]

logger = logging.getLogger(__name__)


def preflight_check(dataset, *, evaluation=False, **kwargs):
    """Run :func:`~alphafree_d2.data.preflight.check_training_set` (or, with ``evaluation``,
    ``check_evaluation_set``) once, on the main process, and raise the same
    :class:`DatasetCheckError` in every process if it fails (so that no process of a multi-GPU
    run waits for the others forever). Call it in every process.

    ``dataset``: a list of records; anything else (a torch ``Dataset``) is not checked.
    ``kwargs``: those of the check (``name``, ``max_pixels``, ...).
    """
    what = "evaluation set" if evaluation else "training set"
    if not isinstance(dataset, (list, tuple)):
        logger.info(f"Pre-flight check of the {what} skipped: it is a {type(dataset).__name__}")
        return
    check = check_evaluation_set if evaluation else check_training_set
    error = None
    if comm.is_main_process():
        try:
            check(dataset, **kwargs)
        except Exception as e:  # any failure is shared, so no process is left waiting
            error = (
                e
                if isinstance(e, DatasetCheckError)
                else DatasetCheckError(
                    f"Pre-flight check of the {kwargs.get('name', what)} failed: "
                    f"{type(e).__name__}: {e}"
                )
            )
    if comm.get_world_size() > 1:
        error = comm.all_gather(None if error is None else str(error))[0]
        error = None if error is None else DatasetCheckError(error)
    if error is not None:
        raise error


def build_matting_train_loader(dataset, *, mapper, total_batch_size, preflight=True, **kwargs):
    """:func:`detectron2.data.build_detection_train_loader` after :func:`preflight_check` of
    ``dataset`` (a list of records), unless ``preflight=False``.

    Configs set it as ``dataloader.train``; the other arguments are detectron2's
    (``sampler``, ``aspect_ratio_grouping``, ``num_workers``, ...).
    """
    if preflight:
        preflight_check(dataset, max_pixels=getattr(mapper, "max_pixels", None))
    return build_detection_train_loader(
        dataset=dataset, mapper=mapper, total_batch_size=total_batch_size, **kwargs
    )
