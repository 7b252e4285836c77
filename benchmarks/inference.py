"""Inference cost: peak memory and time per megapixel of MattingPredictor, up to a 4K photo.

Compares the high-resolution policies of alphafree_d2/inference/highres.py with the plain
formulation (``predict_alpha`` on the whole image at full resolution, what evaluation runs), on
the demo-size model (configs/demo_ddc.py) and ViTMatte-S (configs/am2k_ddc.py), both with random
weights (cost does not depend on the weights). Prints one table and the ratios plain / guided;
asserts nothing.

    python benchmarks/inference.py                         # CPU (or CUDA if visible)
    python benchmarks/inference.py --sizes 3840x2160 --modes guided --device cpu
    python benchmarks/inference.py --configs --quality-checkpoint output/demo_ddc/model_final.pth

Method: each case (config, image size, mode) runs in a fresh subprocess, so that no case's
allocations (or allocator caches) count for another. The subprocess builds the predictor from a
random checkpoint, makes a seeded random uint8 RGB image, runs one 256x256 warm-up, records the
resident set size (RSS, /proc/self/statm), runs the predictor once on the image and reads the
process's peak RSS (getrusage ru_maxrss). "peak RSS" is the whole process (Python, torch, the
model, the image); "+inference" is peak RSS minus RSS before the timed call: what inference
itself allocated. On CUDA the peak of torch.cuda.max_memory_allocated is reported too. Plain
cases whose global attention alone would need more than --plain-max-gib (estimated as three
float32 (heads, N, N) matrices, N = tokens; detectron2 holds about that many at once) are not run
and print the estimate instead. The "foreground" row is pymatting's estimate_foreground_ml on the
largest size (tools/predict.py runs it for cutouts). Times are the best of --repeats runs; the
machine may be shared (the load average is printed), so expect noise of tens of percent; on a
CPU that another process keeps busy, --threads 1 avoids threads waiting for each other (small
images ran 3-30x slower with 2 threads than with 1 on the 2-core machine this was written on).

Quality (optional, --quality-checkpoint output/demo_ddc/model_final.pth, a model trained with
configs/demo_ddc.py): on demo_val (12 images of 256-384 px with exact ground truth), the policies
run with a budget of (image pixels / s^2) for each --quality-scales s, i.e. the ViT sees the
image downscaled s times, as it sees a 4K photo (8.3 MP) under the default 1 MP budget at
s = 2.9. Prints the whole-image SAD / MSE / Grad of each against the ground truth, with the plain
full-resolution pass as the reference, and the mean |alpha - plain alpha|.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_CONFIGS = ["configs/demo_ddc.py", "configs/am2k_ddc.py"]
DEFAULT_SIZES = ["512x512", "1920x1080", "3840x2160"]
MODES = ["plain", "guided", "resize"]


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def attention_gib(cfg, height, width):
    """Estimated memory of detectron2's global attention at full resolution (see docstring)."""
    backbone = cfg.model.backbone
    patch, d = backbone.patch_size, cfg.model.size_divisibility
    tokens = (math.ceil(height / d) * d // patch) * (math.ceil(width / d) * d // patch)
    return 3 * backbone.num_heads * tokens**2 * 4 / 2**30


def worker(case):
    """Run one case in this process and print its measurements as JSON."""
    import numpy as np
    import torch

    from alphafree_d2.engine import load_config
    from alphafree_d2.inference.foreground import estimate_foreground
    from alphafree_d2.inference.highres import HighResolutionPolicy
    from alphafree_d2.inference.predictor import MattingPredictor

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    cfg = load_config(os.path.join(REPO, case["config"]))
    height, width = case["size"]
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    cuda = case["device"].startswith("cuda")
    if case["mode"] == "foreground":
        alpha = rng.random((height, width), dtype=np.float32)
        estimate_foreground(image[:64, :64], alpha[:64, :64])  # numba: load the compiled code
        run = lambda: estimate_foreground(image, alpha)  # noqa: E731
    else:
        if case["mode"] == "plain":  # a budget above the image: predict_alpha on all of it
            policy = HighResolutionPolicy(max_megapixels=height * width / 1e6 + 1)
        else:
            policy = HighResolutionPolicy(case["max_megapixels"], mode=case["mode"])
        predictor = MattingPredictor(cfg, case["checkpoint"], case["device"], policy=policy)
        predictor(image[:256, :256])
        run = lambda: predictor(image)  # noqa: E731
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = rss_bytes()
    seconds = float("inf")
    for _ in range(case["repeats"]):
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        seconds = min(seconds, time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    result = dict(
        seconds=seconds,
        peak_rss=peak,
        inference_rss=peak - before,
        threads=torch.get_num_threads(),
    )
    if cuda:
        result["cuda_peak"] = torch.cuda.max_memory_allocated()
    print("RESULT " + json.dumps(result))


def quality(checkpoint, config, scales, device):
    """Policies vs the plain pass on demo_val with a trained model (see the module docstring)."""
    import numpy as np

    from detectron2.data import DatasetCatalog

    import alphafree_d2  # noqa: F401  (registers demo_val)
    from alphafree_d2.data.io import read_alpha, read_image, read_trimap
    from alphafree_d2.engine import load_config
    from alphafree_d2.evaluation.metrics import matting_metrics
    from alphafree_d2.inference.highres import HighResolutionPolicy
    from alphafree_d2.inference.predictor import MattingPredictor

    cfg = load_config(os.path.join(REPO, config))
    records = DatasetCatalog.get("demo_val")
    predictor = MattingPredictor(cfg, checkpoint, device)
    keys = ("SAD", "MSE", "Grad")
    cases = [("plain", 1.0)] + [(mode, s) for s in scales for mode in ("guided", "resize")]
    print(f"quality on demo_val ({len(records)} images), {checkpoint}:")
    print(f"{'mode':>8s} {'scale':>6s} " + " ".join(f"{k:>8s}" for k in keys) + "  |a-plain|")
    plain = {}
    for mode, scale in cases:
        totals = dict.fromkeys(keys, 0.0)
        deviation = 0.0
        for r in records:
            image = read_image(r["file_name"], "RGB")
            h, w = image.shape[:2]
            if mode == "plain":  # a budget above the image: predict_alpha on all of it
                predictor.policy = HighResolutionPolicy(max_megapixels=h * w / 1e6 + 1)
            else:
                predictor.policy = HighResolutionPolicy(h * w / 1e6 / scale**2, mode=mode)
            alpha = predictor(image)
            if mode == "plain":
                plain[r["file_name"]] = alpha
            deviation += float(np.abs(alpha - plain[r["file_name"]]).mean()) / len(records)
            gt, trimap = read_alpha(r["alpha_file_name"]), read_trimap(r["trimap_file_name"])
            metrics = matting_metrics(alpha, gt, trimap, protocol="whole_image")
            for k in keys:
                totals[k] += metrics[k] / len(records)
        print(
            f"{mode:>8s} {scale:6.1f} "
            + " ".join(f"{totals[k]:8.4f}" for k in keys)
            + f"  {deviation:.4f}"
        )


def run_case(case):
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(case)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)}


def save_random_checkpoint(config, folder):
    import torch

    from detectron2.config import instantiate

    from alphafree_d2.checkpoint.matting_checkpointer import MattingCheckpointer
    from alphafree_d2.engine import load_config

    cfg = load_config(os.path.join(REPO, config))
    torch.manual_seed(0)
    name = os.path.splitext(os.path.basename(config))[0]
    MattingCheckpointer(instantiate(cfg.model), folder).save(name)
    return cfg, os.path.join(folder, name + ".pth")


def gib(n):
    return f"{n / 2**30:7.2f}"


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs", nargs="*", default=DEFAULT_CONFIGS, help="none: only the quality part"
    )
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, metavar="WxH")
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-megapixels", type=float, default=1.0)
    parser.add_argument("--plain-max-gib", type=float, default=12.0)
    parser.add_argument("--no-foreground", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="best of N timed runs")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quality-checkpoint", metavar="PTH", help="see the docstring")
    parser.add_argument("--quality-config", default="configs/demo_ddc.py")
    parser.add_argument("--quality-scales", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = [tuple(int(v) for v in s.lower().split("x"))[::-1] for s in args.sizes]  # (h, w)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.2f}, ViT budget {args.max_megapixels} MP (default policy)"
    )
    header = (
        f"{'config':14s} {'image':>10s} {'MP':>5s} {'mode':>10s} {'seconds':>8s} {'s/MP':>7s} "
        f"{'peak RSS GiB':>12s} {'+inference':>10s}" + (" cuda GiB" if device == "cuda" else "")
    )
    print(header)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for config in args.configs:
            cfg, checkpoint = save_random_checkpoint(config, folder)
            name = os.path.splitext(os.path.basename(config))[0]
            for h, w in sizes:
                mp = h * w / 1e6
                for mode in args.modes:
                    if mp <= args.max_megapixels and mode != "plain":
                        continue  # within the budget every mode is the plain path
                    label = f"{name:14s} {w:>4d}x{h:<5d} {mp:5.2f} {mode:>10s}"
                    need = attention_gib(cfg, h, w)
                    if mode == "plain" and need > args.plain_max_gib:
                        print(f"{label} not run: global attention alone needs ~{need:.0f} GiB")
                        continue
                    case = dict(
                        config=config,
                        checkpoint=checkpoint,
                        size=(h, w),
                        mode=mode,
                        device=device,
                        max_megapixels=args.max_megapixels,
                        repeats=args.repeats,
                        threads=args.threads,
                    )
                    r = run_case(case)
                    if "error" in r:
                        print(f"{label} failed: {r['error']}")
                        continue
                    rows[(name, h, w, mode)] = r
                    print(
                        f"{label} {r['seconds']:8.2f} {r['seconds'] / mp:7.2f} "
                        f"{gib(r['peak_rss']):>12s} {gib(r['inference_rss']):>10s}"
                        + (f" {gib(r['cuda_peak'])}" if "cuda_peak" in r else ""),
                        flush=True,
                    )
        if args.configs and not args.no_foreground:
            h, w = max(sizes, key=lambda s: s[0] * s[1])
            r = run_case(
                dict(
                    config=args.configs[0],
                    checkpoint="",
                    size=(h, w),
                    mode="foreground",
                    device="cpu",
                    repeats=args.repeats,
                    threads=args.threads,
                )
            )
            mp = h * w / 1e6
            if "error" in r:
                print(f"foreground estimation failed: {r['error']}")
            else:
                print(
                    f"{'pymatting':14s} {w:>4d}x{h:<5d} {mp:5.2f} {'foreground':>10s} "
                    f"{r['seconds']:8.2f} {r['seconds'] / mp:7.2f} {gib(r['peak_rss']):>12s} "
                    f"{gib(r['inference_rss']):>10s}"
                )
    ratios = []
    for (name, h, w, mode), r in rows.items():
        guided = rows.get((name, h, w, "guided"))
        if mode == "plain" and guided:
            ratios.append(
                f"  {name} {w}x{h}: plain/guided time {r['seconds'] / guided['seconds']:.2f}x, "
                f"+inference memory {r['inference_rss'] / max(guided['inference_rss'], 1):.2f}x"
            )
    if ratios:
        print("plain (full-resolution predict_alpha) vs guided policy:")
        print("\n".join(ratios))
    if args.quality_checkpoint:
        quality(args.quality_checkpoint, args.quality_config, args.quality_scales, device)


if __name__ == "__main__":
    main()
