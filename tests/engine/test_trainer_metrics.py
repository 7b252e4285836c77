"""MattingTrainer logs every loss term under its own name, also when there is only one
(detectron2's SimpleTrainer logs the terms only when there are several)."""

import torch
from torch import nn

from detectron2.utils.events import EventStorage

from alphafree_d2.engine.trainer import MattingTrainer


class _Model(nn.Module):
    def __init__(self, names):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.names = names

    def forward(self, data):
        return {name: self.weight * (i + 1) for i, name in enumerate(self.names)}


def test_single_and_several_loss_terms_are_logged():
    for names in (["loss_known"], ["loss_known", "loss_ddc"]):
        model = _Model(names)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        trainer = MattingTrainer(model, iter([None] * 3), optimizer)
        with EventStorage(0) as storage:
            trainer.iter = 0
            trainer.run_step()
            latest = storage.latest()
        assert latest["total_loss"][0] == sum(range(1, len(names) + 1))
        for i, name in enumerate(names):
            assert latest[name][0] == i + 1
