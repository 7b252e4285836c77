"""Cost of the demo page's closed-form reference column (alphafree_d2/app/trimaps.py) against the
number of unknown pixels, and what the page's budget (``reference_max_unknown``) does to it.

On skimage's astronaut (512 x 512) a disc-shaped foreground (radius 154 px) is surrounded by an
unknown ring of growing width (the rest is background); each trimap is solved by pymatting's closed-form matting
at full size and under the page's default budget (downscaled above it), best of ``--repeat``.
Prints the unknown pixels, both times and their ratio; wall times grow with the machine's load
(printed). Nothing is asserted.

    python -m benchmarks.closed_form_reference [--bands 8 24 48 96] [--repeat 2]
"""

import argparse
import os
import time

import cv2
import numpy as np


def _trimap(size, band):
    """Background, an unknown ring ``band`` px wide, a foreground disc (radius: 30 % of the
    smaller side)."""
    trimap = np.zeros(size, np.uint8)
    centre, radius = (size[1] // 2, size[0] // 2), int(0.3 * min(size))
    cv2.circle(trimap, centre, radius + band, 128, -1)
    cv2.circle(trimap, centre, radius, 255, -1)
    return trimap


def _best(function, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv=None):
    from skimage import data

    from alphafree_d2.app.trimaps import DEFAULT_REFERENCE_MAX_UNKNOWN, closed_form_alpha

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bands", type=int, nargs="+", default=[8, 24, 48, 96])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    image = np.ascontiguousarray(data.astronaut()[:, :, :3])
    closed_form_alpha(image[:64, :64], _trimap((64, 64), 4))  # compile pymatting's solvers
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'band px':>8} {'unknown px':>11} {'full s':>8} {'budget s':>9} {'ratio':>6} solved at")
    for band in args.bands:
        trimap = _trimap(image.shape[:2], band)
        unknown = int((trimap == 128).sum())
        full, _ = _best(lambda: closed_form_alpha(image, trimap, max_unknown=10**9), args.repeat)
        budget, (_, size) = _best(
            lambda: closed_form_alpha(image, trimap, DEFAULT_REFERENCE_MAX_UNKNOWN), args.repeat
        )
        print(
            f"{band:>8} {unknown:>11} {full:>8.2f} {budget:>9.2f} {full / budget:>6.1f} "
            f"{size[1]}x{size[0]}"
        )


if __name__ == "__main__":
    main()
