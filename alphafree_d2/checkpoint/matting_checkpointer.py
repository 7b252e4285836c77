"""Checkpointing that survives being killed mid-write and explains bad files."""
import os

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


class _AtomicWrites:
    """A path manager that delegates to another, except that local files opened for writing are
    :func:`~alphafree_d2.utils.file_io.atomic_write` contexts (temporary file + rename)."""

    def __init__(self, path_manager):
        self._path_manager = path_manager

    def open(self, path, mode="r", **kwargs):
        if "w" in mode and "://" not in path:
            return atomic_write(path, mode, **kwargs)
        return self._path_manager.open(path, mode, **kwargs)

    def __getattr__(self, name):
        return getattr(self._path_manager, name)


class MattingCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` with atomic writes and clear load errors.

    - fvcore's ``save`` and ``tag_last_checkpoint`` write through ``self.path_manager.open``;
      here that opens a temporary file in the same folder, renamed into place once complete, so
      a run killed at any moment leaves either the previous or the new checkpoint (and
      ``last_checkpoint``), never a truncated one that ``--resume`` would pick.
    - ``load`` of a missing, truncated or foreign file raises :class:`CheckpointError` naming it.
    """

    def __init__(self, model, save_dir="", **kwargs):
        super().__init__(model, save_dir, **kwargs)
        self.path_manager = _AtomicWrites(self.path_manager)

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
