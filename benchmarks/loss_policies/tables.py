"""The metrics tables of the loss-policy benchmark: per-image CSVs read back, means over
images, mean ± standard deviation over seeds, reference rows, Markdown in the paper's column
order.

Everything here reads files the runs wrote (the evaluator's per-image CSVs) or the datasets' own
files; nothing is trained or inferred.
"""

import csv
import math
import os
from typing import Dict, List, Mapping, Sequence

import numpy as np

from alphafree_d2.data import read_alpha, read_trimap
from alphafree_d2.evaluation import METRIC_KEYS, as_8bit_codes, matting_metrics

__all__ = [
    "PAPER_COLUMNS",
    "read_per_image_csv",
    "mean_metrics",
    "reference_metrics",
    "aggregate",
    "markdown_table",
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
        gt_in = as_8bit_codes(gt)
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
