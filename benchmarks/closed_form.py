"""Reference rows for the trimap-guided benchmarks: classical trimap-based matting (pymatting's
closed-form matting, Levin et al. 2008, and KNN matting, Chen et al. 2013) on the same images
with the same evaluation trimaps the trimap-guided models get as input.

Nothing is trained: each method solves for alpha given the image and the trimap. Predictions are
written as 8-bit PNGs (for the figure); the metrics use the float predictions, as the
evaluator does for the models. Used by ``python -m benchmarks.loss_policies --trimap-input``;
to compute the references ahead of its report:

    python -m benchmarks.closed_form OUTPUT_DIR [--real-dir DIR]
"""

import argparse
import json
import os
import time
from typing import Dict, Mapping, Sequence

import numpy as np

from alphafree_d2.data import read_alpha, read_image, read_trimap
from alphafree_d2.evaluation import as_8bit_codes, matting_metrics
from alphafree_d2.utils.file_io import write_png

__all__ = ["METHODS", "closed_form_references", "trimap_pngs"]

# name -> (table title, pymatting function name)
METHODS = {
    "closed_form": ("closed-form matting (pymatting estimate_alpha_cf)", "estimate_alpha_cf"),
    "knn": ("KNN matting (pymatting estimate_alpha_knn)", "estimate_alpha_knn"),
}


def _cached(folder, ids):
    """The result stored in ``folder/metrics.json`` when it is for these image ids, else None."""
    cache = os.path.join(folder, "metrics.json")
    if not os.path.isfile(cache):
        return None
    with open(cache, encoding="utf-8") as f:
        cached = json.load(f)
    if cached["image_ids"] != ids:
        return None
    cached["predictions"] = {i: os.path.join(folder, i + ".png") for i in ids}
    return cached


def _solve(method, records, folder):
    """Run ``method`` on ``records`` (sorted by id), write its PNGs and ``metrics.json``."""
    import pymatting

    title, fn_name = METHODS[method]
    solve = getattr(pymatting, fn_name)
    rows, predictions, seconds = [], {}, 0.0
    for record in records:
        image = read_image(record["file_name"], "RGB").astype(np.float64) / 255.0
        trimap = read_trimap(record["trimap_file_name"])
        gt = read_alpha(record["alpha_file_name"])
        start = time.perf_counter()
        alpha = solve(image, trimap.astype(np.float64) / 255.0)
        seconds += time.perf_counter() - start
        alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
        rows.append(matting_metrics(alpha, as_8bit_codes(gt), trimap))
        path = os.path.join(folder, record["image_id"] + ".png")
        write_png(path, np.rint(alpha * 255).astype(np.uint8))
        predictions[record["image_id"]] = path
    result = {
        "title": title,
        "image_ids": [r["image_id"] for r in records],
        "rows": rows,
        "seconds_per_image": seconds / max(1, len(records)),
    }
    with open(os.path.join(folder, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return {**result, "predictions": predictions}


def closed_form_references(
    records: Sequence[Mapping], output_dir: str, methods: Sequence[str] = tuple(METHODS)
) -> Dict[str, dict]:
    """Run each method on every record; write ``output_dir/<method>/<image_id>.png`` and the
    per-image metrics to ``output_dir/<method>/metrics.json``, which a later call with the same
    records reuses instead of solving again (so the references can be computed ahead of the
    report, e.g. ``python -m benchmarks.closed_form OUTPUT --real-dir DIR``).

    Returns:
        {method: {"title": str, "rows": [per-image metrics], "predictions": {image_id: png},
        "seconds_per_image": float}}; metrics from :func:`matting_metrics` (whole image).
    """
    ordered = sorted(records, key=lambda r: r["image_id"])
    ids = [r["image_id"] for r in ordered]
    out = {}
    for method in methods:
        folder = os.path.join(output_dir, method)
        out[method] = _cached(folder, ids) or _solve(method, ordered, folder)
    return out


def trimap_pngs(records: Sequence[Mapping], output_dir: str) -> Dict[str, str]:
    """The snapped evaluation trimaps as grayscale PNGs (a figure column)."""
    paths = {}
    for record in records:
        path = os.path.join(output_dir, record["image_id"] + ".png")
        write_png(path, read_trimap(record["trimap_file_name"]))
        paths[record["image_id"]] = path
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output", help="the benchmark's --output")
    parser.add_argument("--real-dir", help="also DIR/{image,trimap,alpha}/")
    args = parser.parse_args(argv)
    from detectron2.data import DatasetCatalog

    import alphafree_d2  # noqa: F401  (registers demo_val)
    from alphafree_d2.data import register_matting_dataset

    jobs = [("demo_val", DatasetCatalog.get("demo_val"))]
    if args.real_dir:
        name = "closed_form_real"
        register_matting_dataset(
            name, *(os.path.join(args.real_dir, s) for s in ("image", "trimap", "alpha"))
        )
        jobs.append(("real", DatasetCatalog.get(name)))
    for label, records in jobs:
        result = closed_form_references(records, os.path.join(args.output, "closed_form", label))
        for method, r in result.items():
            print(label, method, f"{r['seconds_per_image']:.2f} s/image", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
