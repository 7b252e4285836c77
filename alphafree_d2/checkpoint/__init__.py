"""Checkpoints: atomic saving, code-free and checked loading, and conversion of pretrained ViT
weights."""

from .matting_checkpointer import (
    INIT_CHECKPOINT_HINT,
    PARTIAL_CHECKPOINT_FLAG,
    CheckpointError,
    MattingCheckpointer,
    check_init_weights,
    load_trained_weights,
)
from .pretrained import convert_vit_checkpoint, load_pretrained_state_dict
from .safe_load import load_pickle_weights, load_torch_weights

__all__ = [
    "INIT_CHECKPOINT_HINT",
    "PARTIAL_CHECKPOINT_FLAG",
    "CheckpointError",
    "MattingCheckpointer",
    "load_trained_weights",
    "check_init_weights",
    "convert_vit_checkpoint",
    "load_pretrained_state_dict",
    "load_pickle_weights",
    "load_torch_weights",
]
