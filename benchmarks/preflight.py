"""Cost of the training-set pre-flight check (alphafree_d2/data/preflight.py) at AM-2K size.

Synthesises an AM-2K-layout training folder (1,800 images of 1,600 x 1,200 px as JPEG, their
trimaps as single-channel PNG: an irregular blob with an unknown band, as the generated labels
look; 24 distinct samples repeated under distinct names), then times, in one run:

- registration (``load_matting_folder``: lists the folders, reads every image header);
- the pre-flight check (image headers + every trimap decoded in full);
- for comparison, decoding every image in full, which is what a check without header reads
  would cost.

    python benchmarks/preflight.py                          # 1800 images into a temp dir
    python benchmarks/preflight.py --root /tmp/am2k_synth --keep --images 1800 --threads 2

Timings are with the files in the page cache (they were just written); a cold disk adds its
read time (trimaps: about 1,800 x the PNG size). Wall times grow with the machine's load (printed);
CPU times (all threads of this process) much less. Nothing is asserted.
"""

import argparse
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _variant(job):
    """Encoded (JPEG image, PNG trimap) of one synthetic sample."""
    seed, height, width = job
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    angle = np.arctan2(yy - cy, xx - cx)
    radius = 0.3 * min(height, width) * (1 + 0.15 * np.sin(5 * angle + rng.uniform(0, 6)))
    dist = np.hypot(yy - cy, xx - cx) - radius
    dist += cv2.GaussianBlur(rng.normal(0, 25, (height, width)).astype(np.float32), (0, 0), 6)
    band = rng.uniform(10, 40)
    trimap = np.where(dist < -band, 255, np.where(dist > band, 0, 128)).astype(np.uint8)
    base = np.stack([xx / width, yy / height, 0.5 + 0.5 * np.sin(xx / 97.0)], 2) * 200
    image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    image[trimap > 0] = (image[trimap > 0] * 0.6 + np.array([40, 90, 160]) * 0.4).astype(np.uint8)
    ok1, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    ok2, png = cv2.imencode(".png", trimap)
    assert ok1 and ok2
    return jpeg.tobytes(), png.tobytes()


def synthesise(root, n, height, width, workers, variants):
    """``n`` samples in ``root/{original,trimap_generated}``: ``variants`` distinct ones
    (synthesising 1,800 distinct photos takes longer than the check), repeated under distinct
    names; every file is read and decoded on its own."""
    for sub in ("original", "trimap_generated"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    jobs = [(seed, height, width) for seed in range(min(n, variants))]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        encoded = list(pool.map(_variant, jobs))
    for i in range(n):
        jpeg, png = encoded[i % len(encoded)]
        with open(os.path.join(root, "original", f"m_{i:05d}.jpg"), "wb") as f:
            f.write(jpeg)
        with open(os.path.join(root, "trimap_generated", f"m_{i:05d}.png"), "wb") as f:
            f.write(png)


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="folder for the synthetic set (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic set")
    parser.add_argument("--images", type=int, default=1800)
    parser.add_argument("--size", default="1600x1200", help="WxH of every image")
    parser.add_argument("--threads", type=int, default=None, help="pre-flight reader threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="synthesis")
    parser.add_argument("--variants", type=int, default=24, help="distinct synthetic samples")
    parser.add_argument("--no-full-decode", action="store_true", help="skip the comparison")
    args = parser.parse_args(argv)

    from alphafree_d2.data import check_training_set, load_matting_folder, read_image

    width, height = map(int, args.size.split("x"))
    root = args.root or tempfile.mkdtemp(prefix="am2k_synth_")
    try:
        existing = (
            os.path.isdir(os.path.join(root, "original"))
            and len(os.listdir(os.path.join(root, "original"))) == args.images
        )
        if not existing:
            start = time.perf_counter()
            synthesise(root, args.images, height, width, args.workers, args.variants)
            print(f"synthesised {args.images} samples in {time.perf_counter() - start:.1f} s")
        sizes = {
            sub: sum(e.stat().st_size for e in os.scandir(os.path.join(root, sub))) / 2**20
            for sub in ("original", "trimap_generated")
        }
        print(
            f"set: {args.images} images {width}x{height}: JPEG {sizes['original']:.0f} MiB, "
            f"trimap PNG {sizes['trimap_generated']:.0f} MiB; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )

        start = time.perf_counter()
        records = load_matting_folder(
            os.path.join(root, "original"), os.path.join(root, "trimap_generated")
        )
        registration = time.perf_counter() - start
        cpu = _cpu_seconds()
        report = check_training_set(records, num_threads=args.threads)
        cpu = _cpu_seconds() - cpu
        print(f"registration (headers of {len(records)} images): {registration:.1f} s")
        print(
            f"pre-flight check (headers + every trimap decoded): {report['seconds']:.1f} s wall, "
            f"{cpu:.1f} s CPU ({1000 * cpu / len(records):.1f} ms CPU per image)"
        )

        if not args.no_full_decode:
            start, full_cpu = time.perf_counter(), _cpu_seconds()
            threads = args.threads or min(8, os.cpu_count() or 1)
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda r: read_image(r["file_name"]).shape, records))
            full, full_cpu = time.perf_counter() - start, _cpu_seconds() - full_cpu
            print(
                f"for comparison, decoding every image in full: {full:.1f} s wall, "
                f"{full_cpu:.1f} s CPU ({full_cpu / cpu:.1f}x the pre-flight check's CPU time)"
            )
    finally:
        if not args.keep and not args.root:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
