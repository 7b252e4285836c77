#!/usr/bin/env python
"""The paper's loss-policy ablation at small scale: one small model trained with each policy.

Policies (paper: "Training Matting Models without Alpha Labels", Sec. 3, Tables 1, 4, 5, 7):

    known               L_known                                   Table 4 row 1
    known_affinity      L_known + 10 L_affinity                   Table 4 row 2 (weight: ours)
    known_dc            L_known + 10 L_DC                         Table 4 row 3
    known_ddc           L_known + 10 L_DDC (the paper's method)   Table 4 row 4, Table 1 row 2
    known_ddc_unknown   L_known + 10 L_DDC on the unknown band    Table 5 "DDC unknown"
    mask_l1_ddc         L1 on a coarse mask + 10 L_DDC            Table 7 "Mask l1"
    alpha_l1            L1 on the ground-truth alpha (fine labels) Table 1 row 1
    (optional: known_dc_unknown, mask_bce_ddc, mask_l1 = mask L1 alone; see --policies)

Each policy trains the same model on ``demo_train`` for the same iterations and seeds through
the product's own path: ``tools/lazyconfig_train_net.py`` (its ``main``, via
``benchmarks/_train_entry.py``, which only registers the extra folder datasets first) on
``configs/demo_ddc.py`` with command-line overrides, one subprocess per run; the training
script's final evaluation (MattingEvaluator, whole-image protocol) gives the ``demo_val``
numbers. With ``--real-dir DIR`` (``DIR/{image,alpha,trimap}/``, e.g.
``../shared/data/alphamatting-dev``) each model is also evaluated there with the script's
``--eval-only`` (the model's own inference on the full-resolution photo; for images under 1 MP,
as these are, it is exactly what ``MattingPredictor``'s default high-resolution policy runs).

    python benchmarks/loss_policies.py                                    # default, CPU: 22.5 min measured (2 cores)
    python benchmarks/loss_policies.py --real-dir ../shared/data/alphamatting-dev
    python benchmarks/loss_policies.py --policies known known_ddc --seeds 0 1 2 --iters 3000
    python benchmarks/loss_policies.py --num-gpus 4 --iters 6000 --batch 16 --crop 256 \
        --decoder demo --scale-range 0.5 2.0 --output output/loss_policies_gpu
    python benchmarks/loss_policies.py --crop-policy uniform --output output/loss_policies_uniform
    python benchmarks/loss_policies.py --dry-run        # print the commands, run nothing
    python benchmarks/loss_policies.py --trimap-input --policies known known_ddc alpha_l1 \
        --real-dir ../shared/data/alphamatting-dev --output output/loss_policies_trimap

With ``--trimap-input`` the same policies train the trimap-guided model
(``configs/demo_ddc_trimap.py``: image + trimap in, the trimap also the training label; at
evaluation the evaluation trimap is the input and known regions are copied from it), and each
table gets reference rows computed in the same run with classical trimap-based matting on the
same images and trimaps (pymatting's closed-form and KNN matting, ``benchmarks/_closed_form.py``);
the figures then show image | trimap | closed-form | policies | ground truth.

Default budget (2 CPU cores shared with others; measured, see the README): the demo model with a
thinner decoder (``--decoder thin``: conv stream 8/16/32, fusion 32/16/8/8 channels instead of
16/32/64 and 64/32/16/16; the ViT is the demo's, 4 blocks of width 96), 128 x 128 crops, batch 4,
random scale in [0.5, 1] (instead of [0.5, 2]: at 128 px crops of 256-384 px images, the wider
range left the known-only model at the all-background solution for most of the budget),
1000 iterations (62.5 epochs of the 64 images) with the paper's lr steps at 60 % and 90 %,
seeds 0 and 1, one torch thread per run, two runs at a time (--jobs). From scratch, the models first collapse to the
all-background solution (the L1 median of a mostly background label) and need several hundred
iterations to leave it; the results file states the known-only model's final training loss next
to that trivial level, and the tables carry an "all background" reference row.

Outputs under ``--output`` (default ``output/loss_policies``): ``results.md`` (the Markdown
tables: mean ± sample standard deviation over seeds, the paper's column order, then SAD-K =
SAD - SAD-T, the error where the evaluation trimap is known), ``results.csv`` (every policy,
seed and dataset), ``figure_demo_val.png`` / ``figure_real.png`` (image | one column per policy |
ground truth, the first seed's models, with a magnified detail), ``runs/<policy>/seed<S>/``
(each run's detectron2 output: checkpoints, log, metrics.json, per-image CSVs and prediction
PNGs), ``labels/demo_train_mask/`` (the mask labels). Completed runs with identical settings are
reused by a second invocation; ``--overwrite`` retrains them.
"""

