"""The command line of the loss-policy benchmark (``python -m benchmarks.loss_policies``; the
package docstring is its ``--help``): parse, register the extra datasets, run the plan, write the
report."""

import argparse
import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from alphafree_d2.data import CROP_POLICIES

from ..closed_form import METHODS
from .plan import DECODERS, MASK_DATASET, REAL_DATASET, Plan, demo_csv
from .policies import DEFAULT_POLICIES, POLICY_NAMES
from .report import write_report
from .run import environment, execute
from .tables import mean_metrics, read_per_image_csv


def _package_doc():
    return sys.modules[__package__].__doc__


def _add_training_options(p):
    """What each run trains: policies, seeds, budget, data augmentation, model."""
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
    p.add_argument(
        "--trimap-input",
        action="store_true",
        help="train the trimap-guided model (configs/demo_ddc_trimap.py) and add closed-form / "
        "KNN matting reference rows computed with the same trimaps",
    )
    p.add_argument("--label-seed", type=int, default=0, help="seed of the generated mask labels")
    p.add_argument(
        "--opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="further KEY=VALUE overrides for every run (last on the command line)",
    )


def _add_execution_options(p):
    """How the runs execute: processes, threads, parallel runs, reuse, dry and smoke runs."""
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
    p.add_argument("--overwrite", action="store_true", help="retrain runs that already exist")
    p.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny model, 2 iterations, 1 seed, 64 px crops, batch 2: checks the pipeline only",
    )


def _add_report_options(p):
    """Where the models are evaluated and what the report holds."""
    p.add_argument(
        "--output", default=os.path.join("output", "loss_policies"), help="output folder"
    )
    p.add_argument("--real-dir", help="also evaluate on DIR/{image,alpha,trimap}/ (whole image)")
    p.add_argument(
        "--references",
        nargs="+",
        choices=list(METHODS),
        default=list(METHODS),
        help="classical reference methods of --trimap-input (KNN matting is the slower one)",
    )
    p.add_argument("--figure-images", type=int, default=3, help="images per figure")
    p.add_argument("--figure-width", type=int, default=200, help="figure tile width in pixels")


def build_parser():
    p = argparse.ArgumentParser(
        description=_package_doc(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_training_options(p)
    _add_execution_options(p)
    _add_report_options(p)
    return p


def _check_real_dir(path):
    for sub in ("image", "alpha", "trimap"):
        if not os.path.isdir(os.path.join(path, sub)):
            raise SystemExit(
                f"--real-dir {path}: {os.path.join(path, sub)} is missing; expected "
                f"{path}/image/, {path}/alpha/ and {path}/trimap/ with files matched by stem"
            )
    return os.path.abspath(path)


def register_datasets(plan, policies, real_dir):
    """Generate the mask labels if a policy trains on them, and register the mask-label and
    ``--real-dir`` datasets here (for the report) and in ``plan.registrations`` (for the runs,
    which register them in their own processes)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from alphafree_d2.data import generate_trimaps, register_matting_dataset

    args = plan.args
    if any(plan.policies[p].label == "Mask" for p in policies):
        meta = MetadataCatalog.get("demo_train")
        mask_dir = os.path.join(plan.output, "labels", "demo_train_mask")
        if not args.dry_run:
            generate_trimaps(
                meta.alpha_root, mask_dir, seed=args.label_seed, mask=True, progress=False
            )
        plan.registrations.append((MASK_DATASET, os.path.abspath(meta.image_root), mask_dir, "-"))
    if real_dir:
        folders = (os.path.join(real_dir, s) for s in ("image", "trimap", "alpha"))
        plan.registrations.append((REAL_DATASET, *folders))
    for name, image_root, trimap_root, alpha_root in plan.registrations:
        if name in DatasetCatalog.list():  # an earlier main() in this process
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        alpha_root = None if alpha_root == "-" else alpha_root
        register_matting_dataset(name, image_root, trimap_root, alpha_root)


def describe(plan, policies, num_train_images):
    """One line: what this invocation trains."""
    args = plan.args
    return (
        f"loss_policies: {len(policies)} policies x {len(plan.seeds)} seeds, {plan.iters} "
        f"iterations each (= {plan.epochs:.2f} epochs of {num_train_images} images, batch "
        f"{plan.batch}, crop {plan.crop} ({args.crop_policy}), scale {args.scale_range}, decoder "
        f"{'thin (smoke)' if args.smoke else args.decoder}), {args.threads} thread(s); output "
        f"{plan.output}"
    )


def run_all(plan, policies, real, start):
    """Train and evaluate every (policy, seed), ``--jobs`` at a time, printing each as it ends;
    {(policy, seed): run info}."""
    infos = {}
    env = environment(plan.args.threads)
    runs = [(name, seed) for seed in plan.seeds for name in policies]
    with ThreadPoolExecutor(max_workers=max(1, plan.args.jobs)) as pool:
        futures = {
            pool.submit(execute, plan, name, seed, env, real): (name, seed) for name, seed in runs
        }
        for done_count, future in enumerate(as_completed(futures), 1):
            name, seed = futures[future]
            info = infos[name, seed] = future.result()
            demo = mean_metrics(read_per_image_csv(demo_csv(plan.run_dir(name, seed))))
            real_eval = info.get("eval_real_seconds")
            print(
                f"[{done_count}/{len(runs)}] {name} seed {seed}: "
                f"train {info['train_seconds']:.0f} s"
                + (f", real eval {real_eval:.0f} s" if real_eval is not None else "")
                + f"; demo_val SAD {demo['SAD']:.2f} MAD {demo['MAD']:.4f} Grad {demo['Grad']:.2f}"
                f" SAD-T {demo['SAD-T']:.2f} (elapsed {time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    return infos


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    from detectron2.data import DatasetCatalog

    import alphafree_d2  # noqa: F401  (registers demo_train / demo_val)

    train_records = DatasetCatalog.get("demo_train")  # generates the demo data if missing
    val_records = DatasetCatalog.get("demo_val")
    plan = Plan(args, len(train_records))
    policies = list(dict.fromkeys(args.policies))
    real_dir = _check_real_dir(args.real_dir) if args.real_dir else None
    register_datasets(plan, policies, real_dir)
    print(describe(plan, policies, len(train_records)), flush=True)
    if args.dry_run:
        for seed in plan.seeds:
            for name in policies:
                print(shlex.join(plan.train_command(name, seed)))
                if real_dir:
                    print(shlex.join(plan.eval_command(name, seed)))
        return 0
    infos = run_all(plan, policies, real_dir is not None, start)
    print(write_report(plan, policies, infos, train_records, val_records, real_dir, start))
    return 0
