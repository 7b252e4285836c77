"""Hooks that make a resumed run continue its folder cleanly (main process only).

A run killed after its checkpoint at iteration N had already logged iterations past N, and may
have been killed while writing a checkpoint. ``--resume`` redoes the iterations after N, so:

- :class:`DropRedoneRecords` removes the records of iterations >= the start iteration from
  ``metrics.json`` before training starts (the redone iterations are logged once, by the run
  that counts; with no checkpoint the start is 0 and every record goes). The final evaluation
  of a finished run is logged at iteration ``max_iter``, which is where resuming it starts: that
  record (evaluation metrics only, no ``total_loss``) evaluates the checkpoint the resumed run
  starts from, and stays;
- :class:`PeriodicCheckpointer` removes the temporary files of interrupted checkpoint writes and
  counts the checkpoints already in the folder towards ``max_to_keep``.
"""

import json
import logging
import os
import re

from detectron2.engine import hooks

__all__ = ["DropRedoneRecords", "PeriodicCheckpointer", "drop_records_from"]

logger = logging.getLogger(__name__)


def _kept(record, start_iter):
    iteration = record.get("iteration", -1)
    final_evaluation = iteration == start_iter > 0 and "total_loss" not in record
    return iteration < start_iter or final_evaluation


def drop_records_from(json_file, start_iter):
    """Cut ``json_file`` (detectron2's ``metrics.json``: one JSON record per line, in the order
    written) before its first record with ``iteration >= start_iter`` or its first unreadable
    line (a write cut short by a kill); a record at ``start_iter`` without ``total_loss`` (the
    final evaluation of the run that wrote the checkpoint resumed from) is kept. The file is
    truncated in place, so a writer that holds it open in append mode goes on writing at the new
    end. Returns the number of lines dropped.
    """
    if not os.path.isfile(json_file):
        return 0
    with open(json_file, "rb") as f:
        lines = f.readlines()
    offset = 0
    for i, line in enumerate(lines):
        try:
            keep = _kept(json.loads(line), start_iter)
        except (ValueError, AttributeError):
            keep = False
        if not keep or not line.endswith(b"\n"):
            os.truncate(json_file, offset)
            return len(lines) - i
        offset += len(line)
    return 0


class DropRedoneRecords(hooks.HookBase):
    """Before training, drop the records of the iterations this run (re)does from
    ``json_file`` (see :func:`drop_records_from`)."""

    def __init__(self, json_file):
        self.json_file = json_file

    def before_train(self):
        dropped = drop_records_from(self.json_file, self.trainer.start_iter)
        if dropped:
            logger.info(
                f"Resuming at iteration {self.trainer.start_iter}: dropped {dropped} record(s) of "
                f"iterations to be redone from {self.json_file}"
            )


class PeriodicCheckpointer(hooks.PeriodicCheckpointer):
    """detectron2's hook, for a :class:`~alphafree_d2.checkpoint.MattingCheckpointer`, that
    before training removes the temporary files of interrupted checkpoint writes and makes
    ``max_to_keep`` count the periodic checkpoints (``model_NNNNNNN.pth``) already in the
    folder, oldest first, so a resumed run keeps at most ``max_to_keep`` of them in all."""

    def before_train(self):
        super().before_train()
        self.checkpointer.remove_interrupted_writes()
        if self.max_to_keep is None:
            return
        pattern = re.compile(rf"{re.escape(self.file_prefix)}_(\d{{7}})\.pth")
        found = sorted(
            (int(m.group(1)), name)
            for name in os.listdir(self.checkpointer.save_dir)
            if (m := pattern.fullmatch(name)) and int(m.group(1)) < self.trainer.start_iter
        )
        self.recent_checkpoints = [os.path.join(self.checkpointer.save_dir, n) for _, n in found]

    def step(self, iteration, **kwargs):
        super().step(iteration, **kwargs)
        if self.max_to_keep is None:
            return
        while len(self.recent_checkpoints) > self.max_to_keep:  # fvcore removes one per save
            old = self.recent_checkpoints.pop(0)
            if os.path.isfile(old):
                os.remove(old)
