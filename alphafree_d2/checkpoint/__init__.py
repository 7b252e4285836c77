"""Checkpoints: atomic saving, clear load errors, and conversion of pretrained ViT weights."""
from .matting_checkpointer import INIT_CHECKPOINT_HINT, CheckpointError, MattingCheckpointer
from .pretrained import convert_vit_checkpoint, load_pretrained_state_dict

__all__ = [
    "INIT_CHECKPOINT_HINT",
    "CheckpointError",
    "MattingCheckpointer",
    "convert_vit_checkpoint",
    "load_pretrained_state_dict",
]
