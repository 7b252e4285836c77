"""The comparison figure of the loss-policy benchmark, in the paper's Fig. 2 / Fig. 7 layout:
image | one column per policy | ground truth, each row followed by a magnified detail.

It reads the 8-bit prediction PNGs the runs wrote and the datasets' own files; nothing is
trained or inferred.
"""

import cv2
import numpy as np

from alphafree_d2.data import read_alpha, read_image, read_trimap
from alphafree_d2.utils.file_io import write_png

__all__ = ["detail_box", "policy_figure"]


def detail_box(gt, trimap, fraction=1 / 3):
    """(x0, y0, side) of a square of side ``fraction * min(H, W)`` around the most detailed part
    of the transition band: the position that maximises the ground truth's gradient magnitude
    summed over the square, counted on unknown (128) trimap pixels only. Chosen from the ground
    truth and the trimap alone, never from predictions."""
    h, w = gt.shape
    side = max(8, int(min(h, w) * fraction))
    gx = cv2.Sobel(gt.astype(np.float32), cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(gt.astype(np.float32), cv2.CV_32F, 0, 1)
    detail = np.sqrt(gx * gx + gy * gy) * (trimap == 128)
    summed = cv2.boxFilter(
        detail, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT
    )
    half = side // 2
    valid = summed[half : h - side + half + 1, half : w - side + half + 1]
    if valid.size == 0:
        return 0, 0, min(h, w)
    y, x = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(x), int(y), side


def _gray(alpha):
    codes = np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    return np.repeat(codes[:, :, None], 3, axis=2)


def _title_band(titles, widths, gap, height=22):
    band = np.full((height, sum(widths) + gap * (len(widths) - 1), 3), 255, np.uint8)
    x = 0
    for title, width in zip(titles, widths):
        scale = 0.42
        (tw, _), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        while tw > width - 4 and scale > 0.25:
            scale -= 0.03
            (tw, _), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        org = (x + max(2, (width - tw) // 2), height - 7)
        cv2.putText(band, title, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        x += width + gap
    return band


def _label(tile, text):
    cv2.putText(tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA
    )


def _columns(record, predictions):
    """Full-resolution RGB columns of one record: image, each prediction, ground truth; and the
    ground truth and trimap (for the detail box)."""
    image_id = record["image_id"]
    gt = read_alpha(record["alpha_file_name"])
    preds = []
    for column in predictions:
        pred = read_alpha(column[image_id])
        if pred.shape != gt.shape:
            raise ValueError(
                f"{column[image_id]} is {pred.shape[1]}x{pred.shape[0]}, but the ground truth "
                f"{record['alpha_file_name']} is {gt.shape[1]}x{gt.shape[0]}"
            )
        preds.append(pred)
    image = read_image(record["file_name"], "RGB")
    return (
        [image, *(_gray(p) for p in preds), _gray(gt)],
        gt,
        read_trimap(record["trimap_file_name"]),
    )


def _bands(record, predictions, tile_width, zoom):
    """The figure bands of one record: its tiles, and with ``zoom`` the magnified details."""
    full, gt, trimap = _columns(record, predictions)
    h, w = gt.shape
    size = (tile_width, max(1, round(tile_width * h / w)))
    tiles = [cv2.resize(t, size, interpolation=cv2.INTER_AREA) for t in full]
    _label(tiles[0], record["image_id"])
    if not zoom:
        return [tiles]
    x0, y0, side = detail_box(gt, trimap)
    scale = tile_width / w
    p0 = (int(x0 * scale), int(y0 * scale))
    p1 = (int((x0 + side) * scale), int((y0 + side) * scale))
    cv2.rectangle(tiles[0], p0, p1, (255, 40, 40), 1)
    square = (tile_width, tile_width)
    zoomed = [
        cv2.resize(t[y0 : y0 + side, x0 : x0 + side], square, interpolation=cv2.INTER_NEAREST)
        for t in full
    ]
    _label(zoomed[0], "detail (red box)")
    return [tiles, zoomed]


def _join(tiles, gap):
    """Tiles of one height side by side with white ``gap``-pixel columns, then a white row."""
    parts = []
    for i, tile in enumerate(tiles):
        if i:
            parts.append(np.full((tile.shape[0], gap, 3), 255, np.uint8))
        parts.append(tile)
    row = np.concatenate(parts, axis=1)
    return [row, np.full((gap, row.shape[1], 3), 255, np.uint8)]


def policy_figure(records, predictions, titles, path, tile_width=200, zoom=True, gap=3):
    """Write the comparison figure as an RGB PNG at ``path``.

    Args:
        records: dataset records (``file_name``, ``alpha_file_name``, ``trimap_file_name``,
            ``image_id``), one figure row (two with ``zoom``) per record, in order.
        predictions: one ``{image_id: prediction PNG path}`` per policy, in column order.
        titles: column titles of the policies.
        tile_width: width in pixels of every tile; heights follow each image's aspect ratio.
        zoom: add, below each image, the :func:`detail_box` square of every column magnified
            to the tile width (nearest neighbour), outlined in red on the image tile.
    """
    columns = ["image", *titles, "ground truth"]
    rows = [_title_band(columns, [tile_width] * len(columns), gap)]
    for record in records:
        for band in _bands(record, predictions, tile_width, zoom):
            rows += _join(band, gap)
    figure = np.concatenate(rows, axis=0)
    write_png(path, np.ascontiguousarray(figure[:, :, ::-1]))
    return path
