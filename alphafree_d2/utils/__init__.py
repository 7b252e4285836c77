"""Small helpers shared by the package."""
from .file_io import atomic_write, write_png

__all__ = ["atomic_write", "write_png"]
