#!/usr/bin/env python
"""What the training crops contain under each crop policy, through the configs' own mappers.

    python benchmarks/crop_policies.py [--crops 200] [--seed 0]

For each case it builds ``dataloader.train.mapper`` of a config with
``augmentations.crop_policy`` set to "unknown_centred" and to "uniform", maps ``--crops`` crops
and prints, per policy: the share of crops holding at least one unknown trimap pixel (the only
pixels where DDC learns anything not already in the known loss), the mean share of unknown
pixels per crop, the share of crops with an unknown pixel within 1 px of their centre (1 px: a
flip after the crop moves the centre of an even-sized crop by one), and the share of crops with
padding (pixels the transforms added; the mapper marks them with alpha -1).

Cases:
- ``am2k_ddc.py`` (scale U(0.5, 2), 512 crop, flip) on a synthetic 1600 x 1200 record whose
  unknown band is a thin ring (the issue's measurement), and on a 500 x 400 record;
  ``am2k_ddc_official.py`` (crop only) on the 1600 x 1200 record;
- ``demo_ddc.py`` (192 crop) on ``demo_train`` (generated on first use);
- ``demo_ddc.py`` with the loss-policy benchmark's settings (128 crop, scale U(0.5, 1)).
"""

import argparse
import os
import tempfile

import cv2
import numpy as np

from detectron2.config import instantiate
from detectron2.data import DatasetCatalog

import alphafree_d2  # noqa: F401  (registers demo_train)
from alphafree_d2.data import IGNORED_ALPHA
from alphafree_d2.engine import load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ring_record(folder, height, width, band=3):
    """A foreground disc whose unknown band is a ``band`` px ring; mattes and image to match."""
    yy, xx = np.mgrid[:height, :width]
    radius = np.hypot(yy - height * 0.55, xx - width * 0.45)
    r0 = 0.15 * min(height, width)
    trimap = np.where(radius < r0, 255, 0).astype(np.uint8)
    trimap[np.abs(radius - r0) < band / 2] = 128
    image = np.dstack([trimap, 255 - trimap, np.full_like(trimap, 90)])
    paths = {}
    for name, array in (("image", image), ("trimap", trimap), ("alpha", trimap)):
        paths[name] = os.path.join(folder, f"{name}_{height}x{width}.png")
        cv2.imwrite(paths[name], array)
    return {
        "file_name": paths["image"],
        "trimap_file_name": paths["trimap"],
        "alpha_file_name": paths["alpha"],
        "height": height,
        "width": width,
    }


def measure(config, records, crops, seed, overrides=()):
    cfg = load_config(os.path.join(REPO, "configs", config), overrides)
    rows = {}
    for policy in ("unknown_centred", "uniform"):
        cfg.dataloader.train.mapper.augmentations.crop_policy = policy
        mapper = instantiate(cfg.dataloader.train.mapper)
        np.random.seed(seed)
        any_unknown, unknown_share, centred, padded = [], [], [], []
        for i in range(crops):
            out = mapper(records[i % len(records)])
            unknown = (out["trimap"][0] == 0.5).numpy()
            h, w = unknown.shape
            any_unknown.append(unknown.any())
            unknown_share.append(unknown.mean())
            centred.append(unknown[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2].any())
            padded.append(bool((out["alpha"] == IGNORED_ALPHA).any()) if "alpha" in out else False)
        rows[policy] = [100 * np.mean(v) for v in (any_unknown, unknown_share, centred, padded)]
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--crops", type=int, default=200, help="crops per case and policy")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("am2k_ddc.py, 1600x1200 thin ring", "am2k_ddc.py", [ring_record(tmp, 1200, 1600)], ()),
            ("am2k_ddc.py, 500x400 thin ring", "am2k_ddc.py", [ring_record(tmp, 400, 500)], ()),
            (
                "am2k_ddc_official.py, 1600x1200 thin ring",
                "am2k_ddc_official.py",
                [ring_record(tmp, 1200, 1600)],
                (),
            ),
        ]
        demo = DatasetCatalog.get("demo_train")
        cases += [
            ("demo_ddc.py, demo_train", "demo_ddc.py", demo, ()),
            (
                "loss_policies.py settings, demo_train",
                "demo_ddc.py",
                demo,
                (
                    "dataloader.train.mapper.augmentations.crop_size=128",
                    "dataloader.train.mapper.augmentations.scale_range=[0.5,1.0]",
                ),
            ),
        ]
        print(
            f"{args.crops} crops per row, seed {args.seed}\n\n"
            "| case | crop policy | crops with unknown | unknown pixels | centre unknown | "
            "crops with padding |\n|---|---|---:|---:|---:|---:|"
        )
        for title, config, records, overrides in cases:
            rows = measure(config, records, args.crops, args.seed, overrides)
            for policy, values in rows.items():
                print(f"| {title} | {policy} | " + " | ".join(f"{v:.1f} %" for v in values) + " |")


if __name__ == "__main__":
    main()
