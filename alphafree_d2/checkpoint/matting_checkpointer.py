"""Checkpointing that survives being killed mid-write and explains bad files."""
import os

import torch

from detectron2.checkpoint import DetectionCheckpointer

from ..utils.file_io import atomic_write

__all__ = ["MattingCheckpointer", "CheckpointError", "INIT_CHECKPOINT_HINT"]

INIT_CHECKPOINT_HINT = (
    "Convert a pretrained backbone with\n"
    "  python tools/convert_pretrained.py --format dino PATH/dino_deitsmall16_pretrain.pth "
    "pretrained/dino_vit_s16.pth\n"
    "(or --format mae / timm), or train from scratch with train.init_checkpoint=''."
)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a checkpoint."""


class MattingCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` with atomic writes and clear load errors.

    - ``save`` writes to a temporary file in the same folder and renames it into place, and
      ``last_checkpoint`` is replaced the same way, so a run killed at any moment leaves either
      the previous or the new checkpoint, never a truncated one that ``--resume`` would pick.
    - ``load`` of a missing, truncated or foreign file raises :class:`CheckpointError` naming it.
    """

    def save(self, name, **kwargs):
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {path}")
        with atomic_write(path) as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        path = os.path.join(self.save_dir, "last_checkpoint")
        with atomic_write(path, "w") as f:
            f.write(last_filename_basename)

    def load(self, path, checkpointables=None):
        if path and not os.path.isfile(path) and "://" not in path:
            raise CheckpointError(f"checkpoint {path} does not exist.\n{INIT_CHECKPOINT_HINT}")
        return super().load(path, checkpointables)

    def _load_file(self, filename):
        try:
            return super()._load_file(filename)
        except Exception as e:  # unpickling a damaged file fails in many different ways
            raise CheckpointError(
                f"{filename}: cannot be read as a checkpoint ({type(e).__name__}: {e}). It may be "
                f"truncated by an interrupted copy or not a PyTorch/detectron2 checkpoint."
            ) from e
