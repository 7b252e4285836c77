"""Small helpers shared by the package."""

from .device import resolve_device
from .file_io import atomic_write, write_csv, write_json, write_png

__all__ = ["atomic_write", "resolve_device", "write_csv", "write_json", "write_png"]
