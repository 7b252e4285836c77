"""The report of one invocation, from the files the runs wrote: ``results.md`` (one table per
dataset, the final training losses, timings), ``results.csv``, one figure per dataset and
``benchmark.json``."""

import math
import os
import sys
import time
from typing import Callable, List, NamedTuple

from ..closed_form import closed_form_references, trimap_pngs
from .figure import policy_figure
from .plan import REAL_DATASET, REAL_EVAL, demo_csv, real_csv
from .run import final_losses
from .tables import (
    EXTRA_COLUMNS,
    PAPER_COLUMNS,
    aggregate,
    markdown_table,
    mean_metrics,
    read_per_image_csv,
    reference_metrics,
)

CSV_KEYS = ("dataset", "policy", "seed", *PAPER_COLUMNS, *EXTRA_COLUMNS)
# The loss of each training label in detectron2's metrics.json.
LABEL_LOSSES = {"Trimap": "loss_known", "Mask": "loss_mask_l1", "Matte": "loss_alpha_l1"}


class Dataset(NamedTuple):
    """An evaluation dataset of the report."""

    label: str  # "demo_val" or "real": table, CSV rows and figure name
    csv_of: Callable[[str], str]  # run folder -> the evaluator's per-image CSV
    records: List[dict]
    predictions: str  # the prediction PNGs' folder inside a run's folder


def datasets(val_records, real_dir):
    """The evaluation datasets of the invocation: ``demo_val``, and the ``--real-dir`` photos."""
    from detectron2.data import DatasetCatalog

    out = [
        Dataset(
            "demo_val", demo_csv, val_records, os.path.join("inference", "predictions", "demo_val")
        )
    ]
    if real_dir:
        predictions = os.path.join(REAL_EVAL, "inference", "predictions", REAL_DATASET)
        out.append(Dataset("real", real_csv, DatasetCatalog.get(REAL_DATASET), predictions))
    return out


def policy_rows(plan, policies, dataset):
    """Table rows (title, label, paper row, aggregate over seeds) and CSV rows (one per seed)."""
    table_rows, csv_rows = [], []
    for name in policies:
        policy = plan.policies[name]
        per_seed = []
        for seed in plan.seeds:
            metrics = mean_metrics(read_per_image_csv(dataset.csv_of(plan.run_dir(name, seed))))
            per_seed.append(metrics)
            csv_rows.append({"dataset": dataset.label, "policy": name, "seed": seed, **metrics})
        table_rows.append((policy.title, policy.label, policy.paper, aggregate(per_seed)))
    return table_rows, csv_rows


def references(plan, dataset):
    """Reference rows {title: metrics}, extra figure columns [(title, {image_id: png})] and
    {method: seconds per image}: the trivial predictions, and with ``--trimap-input`` the
    classical trimap-based methods (:mod:`benchmarks.closed_form`)."""
    rows = reference_metrics(dataset.records)
    if not plan.args.trimap_input:
        return rows, [], {}
    folder = os.path.join(plan.output, "closed_form", dataset.label)
    classical = closed_form_references(dataset.records, folder, plan.args.references)
    seconds = {}
    for method, result in classical.items():
        rows[result["title"]] = mean_metrics(result["rows"])
        seconds[method] = result["seconds_per_image"]
    columns = [("trimap", trimap_pngs(dataset.records, os.path.join(folder, "trimap")))]
    if "closed_form" in classical:
        columns.append(("closed-form", classical["closed_form"]["predictions"]))
    return rows, columns, seconds


def section(plan, dataset, table_rows, reference_rows, real_dir):
    """The Markdown section of one dataset: a heading, how to read it, the table."""
    n = len(dataset.records)
    where = (
        f"`demo_val` ({n} procedural composites, 256-384 px)"
        if dataset.label == "demo_val"
        else f"`{real_dir}` ({n} real photos, whole image, full resolution)"
    )
    return (
        f"### {where}\n\nMean ± sample standard deviation over seeds {plan.seeds} "
        f"(whole-image protocol; SAD, Conn, SAD-T and SAD-K in thousands, Grad / 10 as the "
        f"AM-2K/P3M code). SAD-K = SAD - SAD-T is not in the paper: the error where the "
        f"evaluation trimap is known.\n\n" + markdown_table(table_rows, reference_rows)
    )


def figure(plan, policies, dataset, extra_columns):
    """Write ``figure_<label>.png``: the first ``--figure-images`` images by id, the first
    seed's predictions of each policy after ``extra_columns``; its path."""
    shown = sorted(dataset.records, key=lambda r: r["image_id"])[: plan.args.figure_images]
    predictions = [cols for _, cols in extra_columns]
    titles = [title for title, _ in extra_columns]
    for name in policies:
        run = plan.run_dir(name, plan.seeds[0])
        predictions.append(
            {
                r["image_id"]: os.path.join(run, dataset.predictions, r["image_id"] + ".png")
                for r in shown
            }
        )
        titles.append(plan.policies[name].short)
    path = os.path.join(plan.output, f"figure_{dataset.label}.png")
    return policy_figure(shown, predictions, titles, path, tile_width=plan.args.figure_width)