import argparse
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ENTRY = os.path.join(HERE, "_train_entry.py")
BASE_CONFIG = os.path.join(REPO, "configs", "demo_ddc.py")
CROP_POLICIES = ("unknown_centred", "uniform")  # alphafree_d2.data.CROP_POLICIES
TRIMAP_CONFIG = os.path.join(REPO, "configs", "demo_ddc_trimap.py")

MASK_DATASET = "loss_policies_demo_train_mask"
REAL_DATASET = "loss_policies_real"


@dataclass(frozen=True)
class Policy:
    """A loss policy: MattingCriterion arguments, the training label, and its paper row."""

    title: str  # table row
    short: str  # figure column
    paper: str
    losses: dict = field(hash=False)
    region: str = "whole"
    label: str = "Trimap"  # "Trimap", "Mask" or "Matte"


def _from_config(name):
    """{"losses", "region"} of the paper's config for policy ``name`` (configs/ is the one place
    a policy's loss weights are set)."""
    from detectron2.config import LazyConfig

    criterion = LazyConfig.load(os.path.join(REPO, "configs", PAPER_CONFIGS[name])).model.criterion
    return {"losses": dict(criterion.losses), "region": criterion.get("region", "whole")}


# The config that trains each policy at the paper's scale.
PAPER_CONFIGS = {
    "alpha_l1": "ablations/table1_alpha_l1.py",
    "known": "ablations/table4_known.py",
    "known_affinity": "ablations/table4_known_affinity.py",
    "known_dc": "ablations/table4_known_dc.py",
    "known_ddc": "am2k_ddc.py",
    "known_ddc_unknown": "ablations/table5_ddc_unknown.py",
    "known_dc_unknown": "ablations/table5_dc_unknown.py",
    "mask_l1_ddc": "ablations/table7_mask_l1.py",
    "mask_bce_ddc": "ablations/table7_mask_bce.py",
}


def _policies():
    from alphafree_d2.modeling.losses import LOSSES

    def policy(title, short, paper, name=None, losses=None):
        spec = _from_config(name) if name else {"losses": losses, "region": "whole"}
        # the training label follows from what the losses need (the table of losses)
        needs = {n for loss in spec["losses"] for n in LOSSES[loss].needs}
        label = "Mask" if "mask" in needs else "Matte" if "alpha" in needs else "Trimap"
        return Policy(title, short, paper, spec["losses"], spec["region"], label)

    return {
        "known": policy("L_known", "known", "T4 r1", "known"),
        "known_affinity": policy("L_known + L_affinity", "+affinity", "T4 r2", "known_affinity"),
        "known_dc": policy("L_known + L_DC", "+DC", "T4 r3", "known_dc"),
        "known_ddc": policy("L_known + L_DDC", "+DDC", "T4 r4, T1 r2", "known_ddc"),
        "known_ddc_unknown": policy(
            "L_known + L_DDC (unknown band)", "+DDC unknown", "T5", "known_ddc_unknown"
        ),
        "known_dc_unknown": policy(
            "L_known + L_DC (unknown band)", "+DC unknown", "T5", "known_dc_unknown"
        ),
        "mask_l1_ddc": policy("L1 mask + L_DDC", "mask+DDC", "T7 r1", "mask_l1_ddc"),
        "mask_bce_ddc": policy("BCE mask + L_DDC", "BCE mask+DDC", "T7 r2", "mask_bce_ddc"),
        "mask_l1": policy("L1 mask", "mask", "-", losses={"mask_l1": 1.0}),
        "alpha_l1": policy("L1 alpha (fine labels)", "alpha L1", "T1 r1", "alpha_l1"),
    }


POLICY_NAMES = (
    "known",
    "known_affinity",
    "known_dc",
    "known_ddc",
    "known_ddc_unknown",
    "known_dc_unknown",
    "mask_l1_ddc",
    "mask_bce_ddc",
    "mask_l1",
    "alpha_l1",
)
DEFAULT_POLICIES = (
    "known",
    "known_affinity",
    "known_dc",
    "known_ddc",
    "known_ddc_unknown",
    "mask_l1_ddc",
    "alpha_l1",
)

# Decoder widths: "thin" is the default budget's model, "demo" keeps configs/demo_ddc.py's.
DECODERS = {
    "thin": {"conv_channels": [8, 16, 32], "fusion_channels": [32, 16, 8, 8], "head_channels": 8},
    "demo": None,
}
# --smoke: a tiny ViT (2 blocks of width 32) for a test that runs in seconds.
SMOKE_BACKBONE = {
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "window_block_indexes": [0],
    "residual_block_indexes": [1],
}


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--output", default=os.path.join("output", "loss_policies"), help="output folder"
    )
    p.add_argument(
        "--policies",
        nargs="+",
        choices=POLICY_NAMES,
        default=list(DEFAULT_POLICIES),
        metavar="P",
        help=f"policies to train, in table order (default: {' '.join(DEFAULT_POLICIES)}; "
        f"also: {' '.join(sorted(set(POLICY_NAMES) - set(DEFAULT_POLICIES)))})",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="train.seed of the runs")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--iters", type=int, help="iterations per run (default 1000)")
    budget.add_argument(
        "--epochs", type=float, help="epochs of demo_train per run, instead of --iters"
    )
    p.add_argument("--batch", type=int, default=4, help="total batch size (all GPUs together)")
    p.add_argument("--crop", type=int, default=128, help="training crop size in pixels")
    p.add_argument(
        "--scale-range",
        nargs=2,
        type=float,
        default=[0.5, 1.0],
        metavar=("MIN", "MAX"),
        help="random scale factor range of the training augmentation (paper: 0.5 2.0)",
    )
    p.add_argument(
        "--crop-policy",
        choices=CROP_POLICIES,
        default="unknown_centred",
        help="where training crops go (build_matting_augmentations): centred on a random unknown "
        "pixel, small images enlarged (default, the official code's), or uniform with padding",
    )
    p.add_argument("--decoder", choices=sorted(DECODERS), default="thin", help="decoder widths")
    p.add_argument("--num-gpus", type=int, default=1, help="passed to the training script")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per run on the CPU (OMP_NUM_THREADS); 1 is the fastest on a CPU "
        "shared with other processes",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="runs trained at the same time (each with --threads threads); default 2, one per "
        "core of a 2-core machine. Use 1 with --num-gpus > 1",
    )
    p.add_argument("--real-dir", help="also evaluate on DIR/{image,alpha,trimap}/ (whole image)")
    p.add_argument(
        "--trimap-input",
        action="store_true",
        help="train the trimap-guided model (configs/demo_ddc_trimap.py) and add closed-form / "
        "KNN matting reference rows computed with the same trimaps",
    )
    p.add_argument(
        "--references",
        nargs="+",
        choices=["closed_form", "knn"],
        default=["closed_form", "knn"],
        help="classical reference methods of --trimap-input (KNN matting is the slower one)",
    )
    p.add_argument("--figure-images", type=int, default=3, help="images per figure")
    p.add_argument("--figure-width", type=int, default=200, help="figure tile width in pixels")
    p.add_argument("--label-seed", type=int, default=0, help="seed of the generated mask labels")
    p.add_argument(
        "--opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="further KEY=VALUE overrides for every run (last on the command line)",
    )
    p.add_argument("--overwrite", action="store_true", help="retrain runs that already exist")
    p.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny model, 2 iterations, 1 seed, 64 px crops, batch 2: checks the pipeline only",
    )
    return p


