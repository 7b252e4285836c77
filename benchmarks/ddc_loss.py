"""DDC loss (Eq. 9): the paper's plain unfold formulation (Listing 1) vs alphafree_d2's.

Measures, in one run, forward + backward time and extra peak memory of both, and checks that they
agree (loss value, gradient, selected neighbour sets). Prints the ratios; asserts nothing.

    python benchmarks/ddc_loss.py                       # B=2 512x512, B=4 512x512, B=2 1024x1024
    python benchmarks/ddc_loss.py --sizes 4x1024x1024 --plain-max-pixels 0   # fast only

Method: every (variant, size, image kind) runs in a fresh subprocess, so that one variant's
allocations (and the allocator's cached memory) never count for another. In the subprocess:
import, build the inputs (seeded, identical for both variants), run the loss once on a tiny image
to load every kernel, record the resident set size (RSS, /proc/self/statm), then run forward +
backward once at full size and read the process's peak RSS (getrusage ru_maxrss). Extra peak
memory = peak RSS - RSS before the run: everything the loss allocated, whoever allocated it. The
time of a variant is the best of its forward + backward runs (the first, measured one included;
``--repeats`` for the fast one, ``--plain-repeats`` for the plain one). The machine is shared
and other processes slow both variants down by up to 2x: the load average is printed with
every row; compare rows measured at a low load.

Image kinds: "random" (uniform noise in [0, 1]^3: no ties), "photo" (synthetic 8-bit colours,
smooth gradients plus flat areas) and "real" (crops of a real 8-bit photograph, --real-image, by
default one of ../shared/data/alphamatting-dev when present). 8-bit colours give many exactly
tied distances; to reproduce torch.topk's tie-breaking the fast selection hands those pixels to
torch.topk itself, so it is slower on them (26-68 % of the pixels of the alphamatting.com images).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plain_ddc_loss(image, alpha, kernel_size):
    """The paper's Listing 1 (Appendix E): K*K-channel unfolds, torch.norm, torch.topk, gather."""
    b, c, h, w = image.shape
    k2 = kernel_size * kernel_size
    unfolded = F.unfold(image, kernel_size, padding=kernel_size // 2).view(b, c, k2, h, w)
    dist = torch.norm(image.view(b, c, 1, h, w) - unfolded, 2, dim=1)
    dist, indices = torch.topk(dist, k=kernel_size, dim=1, largest=False)
    unfolded_alpha = F.unfold(alpha, kernel_size, padding=kernel_size // 2).view(b, k2, h, w)
    alpha_dist = torch.gather(alpha - unfolded_alpha, dim=1, index=indices)
    return F.l1_loss(dist, alpha_dist), indices


def fast_ddc_loss(image, alpha, kernel_size):
    from alphafree_d2.modeling.losses import ddc_loss, select_neighbours

    selection = select_neighbours(image, kernel_size)
    return ddc_loss(None, alpha, kernel_size, selection=selection), selection.index


DEFAULT_REAL_IMAGE = os.path.join(
    REPO, "..", "shared", "data", "alphamatting-dev", "image", "GT14.png"
)


def real_crops(path, batch, height, width):
    """``batch`` different crops of an 8-bit photograph (mirror-tiled when it is too small)."""
    from alphafree_d2.data.io import read_image

    photo = torch.from_numpy(read_image(path)).permute(2, 0, 1).float() / 255
    while photo.shape[1] < height + batch * 16 or photo.shape[2] < width + batch * 16:
        photo = torch.cat([photo, photo.flip(1)], 1)
        photo = torch.cat([photo, photo.flip(2)], 2)
    return torch.stack(
        [photo[:, 16 * b : 16 * b + height, 16 * b : 16 * b + width] for b in range(batch)]
    )


def make_inputs(batch, height, width, kind, seed=0, real_image=DEFAULT_REAL_IMAGE):
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(batch, 1, height, width, generator=gen)
    if kind == "real":
        image = real_crops(real_image, batch, height, width)
    elif kind == "random":
        image = torch.rand(batch, 3, height, width, generator=gen)
    elif kind == "photo":
        # smooth colour gradients + a few flat rectangles, quantised to 8 bits
        ys = torch.linspace(0, 1, height).view(1, 1, height, 1)
        xs = torch.linspace(0, 1, width).view(1, 1, 1, width)
        phase = torch.rand(batch, 3, 1, 1, generator=gen) * 6.28
        image = 0.5 + 0.4 * torch.sin(6 * xs + 4 * ys + phase) * torch.cos(3 * ys - phase)
        image = image + 0.02 * torch.randn(batch, 3, height, width, generator=gen)
        image[:, :, : height // 3, : width // 2] = 1.0  # saturated white
        image[:, :, height // 2 :, width // 2 :] = torch.rand(batch, 3, 1, 1, generator=gen)
        image = (image.clamp(0, 1) * 255).round() / 255
    else:
        raise ValueError(f"unknown image kind {kind!r}")
    return image, alpha


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(variant, batch, height, width, kernel_size, kind, repeats, out_path, real_image):
    loss_fn = plain_ddc_loss if variant == "plain" else fast_ddc_loss
    image, alpha = make_inputs(batch, height, width, kind, real_image=real_image)
    alpha.requires_grad_(True)
    tiny = alpha[:, :, :16, :16].detach().clone().requires_grad_(True)
    loss_fn(image[:, :, :16, :16].contiguous(), tiny, kernel_size)[0].backward()  # warm-up

    times = []
    for i in range(repeats):
        alpha.grad = None
        if i == 0:
            before = _rss()
        start = time.perf_counter()
        loss, indices = loss_fn(image, alpha, kernel_size)
        loss.backward()
        times.append(time.perf_counter() - start)
        if i == 0:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            result = {"loss": loss.item(), "extra_peak_bytes": peak - before}
            torch.save(
                {"grad": alpha.grad.clone(), "index": indices.to(torch.int16).sort(1).values},
                out_path,
            )
            del indices, loss
    result["time"] = min(times)
    result["times"] = times
    print(json.dumps(result))


def run_worker(variant, size, args, kind, repeats, out_path):
    batch, height, width = size
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant]
    cmd += [f"{batch}x{height}x{width}", str(args.kernel_size), kind, str(repeats), out_path]
    cmd += [args.real_image]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} {size} {kind} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_size(text):
    try:
        batch, height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 2x512x512 (BxHxW), got {text!r}")
    return batch, height, width


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_size,
        nargs="+",
        default=[(2, 512, 512), (4, 512, 512), (2, 1024, 1024)],
    )
    parser.add_argument("--kinds", nargs="+", default=["random", "photo", "real"])
    parser.add_argument("--real-image", default=DEFAULT_REAL_IMAGE, help="8-bit photo for 'real'")
    parser.add_argument("--kernel-size", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the fast variant")
    parser.add_argument("--plain-repeats", type=int, default=1)
    parser.add_argument(
        "--plain-max-pixels",
        type=int,
        default=2 * 1024 * 1024,
        help="skip the plain variant above this B*H*W (it needs ~3.3 KB per pixel)",
    )
    args = parser.parse_args()
    kinds = args.kinds
    if "real" in kinds and not os.path.isfile(args.real_image):
        print(f"(no {args.real_image}: 'real' skipped)")
        kinds = [k for k in kinds if k != "real"]

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}, K={args.kernel_size}"
    )
    header = (
        f"{'BxHxW':>12} {'image':>6} | {'plain s':>8} {'fast s':>7} {'speedup':>8} | "
        f"{'plain MiB':>9} {'fast MiB':>8} {'less mem':>8} | {'value rel':>9} "
        f"{'grad rel':>9} {'same sel':>8} | {'load':>4}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        fast_path, plain_path = os.path.join(tmp, "fast.pt"), os.path.join(tmp, "plain.pt")
        for size in args.sizes:
            for kind in kinds:
                name = "x".join(map(str, size))
                fast = run_worker("fast", size, args, kind, args.repeats, fast_path)
                fast_mib = fast["extra_peak_bytes"] / 2**20
                if size[0] * size[1] * size[2] > args.plain_max_pixels:
                    print(
                        f"{name:>12} {kind:>6} | {'skipped':>8} {fast['time']:7.3f} {'':>8} | "
                        f"{'skipped':>9} {fast_mib:8.1f} {'':>8} | {'':>9} {'':>9} {'':>8} | "
                        f"{os.getloadavg()[0]:4.1f}",
                        flush=True,
                    )
                    continue
                plain = run_worker("plain", size, args, kind, args.plain_repeats, plain_path)
                a, b = torch.load(fast_path), torch.load(plain_path)
                value_rel = abs(fast["loss"] - plain["loss"]) / abs(plain["loss"])
                grad_rel = ((a["grad"] - b["grad"]).abs().max() / b["grad"].abs().max()).item()
                same = bool(torch.equal(a["index"], b["index"]))
                plain_mib = plain["extra_peak_bytes"] / 2**20
                print(
                    f"{name:>12} {kind:>6} | {plain['time']:8.2f} {fast['time']:7.3f} "
                    f"{plain['time'] / fast['time']:7.1f}x | {plain_mib:9.0f} {fast_mib:8.1f} "
                    f"{plain_mib / fast_mib:7.1f}x | {value_rel:9.1e} {grad_rel:9.1e} "
                    f"{str(same):>8} | {os.getloadavg()[0]:4.1f}",
                    flush=True,
                )
    print(
        "value rel: |fast - plain| / |plain|; grad rel: max |grad difference| / max |grad|; "
        "same sel: identical neighbour sets at every pixel; load: 1-minute load average after "
        "the row (the machine is shared: compare rows run at a low load)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, variant, size, k, kind, repeats, out, real_image = sys.argv
        sys.path.insert(0, REPO)
        worker(variant, *parse_size(size), int(k), kind, int(repeats), out, real_image)
    else:
        main()
