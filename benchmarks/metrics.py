#!/usr/bin/env python
"""Speed of ``alphafree_d2.evaluation.matting_metrics`` against plain re-implementations of the
published evaluation scripts, on real-size synthetic mattes.

    python benchmarks/metrics.py [--repeats 5] [--sizes 524x800 1080x1920]

For each size and protocol it prints the best-of-``repeats`` time of the reference and of the
package, their ratio, and the largest absolute difference over the metrics (0 means identical).

The references are the tests' plain formulations (``alphafree_d2/utils/testing.py``),
which follow the published code's operations and dtypes literally; here they also compute the
whole-image connectivity's per-threshold distance transform that the script never uses:
- whole image: ``core/evaluate.py`` of JizhiziLi/GFM and JizhiziLi/P3M (as ``core/test.py``
  calls it: float64 prediction, ``uint8 / 255.`` ground truth);
- unknown region: ``evaluation.py`` of poppuppy/alpha-free-matting (float32 0..255 arrays).
"""

import argparse
import time

import cv2
import numpy as np

from alphafree_d2.evaluation import matting_metrics
from alphafree_d2.utils.testing import ref_unknown_region, ref_whole_image

# --- synthetic mattes -------------------------------------------------------------------------


def synthetic_sample(height, width, seed=0):
    """
    A portrait-like matte: a solid body with a soft edge, hair strands (thin soft curves) and
    a few semi-transparent patches; a prediction with a blurred edge, noise, missed strands and
    false positives; the trimap from eroding / dilating the ground truth.

    Returns:
        pred (float64 (H, W) in [0, 1]), gt (uint8 (H, W)), trimap (uint8 {0, 128, 255}).
    """
    rng = np.random.default_rng(seed)
    scale = min(height, width)
    body = np.zeros((height, width), np.uint8)
    cv2.ellipse(
        body,
        (width // 2, int(height * 0.55)),
        (int(width * 0.22), int(height * 0.4)),
        0,
        0,
        360,
        255,
        -1,
    )
    cv2.circle(body, (width // 2, int(height * 0.3)), int(scale * 0.18), 255, -1)
    alpha = cv2.GaussianBlur(body.astype(np.float32) / 255, (0, 0), scale / 300)

    strands = np.zeros((height, width), np.float32)
    for _ in range(120):
        angle = rng.uniform(-np.pi, 0)
        x, y = width / 2 + rng.normal(0, scale * 0.1), height * 0.3 + rng.normal(0, scale * 0.08)
        points = []
        for _ in range(30):
            angle += rng.normal(0, 0.15)
            x, y = x + np.cos(angle) * scale / 120, y + np.sin(angle) * scale / 120
            points.append((x, y))
        cv2.polylines(strands, [np.int32(points)], False, float(rng.uniform(0.3, 1.0)), 1)
    alpha = np.maximum(alpha, cv2.GaussianBlur(strands, (0, 0), 0.8))
    for _ in range(6):  # semi-transparent patches (veil, glass)
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        patch = np.zeros_like(alpha)
        cv2.circle(
            patch, centre, int(scale * rng.uniform(0.03, 0.08)), float(rng.uniform(0.2, 0.7)), -1
        )
        alpha = np.maximum(alpha, cv2.GaussianBlur(patch, (0, 0), 3))
    gt = np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)

    pred = cv2.GaussianBlur(gt.astype(np.float32) / 255, (0, 0), 1.5).astype(np.float64)
    pred += rng.normal(0, 0.03, pred.shape) * (pred > 0.02)
    pred[(strands > 0.8) & (body == 0)] *= 0.5  # partly missed hair
    for _ in range(10):  # false positives in the background
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(pred, centre, int(scale * 0.01), float(rng.uniform(0.2, 1.0)), -1)
    pred = np.clip(pred, 0, 1)

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (25, 25))
    foreground = cv2.erode((gt == 255).astype(np.uint8), kernel)
    band = cv2.dilate((gt > 0).astype(np.uint8), kernel)
    trimap = np.where(foreground > 0, 255, np.where(band > 0, 128, 0)).astype(np.uint8)
    return pred, gt, trimap


def best_time(fn, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--sizes", nargs="+", default=["524x800", "1080x1920"], help="HxW of the synthetic mattes"
    )
    args = parser.parse_args()

    print(
        f"{'size':>10} {'protocol':>15} {'reference s':>12} {'ours s':>9} {'ratio':>7} "
        f"{'max |diff|':>11}"
    )
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        pred, gt, trimap = synthetic_sample(height, width)
        # Inputs as each script sees them (see alphafree_d2/evaluation/metrics.py).
        cases = {
            "whole_image": lambda: ref_whole_image(
                pred, gt / 255.0, trimap, unused_distance_transform=True
            ),
            "unknown_region": lambda: ref_unknown_region(
                (pred * 255.0).astype(np.float32), gt.astype(np.float32), trimap.astype(np.float32)
            ),
        }
        for protocol, reference in cases.items():
            ref_time, ref = best_time(reference, args.repeats)
            our_time, ours = best_time(
                lambda: matting_metrics(pred, gt, trimap, protocol=protocol), args.repeats
            )
            diff = max(abs(ours[k] - float(ref[k])) for k in ours)
            print(
                f"{size:>10} {protocol:>15} {ref_time:12.3f} {our_time:9.3f} "
                f"{ref_time / our_time:6.1f}x {diff:11.3g}"
            )


if __name__ == "__main__":
    main()
