"""Training speed of the AM-2K recipe with Listing 1's DDC formulation vs alphafree_d2's kernels.

Runs ``tools/lazyconfig_train_net.py --config-file configs/am2k_ddc.py`` (ViTMatte-S, 512x512
crops, L_known + 10 L_DDC, AMP as the config says) for ``--iters`` iterations on a synthetic
dataset in AM-2K's folder layout, once with ``model.criterion.backend=torch`` (the plain
unfold/topk formulation of Listing 1, differentiated by autograd; it runs in bands of rows of at
most ``alphafree_d2.modeling.torch_kernels.CHUNK_BYTES``, so above that its peak memory is below
Listing 1's as written, its time about the same) and once with the default backend, and prints s/iteration (detectron2's "Overall training speed", which leaves out the
first iterations), images/s and the peak GPU memory detectron2 logs (``max_mem``).

    python benchmarks/train_speed.py --device cuda                 # 100 iterations, batch 16
    python benchmarks/train_speed.py --device cpu --tiny           # a dry run in seconds

``--tiny``: a 2-block ViT of width 32, 64x64 crops, batch 2, 4 small images: checks the wiring,
measures nothing useful. No pretrained weights are loaded (speed does not depend on them).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "model.backbone.embed_dim=32",
    "model.backbone.depth=2",
    "model.backbone.num_heads=2",
    "model.backbone.window_block_indexes=[0]",
    "model.backbone.residual_block_indexes=[1]",
    "model.decoder.conv_channels=[8,16,32]",
    "model.decoder.fusion_channels=[32,16,8,8]",
    "model.decoder.head_channels=8",
    "dataloader.train.mapper.augmentations.crop_size=64",
    "dataloader.train.num_workers=0",
]


def write_am2k_layout(root, count, height, width, seed=0):
    """``count`` synthetic photos with trimaps in AM-2K's training layout under ``root``."""
    rng = np.random.default_rng(seed)
    image_dir = os.path.join(root, "AM-2K", "train", "original")
    trimap_dir = os.path.join(root, "AM-2K", "train", "trimap_generated")
    os.makedirs(image_dir)
    os.makedirs(trimap_dir)
    yy, xx = np.mgrid[:height, :width] / max(height, width)
    for i in range(count):
        phase = rng.uniform(0, 6.3, 3)
        image = np.stack([np.sin(9 * xx + 5 * yy + p) for p in phase], -1) * 100 + 128
        image += rng.normal(0, 12, image.shape)
        r = np.hypot(yy - 0.4, xx - 0.5 - 0.05 * i)
        trimap = np.where(r < 0.2, 255, np.where(r < 0.28, 128, 0)).astype(np.uint8)
        name = f"m_{i:04d}"
        cv2.imwrite(os.path.join(image_dir, name + ".jpg"), np.clip(image, 0, 255).astype(np.uint8))
        cv2.imwrite(os.path.join(trimap_dir, name + ".png"), trimap)


def write_config(path):
    """configs/am2k_ddc.py without its evaluator (training only)."""
    source = os.path.join(REPO, "configs", "am2k_ddc.py")
    with open(path, "w") as f:
        f.write(
            "from detectron2.config import LazyConfig\n"
            f"_cfg = LazyConfig.load({source!r})\n"
            "del _cfg.dataloader['evaluator']\n"
            "dataloader, model, optimizer = _cfg.dataloader, _cfg.model, _cfg.optimizer\n"
            "lr_multiplier, train = _cfg.lr_multiplier, _cfg.train\n"
        )


def train(args, root, config, backend):
    output = os.path.join(root, f"output_{backend}")
    cmd = [sys.executable, os.path.join(REPO, "tools", "lazyconfig_train_net.py")]
    cmd += ["--config-file", config, f"train.output_dir={output}", f"train.max_iter={args.iters}"]
    cmd += [f"train.device={args.device}", "train.init_checkpoint=", "train.eval_period_epochs=0"]
    cmd += ["train.checkpointer.period_epochs=0", "train.log_period=10"]
    cmd += [f"dataloader.train.total_batch_size={args.batch}", f"model.criterion.backend={backend}"]
    cmd += TINY if args.tiny else []
    env = dict(os.environ, DETECTRON2_DATASETS=root)
    if args.tiny:  # one thread is the fastest for tiny models on a shared CPU
        env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"training with backend={backend} failed:\n{proc.stderr[-5000:]}")
    with open(os.path.join(output, "log.txt")) as f:
        log = f.read()
    speed = re.findall(r"Overall training speed: .*\(([\d.]+) s / it\)", log)
    memory = re.findall(r"max_mem: (\d+)M", log)
    return float(speed[-1]) if speed else float("nan"), int(memory[-1]) if memory else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--batch", type=int, default=16, help="total batch (the recipe: 16)")
    p.add_argument("--images", type=int, default=32, help="synthetic training images")
    p.add_argument("--image-size", default="1080x1440", help="HxW of the synthetic photos")
    p.add_argument("--tiny", action="store_true", help="tiny model and images: a dry run")
    args = p.parse_args()
    if args.tiny:
        args.iters, args.batch, args.images, args.image_size = min(args.iters, 8), 2, 4, "96x128"
    height, width = (int(v) for v in args.image_size.split("x"))
    print(f"AM-2K recipe, device {args.device}, {args.iters} iterations, batch {args.batch}")
    print(f"{'DDC':>22} | {'s/iter':>7} {'images/s':>8} {'peak MiB':>8}")
    with tempfile.TemporaryDirectory() as root:
        write_am2k_layout(root, args.images, height, width)
        config = os.path.join(root, "am2k_train_only.py")
        write_config(config)
        for label, backend in (("Listing 1 (torch)", "torch"), ("ours (auto)", "auto")):
            seconds, mib = train(args, root, config, backend)
            print(f"{label:>22} | {seconds:7.3f} {args.batch / seconds:8.1f} {mib or 'n/a':>8}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
