"""Training schedules written in epochs, converted to iterations from the dataset size and the
total batch size, so changing the number of GPUs or the batch size keeps the epochs."""

import logging

from detectron2.config import instantiate
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

__all__ = ["epochs_to_iters", "warmup_multistep_lr", "resolve_schedule"]

logger = logging.getLogger(__name__)


def epochs_to_iters(epochs, iters_per_epoch):
    """Iterations for ``epochs`` (may be fractional) at ``iters_per_epoch`` = images / batch;
    at least 1 for a positive number of epochs."""
    if epochs <= 0:
        return 0
    return max(1, int(round(epochs * iters_per_epoch)))


def warmup_multistep_lr(
    *, milestones_epochs, values, iters_per_epoch, max_iter, warmup_iters=250, warmup_factor=0.001
):
    """Learning-rate multiplier: linear warmup from ``warmup_factor`` over ``warmup_iters``
    iterations, then ``values[i]`` after ``milestones_epochs[i - 1]`` epochs.

    Example (the paper's AM-2K recipe): ``values=[1, 0.1, 0.05]``, ``milestones_epochs=[60, 90]``.
    Returns a :class:`detectron2.solver.WarmupParamScheduler` for ``hooks.LRScheduler``.
    """
    if len(values) != len(milestones_epochs) + 1:
        raise ValueError(
            f"values needs one entry more than milestones_epochs, got {values} and "
            f"{milestones_epochs}"
        )
    milestones = [epochs_to_iters(e, iters_per_epoch) for e in milestones_epochs]
    # MultiStepParamScheduler needs strictly increasing milestones below num_updates; milestones
    # beyond the run (a shortened run) simply never apply.
    kept = [m for m in milestones if 0 < m < max_iter]
    kept = sorted(set(kept))
    scheduler = MultiStepParamScheduler(
        values=list(values[: len(kept) + 1]), milestones=kept, num_updates=max_iter
    )
    return WarmupParamScheduler(
        scheduler,
        warmup_factor=warmup_factor,
        warmup_length=min(1.0, warmup_iters / max(1, max_iter)),
        warmup_method="linear",
    )


def resolve_schedule(cfg):
    """Fill the iteration counts of ``cfg.train`` from its epoch counts, in place.

    Reads ``cfg.train.epochs``, ``eval_period_epochs``, ``checkpointer.period_epochs``, the
    number of training images (``cfg.dataloader.train.dataset``) and
    ``cfg.dataloader.train.total_batch_size``; sets ``iters_per_epoch``, ``max_iter`` (unless
    given explicitly, e.g. ``train.max_iter=100`` on the command line), ``eval_period`` and
    ``checkpointer.period``. Returns the number of training images.
    """
    num_images = len(instantiate(cfg.dataloader.train.dataset))
    if num_images == 0:
        raise ValueError(f"the training dataset {cfg.dataloader.train.dataset} is empty")
    batch = cfg.dataloader.train.total_batch_size
    ipe = num_images / batch
    train = cfg.train
    train.iters_per_epoch = ipe
    if train.get("max_iter") is None:
        train.max_iter = epochs_to_iters(train.epochs, ipe)
        how = f"{train.epochs} epochs x {num_images} images / batch {batch}"
    else:
        how = f"given explicitly (= {train.max_iter / ipe:.2f} epochs)"
    train.eval_period = epochs_to_iters(train.eval_period_epochs, ipe)
    train.checkpointer.period = (
        epochs_to_iters(train.checkpointer.period_epochs, ipe) or train.max_iter
    )
    logger.info(
        f"Schedule: {train.max_iter} iterations ({how}); {ipe:.2f} iterations per epoch; "
        f"evaluation every {train.eval_period or 'end only'}, "
        f"checkpoint every {train.checkpointer.period} iterations"
    )
    return num_images
