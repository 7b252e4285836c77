# Learning-rate multiplier in epochs (paper Sec. 4.1, AM-2K): warmup over 250 iterations from
# 0.001, then x1 -> x0.1 at epoch 60 -> x0.05 at epoch 90 of 100. Iterations per epoch and
# max_iter are filled in from the dataset size by alphafree_d2.engine.resolve_schedule.
from detectron2.config import LazyCall as L

from alphafree_d2.engine import warmup_multistep_lr

lr_multiplier = L(warmup_multistep_lr)(
    milestones_epochs=[60, 90],
    values=[1.0, 0.1, 0.05],
    warmup_iters=250,
    warmup_factor=0.001,
    iters_per_epoch="${train.iters_per_epoch}",
    max_iter="${train.max_iter}",
)
