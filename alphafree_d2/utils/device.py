"""Choosing the device to run on."""

import torch

__all__ = ["resolve_device"]


def resolve_device(device=None) -> torch.device:
    """None or "auto" -> CUDA when a GPU is visible, else CPU; "cuda" without a GPU is an error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(device)!r} was asked for but no CUDA device is visible; use cpu or auto"
        )
    return device
