"""Tables and figures of benchmarks/loss_policies.py: Markdown in the paper's column order, and
the paper's Fig. 2 / Fig. 7 layout (image | one column per policy | ground truth).

Everything here reads files the runs wrote (the evaluator's per-image CSVs and 8-bit prediction
PNGs) or the datasets' own files; nothing is trained or inferred.
"""

import csv
import math
import os
from typing import Dict, List, Mapping, Sequence

import cv2
import numpy as np

from alphafree_d2.data import read_alpha, read_image, read_trimap
from alphafree_d2.evaluation import METRIC_KEYS, matting_metrics
from alphafree_d2.utils.file_io import write_png

__all__ = [
    "PAPER_COLUMNS",
    "read_per_image_csv",
    "mean_metrics",
    "reference_metrics",
    "aggregate",
    "markdown_table",
    "detail_box",
    "policy_figure",
]

# The paper's column order (Tables 1-8), then one diagnostic column that is not in the paper.
PAPER_COLUMNS = METRIC_KEYS["whole_image"]  # SAD, MAD, MSE, Grad, Conn, SAD-T, MSE-T
EXTRA_COLUMNS = ("SAD-K",)
_DECIMALS = {"SAD": 2, "MAD": 4, "MSE": 4, "Grad": 2, "Conn": 2, "SAD-T": 2, "MSE-T": 4, "SAD-K": 2}


def read_per_image_csv(path) -> List[Dict[str, float]]:
    """Rows of a MattingEvaluator ``*_per_image.csv``: {"image_id": str, metric: float, ...}."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: the evaluator's per-image CSV is missing")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no image was evaluated")
    return [{k: (v if k == "image_id" else float(v)) for k, v in row.items()} for row in rows]


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> Dict[str, float]:
    """Mean over images of each metric (nan values left out, as MattingEvaluator does), plus
    ``SAD-K = SAD - SAD-T``: the error the prediction makes where the evaluation trimap is known
    (exactly so when the ground truth is 0 / 1 on the trimap's known pixels)."""
    out = {}
    for key in PAPER_COLUMNS:
        values = np.array([row[key] for row in rows], dtype=np.float64)
        values = values[~np.isnan(values)]
        out[key] = float(values.mean()) if values.size else math.nan
    out["SAD-K"] = out["SAD"] - out["SAD-T"]
    return out


def _gt_codes(alpha):
    """read_alpha's float alpha -> its 8-bit codes when it came from an 8-bit file (what the
    evaluator hands the metrics), else the floats."""
    codes = np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    return codes if np.array_equal(codes.astype(np.float32) / 255.0, alpha) else alpha


def reference_metrics(records) -> Dict[str, Dict[str, float]]:
    """Metrics of two predictions that need no model, for scale:

    - "all background": alpha = 0 everywhere (the trivial solution an L1 loss on a mostly
      background label collapses to; a model must beat it to have learnt anything);
    - "evaluation trimap": the test trimap itself as alpha (0 / 0.5 / 1), i.e. a perfect coarse
      segmentation that uses the test-time trimap, which the models never see.
    """
    rows = {"all background": [], "evaluation trimap": []}
    for record in records:
        gt = read_alpha(record["alpha_file_name"])
        trimap = read_trimap(record["trimap_file_name"])
        gt_in = _gt_codes(gt)
        zeros = np.zeros(gt.shape, np.float32)
        as_alpha = np.where(trimap == 128, 0.5, trimap / 255.0).astype(np.float32)
        rows["all background"].append(matting_metrics(zeros, gt_in, trimap))
        rows["evaluation trimap"].append(matting_metrics(as_alpha, gt_in, trimap))
    return {name: mean_metrics(r) for name, r in rows.items()}


def aggregate(per_seed: Sequence[Mapping[str, float]]) -> Dict[str, tuple]:
    """{metric: (mean over seeds, sample standard deviation or nan for one seed, n)}."""
    out = {}
    for key in (*PAPER_COLUMNS, *EXTRA_COLUMNS):
        values = np.array([m[key] for m in per_seed], dtype=np.float64)
        values = values[~np.isnan(values)]
        if values.size == 0:
            out[key] = (math.nan, math.nan, 0)
            continue
        std = float(values.std(ddof=1)) if values.size > 1 else math.nan
        out[key] = (float(values.mean()), std, int(values.size))
    return out


def _cell(key, mean, std):
    if math.isnan(mean):
        return "n/a"
    d = _DECIMALS[key]
    return f"{mean:.{d}f}" if math.isnan(std) else f"{mean:.{d}f} ± {std:.{d}f}"


def markdown_table(rows: Sequence[tuple], references: Mapping[str, Mapping[str, float]] = ()):
    """Markdown table: one row per ``(policy title, label, paper row, aggregate(...))`` in the
    paper's column order, then SAD-K; then the ``references`` rows (no spread)."""
    columns = (*PAPER_COLUMNS, *EXTRA_COLUMNS)
    lines = [
        "| Loss policy | Label | Paper | " + " | ".join(columns) + " |",
        "|---|---|---|" + "---:|" * len(columns),
    ]
    for title, label, paper, stats in rows:
        cells = [_cell(k, stats[k][0], stats[k][1]) for k in columns]
        lines.append(f"| {title} | {label} | {paper} | " + " | ".join(cells) + " |")
    for name, metrics in dict(references).items():
        cells = [_cell(k, metrics[k], math.nan) for k in columns]
        lines.append(f"| *reference: {name}* | - | - | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figure


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
    rows = []
    for record in records:
        image_id = record["image_id"]
        image = read_image(record["file_name"], "RGB")
        gt = read_alpha(record["alpha_file_name"])
        trimap = read_trimap(record["trimap_file_name"])
        preds = []
        for column in predictions:
            pred = read_alpha(column[image_id])
            if pred.shape != gt.shape:
                raise ValueError(
                    f"{column[image_id]} is {pred.shape[1]}x{pred.shape[0]}, but the ground truth "
                    f"{record['alpha_file_name']} is {gt.shape[1]}x{gt.shape[0]}"
                )
            preds.append(pred)
        full = [image, *(_gray(p) for p in preds), _gray(gt)]
        h, w = gt.shape
        size = (tile_width, max(1, round(tile_width * h / w)))
        tiles = [cv2.resize(t, size, interpolation=cv2.INTER_AREA) for t in full]
        _label(tiles[0], image_id)
        band_rows = [tiles]
        if zoom:
            x0, y0, side = detail_box(gt, trimap)
            scale = tile_width / w
            p0 = (int(x0 * scale), int(y0 * scale))
            p1 = (int((x0 + side) * scale), int((y0 + side) * scale))
            cv2.rectangle(tiles[0], p0, p1, (255, 40, 40), 1)
            crops = [t[y0 : y0 + side, x0 : x0 + side] for t in full]
            zoomed = [
                cv2.resize(c, (tile_width, tile_width), interpolation=cv2.INTER_NEAREST)
                for c in crops
            ]
            _label(zoomed[0], "detail (red box)")
            band_rows.append(zoomed)
        for band in band_rows:
            parts = []
            for i, tile in enumerate(band):
                if i:
                    parts.append(np.full((tile.shape[0], gap, 3), 255, np.uint8))
                parts.append(tile)
            rows.append(np.concatenate(parts, axis=1))
            rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    header = _title_band(columns, [tile_width] * len(columns), gap)
    figure = np.concatenate([header, *rows], axis=0)
    write_png(path, np.ascontiguousarray(figure[:, :, ::-1]))
    return path
