"""Reference rows for the trimap-guided loss-policy benchmark: classical trimap-based matting
(pymatting's closed-form matting, Levin et al. 2008, and KNN matting, Chen et al. 2013) on the
same images with the same evaluation trimaps the trimap-guided models get as input.

Nothing is trained: each method solves for alpha given the image and the trimap. Predictions are
written as 8-bit PNGs (for the figure); the metrics use the float predictions, as the
evaluator does for the models.
"""

import json
import os
import time
from typing import Dict, Mapping, Sequence

import numpy as np

from alphafree_d2.data import read_alpha, read_image, read_trimap
from alphafree_d2.evaluation import matting_metrics
from alphafree_d2.utils.file_io import write_png

__all__ = ["METHODS", "closed_form_references"]

# name -> (table title, pymatting function name)
METHODS = {
    "closed_form": ("closed-form matting (pymatting estimate_alpha_cf)", "estimate_alpha_cf"),
    "knn": ("KNN matting (pymatting estimate_alpha_knn)", "estimate_alpha_knn"),
}


def closed_form_references(
    records: Sequence[Mapping], output_dir: str, methods: Sequence[str] = tuple(METHODS)
) -> Dict[str, dict]:
    """Run each method on every record; write ``output_dir/<method>/<image_id>.png`` and the
    per-image metrics to ``output_dir/<method>/metrics.json``, which a later call with the same
    records reuses instead of solving again (so the references can be computed ahead of the
    report, e.g. ``python benchmarks/_closed_form.py OUTPUT --real-dir DIR``).

    Returns:
        {method: {"title": str, "rows": [per-image metrics], "predictions": {image_id: png},
        "seconds_per_image": float}}; metrics from :func:`matting_metrics` (whole image).
    """
    import pymatting
    from _policy_report import _gt_codes

    out = {}
    for method in methods:
        title, fn_name = METHODS[method]
        solve = getattr(pymatting, fn_name)
        folder = os.path.join(output_dir, method)
        ordered = sorted(records, key=lambda r: r["image_id"])
        ids = [r["image_id"] for r in ordered]
        cache = os.path.join(folder, "metrics.json")
        if os.path.isfile(cache):
            with open(cache, encoding="utf-8") as f:
                cached = json.load(f)
            if cached["image_ids"] == ids:
                cached["predictions"] = {i: os.path.join(folder, i + ".png") for i in ids}
                out[method] = cached
                continue
        rows, predictions, seconds = [], {}, 0.0
        for record in ordered:
            image = read_image(record["file_name"], "RGB").astype(np.float64) / 255.0
            trimap = read_trimap(record["trimap_file_name"])
            gt = read_alpha(record["alpha_file_name"])
            start = time.perf_counter()
            alpha = solve(image, trimap.astype(np.float64) / 255.0)
            seconds += time.perf_counter() - start
            alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
            rows.append(matting_metrics(alpha, _gt_codes(gt), trimap))
            path = os.path.join(folder, record["image_id"] + ".png")
            write_png(path, np.rint(alpha * 255).astype(np.uint8))
            predictions[record["image_id"]] = path
        out[method] = {
            "title": title,
            "image_ids": ids,
            "rows": rows,
            "seconds_per_image": seconds / max(1, len(records)),
        }
        with open(cache, "w", encoding="utf-8") as f:
            json.dump(out[method], f, indent=1)
        out[method]["predictions"] = predictions
    return out


def trimap_pngs(records: Sequence[Mapping], output_dir: str) -> Dict[str, str]:
    """The snapped evaluation trimaps as grayscale PNGs (a figure column)."""
    paths = {}
    for record in records:
        path = os.path.join(output_dir, record["image_id"] + ".png")
        write_png(path, read_trimap(record["trimap_file_name"]))
        paths[record["image_id"]] = path
    return paths


if __name__ == "__main__":
    # Compute the references ahead of benchmarks/loss_policies.py --trimap-input's report:
    #   python benchmarks/_closed_form.py OUTPUT_DIR [--real-dir DIR]
    import argparse
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser()
    parser.add_argument("output", help="the benchmark's --output")
    parser.add_argument("--real-dir")
    args = parser.parse_args()
    from detectron2.data import DatasetCatalog

    import alphafree_d2  # noqa: F401
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