def label_background_level(records):
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


def losses_section(plan, policies, infos, train_records):
    """The final training-label loss and training time of each run, next to the loss of the
    all-background prediction."""
    lines = []
    for name in policies:
        key = LABEL_LOSSES[plan.policies[name].label]
        if name == "mask_bce_ddc":
            key = "loss_mask_bce"
        finals = [
            final_losses(os.path.join(plan.run_dir(name, s), "metrics.json")) for s in plan.seeds
        ]
        losses = [f.get(key, f.get("total_loss", math.nan)) for f in finals]
        seconds = [infos[name, seed]["train_seconds"] for seed in plan.seeds]
        lines.append(
            f"| {name} | {' / '.join(f'{v:.3f}' for v in losses)} | "
            f"{' / '.join(f'{s:.0f}' for s in seconds)} |"
        )
    return (
        "Training label loss at the end (mean of the last 3 logged values, each the median over "
        f"20 iterations; per seed) and training wall time per run. The all-background "
        f"prediction has a known loss of {label_background_level(train_records):.3f} on the "
        f"training labels (whole images): a known loss clearly below it means the model left "
        f"the initial plateau.\n\n"
        "| Policy | label loss (seeds) | train s (seeds) |\n|---|---:|---:|\n" + "\n".join(lines)
    )


def header(plan, wall):
    """The report's heading: model, data, budget and this invocation's wall time."""
    args = plan.args
    mode = "trimap-guided, " if args.trimap_input else ""
    decoder = "thin" if args.decoder == "thin" or args.smoke else "demo"
    return (
        f"## Loss policies at small scale (benchmarks/loss_policies)\n\n"
        f"Model: {mode}configs/demo_ddc{'_trimap' if args.trimap_input else ''}.py's ViT "
        f"(4 blocks, width 96) with the {decoder} decoder"
        f"{' (smoke: tiny ViT)' if args.smoke else ''}; trained from scratch on `demo_train` "
        f"(64 composites) for {plan.iters} iterations = {plan.epochs:.2f} epochs, batch "
        f"{plan.batch}, {plan.crop} px crops ({args.crop_policy}), random scale "
        f"{args.scale_range}, lr steps at 60 % / 90 %, seeds {plan.seeds}, {args.num_gpus} "
        f"process(es), {args.threads} thread(s), {args.jobs} run(s) at a time. Wall time of this "
        f"invocation: {wall / 60:.1f} min (runs reused from an earlier invocation are not "
        f"counted).\n"
    )


def timing_line(seconds_per_image):
    """The classical references' seconds per image, {(dataset, method): s}; "" when none ran."""
    if not seconds_per_image:
        return ""
    return "Classical references, seconds per image (this machine): " + ", ".join(
        f"{method} on {label} {s:.2f} s" for (label, method), s in seconds_per_image.items()
    )


def write_report(plan, policies, infos, train_records, val_records, real_dir, start):
    """Write ``results.md``, ``results.csv``, the figures and ``benchmark.json`` under
    ``plan.output``; the text of ``results.md``."""
    from alphafree_d2.utils.file_io import atomic_write, write_csv, write_json

    csv_rows, sections, figures, seconds_per_image = [], [], [], {}
    for dataset in datasets(val_records, real_dir):
        table_rows, rows = policy_rows(plan, policies, dataset)
        reference_rows, extra_columns, seconds = references(plan, dataset)
        csv_rows += rows
        csv_rows += [
            {"dataset": dataset.label, "policy": f"reference: {ref}", "seed": "", **metrics}
            for ref, metrics in reference_rows.items()
        ]
        seconds_per_image.update({(dataset.label, m): s for m, s in seconds.items()})
        sections.append(section(plan, dataset, table_rows, reference_rows, real_dir))
        figures.append(figure(plan, policies, dataset, extra_columns))
    write_csv(
        os.path.join(plan.output, "results.csv"),
        CSV_KEYS,
        [[r[k] for k in CSV_KEYS] for r in csv_rows],
    )
    wall = time.perf_counter() - start
    parts = [
        header(plan, wall),
        *sections,
        losses_section(plan, policies, infos, train_records),
        timing_line(seconds_per_image),
        "Figures (first seed's models, first images by id): "
        + ", ".join(f"`{os.path.relpath(p, plan.output)}`" for p in figures),
    ]
    report = "\n\n".join(filter(None, parts)) + "\n"
    with atomic_write(os.path.join(plan.output, "results.md"), "w", encoding="utf-8") as f:
        f.write(report)
    summary = {
        "argv": sys.argv[1:],
        "wall_seconds": wall,
        "iters": plan.iters,
        "epochs": plan.epochs,
        "batch": plan.batch,
        "crop": plan.crop,
        "seeds": plan.seeds,
        "policies": policies,
        "runs": {f"{n}/seed{s}": i for (n, s), i in infos.items()},
    }
    write_json(os.path.join(plan.output, "benchmark.json"), summary)
    return report
