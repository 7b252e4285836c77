"""DDC loss (Eq. 9): the paper's plain formulation (Listing 1) vs alphafree_d2's kernels.

Measures, in one run, forward + backward time and extra peak memory of both, checks that they
agree, and prints the ratios; asserts nothing.

    python benchmarks/ddc_loss.py                                   # CPU: B=2 512x512, K=11
    python benchmarks/ddc_loss.py --device cuda --amp --sizes 4x512x512 16x512x512
    python benchmarks/ddc_loss.py --sizes 2x64x64 --kinds random    # a quick look
    python benchmarks/ddc_loss.py --backend torch --kinds random    # the torch fallback, in bands

``--backend torch`` compares the package's torch backend (Listing 1's formulation in bands of
rows, ``alphafree_d2.modeling.torch_kernels.CHUNK_BYTES`` each; ``--torch-chunk-mib`` sets it)
with Listing 1 as written: the same arithmetic, so the ratio of the memory columns is what the
bands save.

Method: every (variant, size, image kind, thread count) runs in a fresh subprocess, so that one variant's
allocations never count for another. In it: build the inputs (seeded, identical for both
variants), run the loss once on a small crop to load and compile every kernel, then time forward
+ backward (best of ``--repeats`` runs, the plain one ``--plain-repeats``). Extra peak memory:
on CPU the process's peak resident set size during the first full-size run minus the size
before it (everything the loss allocated, whoever allocated it); on CUDA
``torch.cuda.max_memory_allocated`` during the run minus the memory allocated before it. The
machine may be shared: the load average is printed with each row.

Threads: on CPU each variant is timed with every thread count of ``--threads`` (default 1 up to
``torch.get_num_threads()``) and the row compares each variant at its fastest count (shown after
the time as "@n"). Listing 1 is often slower with two threads than with one on a 2-core machine;
comparing against its best count keeps the speed-up honest.

Image kinds: "real" (crops of a real 8-bit photograph, by default scikit-image's astronaut,
mirror-tiled to the size asked: 8-bit colours give many exactly tied distances), "random"
(uniform noise: no ties). Agreement columns: "dist" is the largest difference between the two
variants' sorted selected distances (the selection's definition of exactness: ties may pick
different but equally close neighbours, so on tied images the values differ a little), "value"
and "grad" the relative differences of the loss and of its gradient.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plain_ddc(image, alpha, kernel_size, backend):
    from alphafree_d2.utils.testing import listing1_ddc

    loss, distance, _ = listing1_ddc(image, alpha, kernel_size, return_selection=True)
    return loss, distance  # sorted


def fast_ddc(image, alpha, kernel_size, backend):
    from alphafree_d2.modeling.losses import ddc_loss, select_neighbours

    selection = select_neighbours(image, kernel_size, backend=backend)
    loss = ddc_loss(None, alpha, kernel_size, selection=selection, backend=backend)
    return loss, selection.distance  # unsorted


def photo(path):
    """An 8-bit RGB photograph as a (3, H, W) float tensor in [0, 1]."""
    if path == "astronaut":
        from skimage import data

        array = data.astronaut()
    else:
        from alphafree_d2.data.io import read_image

        array = read_image(path)
    return torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).float() / 255


def make_inputs(batch, height, width, kind, real_image="astronaut", seed=0):
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(batch, 1, height, width, generator=gen)
    if kind == "random":
        return torch.rand(batch, 3, height, width, generator=gen), alpha
    if kind != "real":
        raise ValueError(f"unknown image kind {kind!r}")
    image = photo(real_image)
    while image.shape[1] < height + 16 * batch or image.shape[2] < width + 16 * batch:
        image = torch.cat([image, image.flip(1)], 1)
        image = torch.cat([image, image.flip(2)], 2)
    crops = [image[:, 16 * b : 16 * b + height, 16 * b : 16 * b + width] for b in range(batch)]
    return torch.stack(crops).contiguous(), alpha


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(args, variant, size, kind, out_path, threads):
    if threads:
        torch.set_num_threads(threads)  # the numba kernels follow torch's count
    if args.torch_chunk_mib is not None:
        from alphafree_d2.modeling import torch_kernels

        torch_kernels.CHUNK_BYTES = int(args.torch_chunk_mib * 2**20)
    device = torch.device(args.device)
    loss_fn = plain_ddc if variant == "plain" else fast_ddc
    image, alpha = make_inputs(*size, kind, args.real_image)
    image, alpha = image.to(device), alpha.to(device)
    amp = torch.autocast(device.type, dtype=torch.float16, enabled=args.amp)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(image, alpha):
        alpha = alpha.detach().requires_grad_(True)
        with amp:  # under --amp the prediction and the image are float16 (a network's output)
            inputs = (image.half(), alpha.half()) if args.amp else (image, alpha)
            loss, distance = loss_fn(*inputs, args.kernel_size, args.backend)
        loss.backward()
        return loss, distance, alpha.grad

    step(image[:, :, :32, :32], alpha[:, :, :32, :32])  # warm-up: load, compile
    repeats = args.plain_repeats if variant == "plain" else args.repeats
    times = []
    for i in range(repeats):
        sync()
        if i == 0:
            before = torch.cuda.memory_allocated() if device.type == "cuda" else _rss()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        loss, distance, grad = step(image, alpha)
        sync()
        times.append(time.perf_counter() - start)
        if i == 0:
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated()
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            result = {"loss": loss.item(), "extra_peak_bytes": peak - before}
            distance = distance.float().cpu().sort(1).values
            torch.save({"grad": grad.float().cpu(), "distance": distance}, out_path)
        del loss, distance, grad
    result["time"] = min(times)
    result["times"] = times
    result["threads"] = threads
    print(json.dumps(result))


def run_worker(args, variant, size, kind, out_path, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, kind, out_path]
    cmd += [str(threads or 0)] + sys.argv[1:]
    cmd += ["--sizes", "x".join(map(str, size))]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} {size} {kind} threads={threads} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fastest(args, variant, size, kind, out_path):
    """The worker's result at the thread count (of ``args.threads``) that ran fastest; its
    saved distances and gradient are left at ``out_path``."""
    results = []
    for threads in thread_counts(args):
        path = f"{out_path}.{threads}"
        results.append((run_worker(args, variant, size, kind, path, threads), path))
    best, path = min(results, key=lambda result: result[0]["time"])
    os.replace(path, out_path)
    return best


def thread_counts(args):
    if args.device != "cpu":
        return [None]
    return args.threads or list(range(1, torch.get_num_threads() + 1))


def parse_size(text):
    try:
        batch, height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 2x512x512 (BxHxW), got {text!r}")
    return batch, height, width


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=parse_size, nargs="+", default=[(2, 512, 512)])
    p.add_argument("--kinds", nargs="+", default=["real", "random"], choices=["real", "random"])
    p.add_argument("--real-image", default="astronaut", help="'astronaut' or an 8-bit image file")
    p.add_argument("--kernel-size", type=int, default=11)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="auto", help="alphafree_d2's backend (auto, numba, ...)")
    p.add_argument("--amp", action="store_true", help="float16 autocast (CUDA)")
    p.add_argument(
        "--torch-chunk-mib",
        type=float,
        help="memory budget of one band of rows of the torch backend (default: the package's)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs of alphafree_d2's variant")
    p.add_argument("--plain-repeats", type=int, default=2)
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        help="CPU thread counts to time each variant with (default: 1 .. torch.get_num_threads())",
    )
    return p


def main(args):
    print(
        f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
        f"K={args.kernel_size}, backend {args.backend}{_bands(args)}, amp {args.amp}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    header = (
        f"{'BxHxW':>12} {'image':>6} | {'plain s':>11} {'ours s':>11} {'speedup':>8} | "
        f"{'plain MiB':>9} {'ours MiB':>8} {'less mem':>8} | {'dist':>7} {'value':>7} "
        f"{'grad':>7} | {'load':>4}"
    )
    print(header + "\n" + "-" * len(header), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, plain_path = os.path.join(tmp, "ours.pt"), os.path.join(tmp, "plain.pt")
        for size in args.sizes:
            for kind in args.kinds:
                ours = fastest(args, "ours", size, kind, ours_path)
                plain = fastest(args, "plain", size, kind, plain_path)
                a, b = torch.load(ours_path), torch.load(plain_path)
                dist = (a["distance"] - b["distance"]).abs().max().item()
                value = abs(ours["loss"] - plain["loss"]) / abs(plain["loss"])
                grad = ((a["grad"] - b["grad"]).abs().max() / b["grad"].abs().max()).item()
                plain_mib = plain["extra_peak_bytes"] / 2**20
                ours_mib = max(ours["extra_peak_bytes"], 1) / 2**20
                print(
                    f"{'x'.join(map(str, size)):>12} {kind:>6} | {plain['time']:8.3f}"
                    f"{_at(plain)} {ours['time']:8.4f}{_at(ours)} "
                    f"{plain['time'] / ours['time']:7.1f}x | "
                    f"{plain_mib:9.1f} {ours_mib:8.1f} {plain_mib / ours_mib:7.1f}x | "
                    f"{dist:7.1e} {value:7.1e} {grad:7.1e} | {os.getloadavg()[0]:4.1f}",
                    flush=True,
                )


def _bands(args):
    if args.backend != "torch":
        return ""
    from alphafree_d2.modeling import torch_kernels

    mib = args.torch_chunk_mib or torch_kernels.CHUNK_BYTES / 2**20
    return f" (bands of rows within {mib:g} MiB)"


def _at(result):
    return f"@{result['threads']:<2}" if result["threads"] else "   "


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        variant, kind, out_path, threads = sys.argv[2:6]
        worker_args = parser().parse_args(sys.argv[6:])
        worker(worker_args, variant, worker_args.sizes[-1], kind, out_path, int(threads))
    else:
        main(parser().parse_args())