def _quote(value):
    """A path as an override value, quoted when it holds characters that Hydra's override
    grammar (which detectron2 uses) would read otherwise."""
    value = str(value)
    if re.fullmatch(r"/[A-Za-z0-9_./-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _list(values):
    return "[" + ",".join(repr(v) if isinstance(v, float) else str(v) for v in values) + "]"


class Plan:
    """Everything the runs share, and the command of each run."""

    def __init__(self, args, num_train_images):
        self.args = args
        self.output = os.path.abspath(args.output)
        self.smoke = args.smoke
        self.batch = 2 if args.smoke else args.batch
        self.crop = 64 if args.smoke else args.crop
        self.seeds = [args.seeds[0]] if args.smoke else list(args.seeds)
        if args.smoke:
            self.iters = 2
        elif args.epochs is not None:
            self.iters = max(1, round(args.epochs * num_train_images / self.batch))
        else:
            self.iters = args.iters or 1000
        self.iters_per_epoch = num_train_images / self.batch
        self.epochs = self.iters / self.iters_per_epoch
        self.policies = _policies()
        self.registrations = []

    def run_dir(self, name, seed):
        return os.path.join(self.output, "runs", name, f"seed{seed}")

    def model_overrides(self):
        out = []
        decoder = DECODERS[self.args.decoder] if not self.smoke else DECODERS["thin"]
        for key, value in (decoder or {}).items():
            out.append(f"model.decoder.{key}={_list(value) if isinstance(value, list) else value}")
        if self.smoke:
            for key, value in SMOKE_BACKBONE.items():
                out.append(
                    f"model.backbone.{key}={_list(value) if isinstance(value, list) else value}"
                )
        return out

    def criterion_overrides(self, policy):
        # Every loss is named: detectron2 merges dict overrides, and a weight of 0 switches a
        # loss off (MattingCriterion).
        from alphafree_d2.modeling.losses import LOSSES

        out = [f"model.criterion.losses.{n}={float(policy.losses.get(n, 0.0))}" for n in LOSSES]
        return out + [f"model.criterion.region={policy.region}"]

    def train_command(self, name, seed):
        policy = self.policies[name]
        milestones = [round(0.6 * self.epochs, 4), round(0.9 * self.epochs, 4)]
        dataset = MASK_DATASET if policy.label == "Mask" else "demo_train"
        overrides = [
            f"train.output_dir={_quote(self.run_dir(name, seed))}",
            f"train.seed={seed}",
            f"train.max_iter={self.iters}",
            f"train.epochs={round(self.epochs, 4)}",
            f"lr_multiplier.milestones_epochs={_list(milestones)}",
            "train.eval_period_epochs=0",
            "train.checkpointer.period_epochs=0",
            "train.log_period=20",
            f"dataloader.train.dataset.names={dataset}",
            f"dataloader.train.total_batch_size={self.batch}",
            f"dataloader.train.mapper.augmentations.crop_size={self.crop}",
            f"dataloader.train.mapper.augmentations.scale_range={_list(self.args.scale_range)}",
            f"dataloader.train.mapper.augmentations.crop_policy={self.args.crop_policy}",
            "dataloader.test.dataset.names=demo_val",
            "dataloader.evaluator.save_predictions=True",
            *(["dataloader.train.num_workers=0"] if self.smoke else []),
            *self.model_overrides(),
            *self.criterion_overrides(policy),
            *self.args.opts,
        ]
        return self._command(["--resume"], overrides)

    def eval_command(self, name, seed):
        run = self.run_dir(name, seed)
        overrides = [
            f"train.init_checkpoint={_quote(os.path.join(run, 'model_final.pth'))}",
            f"train.output_dir={_quote(run)}",  # --eval-only writes to run/REAL_EVAL
            f"dataloader.test.dataset.names={REAL_DATASET}",
            "dataloader.evaluator.save_predictions=True",
            *self.model_overrides(),
            *self.criterion_overrides(self.policies[name]),
            *self.args.opts,
        ]
        return self._command(["--eval-only"], overrides)

    def _command(self, flags, overrides):
        cmd = [sys.executable, ENTRY]
        for registration in self.registrations:
            cmd += ["--register", *registration]
        base = TRIMAP_CONFIG if self.args.trimap_input else BASE_CONFIG
        cmd += ["--config-file", base, "--num-gpus", str(self.args.num_gpus), *flags]
        return cmd + overrides


# ---------------------------------------------------------------------------------------------
# Running


def _environment(threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def _run(cmd, log_path, env):
    """Run ``cmd`` (in this working directory, which sets the default datasets root, as for
    the tools) with its output in ``log_path``; seconds taken."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(shlex.join(cmd) + "\n\n")
        log.flush()
        done = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = "".join(f.readlines()[-25:])
        raise RuntimeError(f"command failed ({done.returncode}), log {log_path}:\n{tail}")
    return seconds


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json(path, value):
    from alphafree_d2.utils.file_io import write_json

    write_json(path, value)


def final_losses(metrics_json, last=3):
    """Mean of the last ``last`` logged values of each loss in detectron2's metrics.json (each
    logged value is the median over the log period)."""
    values = {}
    if not os.path.isfile(metrics_json):
        return values
    with open(metrics_json, encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            for key, value in entry.items():
                if key == "total_loss" or key.startswith("loss_"):
                    values.setdefault(key, []).append(value)
    return {k: sum(v[-last:]) / len(v[-last:]) for k, v in values.items()}


def demo_csv(run):
    return os.path.join(run, "inference", "demo_val_whole_image_per_image.csv")


# The folder of tools/lazyconfig_train_net.py --eval-only inside a run's folder.
REAL_EVAL = os.path.join("eval", f"model_final-{REAL_DATASET}")


def real_csv(run):
    return os.path.join(run, REAL_EVAL, "inference", f"{REAL_DATASET}_whole_image_per_image.csv")


def execute(plan, name, seed, env, real):
    """Train (unless a finished run with the same command exists) and evaluate one run."""
    run = plan.run_dir(name, seed)
    info_path = os.path.join(run, "benchmark_run.json")
    train_cmd = plan.train_command(name, seed)
    spec = shlex.join(train_cmd[1:])  # not the interpreter's path
    info = _read_json(info_path)
    if info is not None and info.get("spec") != spec:
        if not plan.args.overwrite:
            raise SystemExit(
                f"{run} holds a run with other settings (see {info_path}); pass --overwrite to "
                f"retrain it, or choose another --output"
            )
        info = None
    if info is None and os.path.isdir(run) and plan.args.overwrite:
        shutil.rmtree(run)
    if info is None or not os.path.isfile(demo_csv(run)):
        seconds = _run(train_cmd, os.path.join(run, "train_stdout.log"), env)
        info = {"spec": spec, "train_seconds": seconds}
        _write_json(info_path, info)
    if real and not os.path.isfile(real_csv(run)):
        info["eval_real_seconds"] = _run(
            plan.eval_command(name, seed), os.path.join(run, "eval_real_stdout.log"), env
        )
        _write_json(info_path, info)
    return info


# ---------------------------------------------------------------------------------------------
# Main


def _check_real_dir(path):
    for sub in ("image", "alpha", "trimap"):
        if not os.path.isdir(os.path.join(path, sub)):
            raise SystemExit(
                f"--real-dir {path}: {os.path.join(path, sub)} is missing; expected "
                f"{path}/image/, {path}/alpha/ and {path}/trimap/ with files matched by stem"
            )
    return os.path.abspath(path)


def _label_background_level(records):
    """Fraction of foreground among the known pixels of the training labels: the known loss
    (mean L1 over known pixels) of the all-background prediction."""
    import numpy as np

    from alphafree_d2.data import read_trimap

    fg = known = 0
    for record in records:
        trimap = read_trimap(record["trimap_file_name"])
        fg += int(np.count_nonzero(trimap == 255))
        known += int(np.count_nonzero(trimap != 128))
    return fg / max(1, known)


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    sys.path.insert(0, HERE)
    from _policy_report import mean_metrics, read_per_image_csv

    from detectron2.data import DatasetCatalog, MetadataCatalog

    import alphafree_d2  # noqa: F401  (registers demo_train / demo_val)
    from alphafree_d2.data import generate_trimaps, register_matting_dataset

    train_records = DatasetCatalog.get("demo_train")  # generates the demo data if missing
    val_records = DatasetCatalog.get("demo_val")
    plan = Plan(args, len(train_records))
    policies = list(dict.fromkeys(args.policies))

    meta = MetadataCatalog.get("demo_train")
    if any(plan.policies[p].label == "Mask" for p in policies):
        mask_dir = os.path.join(plan.output, "labels", "demo_train_mask")
        if not args.dry_run:
            generate_trimaps(
                meta.alpha_root, mask_dir, seed=args.label_seed, mask=True, progress=False
            )
        plan.registrations.append((MASK_DATASET, os.path.abspath(meta.image_root), mask_dir, "-"))
    real_dir = _check_real_dir(args.real_dir) if args.real_dir else None
    if real_dir:
        plan.registrations.append(
            (REAL_DATASET, *(os.path.join(real_dir, s) for s in ("image", "trimap", "alpha")))
        )

    for name, image_root, trimap_root, alpha_root in plan.registrations:
        # Here for the report (records, figure); the runs register them in their own processes.
        if name in DatasetCatalog.list():  # an earlier main() in this process
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_matting_dataset(
            name, image_root, trimap_root, None if alpha_root == "-" else alpha_root
        )

    print(
        f"loss_policies: {len(policies)} policies x {len(plan.seeds)} seeds, {plan.iters} "
        f"iterations each (= {plan.epochs:.2f} epochs of {len(train_records)} images, batch "
        f"{plan.batch}, crop {plan.crop} ({args.crop_policy}), scale {args.scale_range}, decoder "
        f"{'thin (smoke)' if args.smoke else args.decoder}), {args.threads} thread(s); output "
        f"{plan.output}",
        flush=True,
    )
    if args.dry_run:
        for seed in plan.seeds:
            for name in policies:
                print(shlex.join(plan.train_command(name, seed)))
                if real_dir:
                    print(shlex.join(plan.eval_command(name, seed)))
        return 0

    env = _environment(args.threads)
    infos = {}
    runs = [(name, seed) for seed in plan.seeds for name in policies]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {
            pool.submit(execute, plan, name, seed, env, real_dir is not None): (name, seed)
            for name, seed in runs
        }
        for done_count, future in enumerate(as_completed(futures), 1):
            name, seed = futures[future]
            info = infos[name, seed] = future.result()
            demo = mean_metrics(read_per_image_csv(demo_csv(plan.run_dir(name, seed))))
            print(
                f"[{done_count}/{len(runs)}] {name} seed {seed}: "
                f"train {info['train_seconds']:.0f} s"
                + (
                    f", real eval {info['eval_real_seconds']:.0f} s"
                    if "eval_real_seconds" in info
                    else ""
                )
                + f"; demo_val SAD {demo['SAD']:.2f} MAD {demo['MAD']:.4f} Grad {demo['Grad']:.2f}"
                f" SAD-T {demo['SAD-T']:.2f} (elapsed {time.perf_counter() - start:.0f} s)",
                flush=True,
            )

    report = write_report(plan, policies, infos, train_records, val_records, real_dir, start)
    print(report)
    return 0


def write_report(plan, policies, infos, train_records, val_records, real_dir, start):
    from _closed_form import closed_form_references, trimap_pngs
    from _policy_report import (
        aggregate,
        markdown_table,
        mean_metrics,
        policy_figure,
        read_per_image_csv,
        reference_metrics,
    )

    from detectron2.data import DatasetCatalog

    from alphafree_d2.utils.file_io import atomic_write, write_csv

    datasets = [
        (
            "demo_val",
            demo_csv,
            val_records,
            "demo_val",
            os.path.join("inference", "predictions", "demo_val"),
        )
    ]
    if real_dir:
        datasets.append(
            (
                "real",
                real_csv,
                DatasetCatalog.get(REAL_DATASET),
                REAL_DATASET,
                os.path.join(REAL_EVAL, "inference", "predictions", REAL_DATASET),
            )
        )
    csv_rows, sections, figures = [], [], []
    seconds_per_image = {}
    for label, csv_of, records, _, pred_sub in datasets:
        table_rows = []
        for name in policies:
            policy = plan.policies[name]
            per_seed = []
            for seed in plan.seeds:
                metrics = mean_metrics(read_per_image_csv(csv_of(plan.run_dir(name, seed))))
                per_seed.append(metrics)
                csv_rows.append({"dataset": label, "policy": name, "seed": seed, **metrics})
            table_rows.append((policy.title, policy.label, policy.paper, aggregate(per_seed)))
        references = reference_metrics(records)
        extra_columns = []
        if plan.args.trimap_input:
            classical = closed_form_references(
                records, os.path.join(plan.output, "closed_form", label), plan.args.references
            )
            for method, result in classical.items():
                references[result["title"]] = mean_metrics(result["rows"])
                seconds_per_image[label, method] = result["seconds_per_image"]
            trimap_dir = os.path.join(plan.output, "closed_form", label, "trimap")
            trimaps = trimap_pngs(records, trimap_dir)
            extra_columns = [("trimap", trimaps)]
            if "closed_form" in classical:
                extra_columns.append(("closed-form", classical["closed_form"]["predictions"]))
        for ref, metrics in references.items():
            csv_rows.append(
                {"dataset": label, "policy": f"reference: {ref}", "seed": "", **metrics}
            )
        where = (
            f"`demo_val` ({len(records)} procedural composites, 256-384 px)"
            if label == "demo_val"
            else f"`{real_dir}` ({len(records)} real photos, whole image, full resolution)"
        )
        sections.append(
            f"### {where}\n\nMean ± sample standard deviation over seeds {plan.seeds} "
            f"(whole-image protocol; SAD, Conn, SAD-T and SAD-K in thousands, Grad / 10 as the "
            f"AM-2K/P3M code). SAD-K = SAD - SAD-T is not in the paper: the error where the "
            f"evaluation trimap is known.\n\n" + markdown_table(table_rows, references)
        )
        shown = sorted(records, key=lambda r: r["image_id"])[: plan.args.figure_images]
        predictions = [
            {
                r["image_id"]: os.path.join(
                    plan.run_dir(name, plan.seeds[0]), pred_sub, r["image_id"] + ".png"
                )
                for r in shown
            }
            for name in policies
        ]
        path = os.path.join(plan.output, f"figure_{label}.png")
        titles = [plan.policies[n].short for n in policies]
        if extra_columns:
            predictions = [cols for _, cols in extra_columns] + predictions
            titles = [title for title, _ in extra_columns] + titles
        policy_figure(shown, predictions, titles, path, tile_width=plan.args.figure_width)
        figures.append(path)

    keys = [
        "dataset",
        "policy",
        "seed",
        "SAD",
        "MAD",
        "MSE",
        "Grad",
        "Conn",
        "SAD-T",
        "MSE-T",
        "SAD-K",
    ]
    write_csv(
        os.path.join(plan.output, "results.csv"), keys, [[r[k] for k in keys] for r in csv_rows]
    )

    wall = time.perf_counter() - start
    background = _label_background_level(train_records)
    loss_lines = []
    for name in policies:
        label_key = {"Trimap": "loss_known", "Mask": "loss_mask_l1", "Matte": "loss_alpha_l1"}[
            plan.policies[name].label
        ]
        if name == "mask_bce_ddc":
            label_key = "loss_mask_bce"
        finals = [
            final_losses(os.path.join(plan.run_dir(name, seed), "metrics.json"))
            for seed in plan.seeds
        ]
        label_losses = [f.get(label_key, f.get("total_loss", math.nan)) for f in finals]
        seconds = [infos[name, seed]["train_seconds"] for seed in plan.seeds]
        loss_lines.append(
            f"| {name} | {' / '.join(f'{v:.3f}' for v in label_losses)} | "
            f"{' / '.join(f'{s:.0f}' for s in seconds)} |"
        )
    args = plan.args
    mode = "trimap-guided, " if args.trimap_input else ""
    header = (
        f"## Loss policies at small scale (benchmarks/loss_policies.py)\n\n"
        f"Model: {mode}configs/demo_ddc{'_trimap' if args.trimap_input else ''}.py's ViT "
        f"(4 blocks, width 96) with the "
        f"{'thin' if args.decoder == 'thin' or args.smoke else 'demo'} decoder"
        f"{' (smoke: tiny ViT)' if args.smoke else ''}; trained from scratch on `demo_train` "
        f"(64 composites) for {plan.iters} iterations = {plan.epochs:.2f} epochs, batch "
        f"{plan.batch}, {plan.crop} px crops ({args.crop_policy}), random scale {args.scale_range}, lr steps at 60 % / "
        f"90 %, seeds {plan.seeds}, {args.num_gpus} process(es), {args.threads} thread(s), {args.jobs} run(s) at a time. "
        f"Wall time of this invocation: {wall / 60:.1f} min (runs reused from an earlier "
        f"invocation are not counted).\n"
    )
    losses_md = (
        "Training label loss at the end (mean of the last 3 logged values, each the median over "
        f"20 iterations; per seed) and training wall time per run. The all-background "
        f"prediction has a known loss of {background:.3f} on the training labels (whole images): "
        f"a known loss clearly below it means the model left the initial plateau.\n\n"
        "| Policy | label loss (seeds) | train s (seeds) |\n|---|---:|---:|\n"
        + "\n".join(loss_lines)
    )
    figures_md = "Figures (first seed's models, first images by id): " + ", ".join(
        f"`{os.path.relpath(p, plan.output)}`" for p in figures
    )
    timing_md = ""
    if seconds_per_image:
        timing_md = "Classical references, seconds per image (this machine): " + ", ".join(
            f"{method} on {label} {sec:.2f} s" for (label, method), sec in seconds_per_image.items()
        )
    report = "\n\n".join(filter(None, [header, *sections, losses_md, timing_md, figures_md])) + "\n"
    with atomic_write(os.path.join(plan.output, "results.md"), "w", encoding="utf-8") as f:
        f.write(report)
    _write_json(
        os.path.join(plan.output, "benchmark.json"),
        {
            "argv": sys.argv[1:],
            "wall_seconds": wall,
            "iters": plan.iters,
            "epochs": plan.epochs,
            "batch": plan.batch,
            "crop": plan.crop,
            "seeds": plan.seeds,
            "policies": policies,
            "runs": {f"{n}/seed{s}": i for (n, s), i in infos.items()},
        },
    )
    return report


if __name__ == "__main__":
    sys.exit(main())
