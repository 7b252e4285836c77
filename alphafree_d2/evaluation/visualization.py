"""Small visual reports of matting results: image | ground truth | prediction | error.

The grids are what the paper's Fig. 2 and Fig. 7 show side by side; during training they go to
TensorBoard through detectron2's EventStorage (``TensorboardXWriter`` writes ``put_image`` data).
"""

import os
from typing import Mapping, Optional

import cv2
import numpy as np

from ..utils.file_io import write_png

__all__ = ["make_matting_grid", "log_matting_visuals"]

_TITLES = ("image", "ground truth", "prediction", "|error|")
_GAP = 4  # pixels of white between tiles


def make_matting_grid(image, gt, pred, max_side=256):
    """
    Build one row of four tiles: the image, the ground-truth alpha, the predicted alpha and the
    absolute error (colour map "inferno": black = 0, yellow = 1), each titled.

    Args:
        image: uint8 (H', W', 3) RGB image (resized to the alpha's size if it differs).
        gt, pred: (H, W) alphas, float in [0, 1] or uint8 8-bit codes.
        max_side (int): each tile is shrunk (area interpolation) so that its longer side is at
            most this many pixels; smaller inputs keep their size.

    Returns:
        uint8 (h, 4 * w + 3 * gap, 3) RGB array.
    """
    gt, pred = _unit_float(gt, "gt"), _unit_float(pred, "pred")
    if gt.shape != pred.shape:
        raise ValueError(f"make_matting_grid: gt {gt.shape} and pred {pred.shape} differ in shape")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"make_matting_grid: image must be uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}"
        )
    height, width = gt.shape
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # cv2 order (w, h)

    def fit(tile):
        if tile.shape[1::-1] == size:
            return tile
        return cv2.resize(tile, size, interpolation=cv2.INTER_AREA)

    def gray(alpha):
        return np.repeat(np.rint(alpha * 255).astype(np.uint8)[:, :, None], 3, axis=2)

    error = np.rint(np.abs(pred - gt) * 255).astype(np.uint8)
    # applyColorMap returns BGR: flip to RGB like the other tiles.
    error_tile = cv2.applyColorMap(error, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    tiles = [fit(np.ascontiguousarray(t)) for t in (image, gray(gt), gray(pred), error_tile)]
    for tile, title in zip(tiles, _TITLES):
        _put_title(tile, title)
    gap = np.full((size[1], _GAP, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    return np.concatenate(row, axis=1)


def log_matting_visuals(
    grids: Mapping[str, np.ndarray], output_dir: Optional[str] = None, tag: str = "matting"
):
    """
    Save grids as PNG files and, when a detectron2 EventStorage is active (during training),
    hand them to it for TensorBoard.

    Args:
        grids: image_id -> uint8 (h, w, 3) RGB grid from :func:`make_matting_grid`.
        output_dir: the PNGs go to ``output_dir/<image_id>.png`` (overwritten at each call);
            None writes nothing. Paths are checked to stay inside ``output_dir``.
        tag: TensorBoard names are ``<tag>/<image_id>``.

    Returns:
        list[str]: the files written.
    """
    written = []
    for image_id in sorted(grids):
        grid = grids[image_id]
        if output_dir is not None:
            path = path_inside(output_dir, f"{image_id}.png")
            write_png(path, grid, order="RGB")
            written.append(path)
    storage = _current_event_storage()
    if storage is not None:
        for image_id in sorted(grids):
            storage.put_image(
                f"{tag}/{image_id}", np.ascontiguousarray(grids[image_id].transpose(2, 0, 1))
            )
    return written


def path_inside(root, relative):
    """``root/relative``, refusing anything that would resolve outside ``root``."""
    root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, path]) != root or path == root:
        raise ValueError(f"{relative!r} would be written outside the output folder {root}")
    return path


def _current_event_storage():
    from detectron2.utils.events import get_event_storage

    try:
        return get_event_storage()
    except AssertionError:  # raised when no `with EventStorage(...)` is active
        return None


def _unit_float(alpha, name):
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"make_matting_grid: {name} must be (H, W), got {alpha.shape}")
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) / 255.0
    return np.clip(alpha.astype(np.float32), 0.0, 1.0)


def _put_title(tile, text):
    """Write ``text`` in the top-left corner, white on a dark outline, in place."""
    scale = 0.35 if tile.shape[1] >= 120 else 0.25
    origin = (3, 11 if scale > 0.3 else 8)
    cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )
