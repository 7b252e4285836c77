#!/usr/bin/env python
"""Per-photo refinement of a trimap-guided model, measured on real photos with ground truth beside
closed-form and KNN matting on the same trimaps (alphafree_d2/inference/refine.py).

One invocation runs one refinement setting (region, lr, losses, crop size) on every photo up to
the largest of ``--steps``, predicting at each of ``--steps`` on the way (a constant-lr run of
200 steps passes through the 10- and 50-step models, so one trajectory gives all three rows), and
then rewrites the report from everything cached under ``--output``:

    python -m benchmarks.refinement --real-dir ../shared/data/alphamatting-dev \\
        --checkpoint output/demo_ddc_trimap/model_final.pth --lr 3e-4 --steps 10 50 200
    python -m benchmarks.refinement ... --lr 1e-3 --steps 10 50 200 --losses known=1  # ablation
    python -m benchmarks.refinement ... --region whole --lr 1e-3 --steps 10 50
    python -m benchmarks.refinement ... --cf-prior 0.1     # closed-form with the model's alpha
    python -m benchmarks.refinement ... --report-only

Every invocation also computes (once, cached) the unrefined model's prediction (the product
path, ``MattingPredictor``) and pymatting's closed-form and KNN matting
(``benchmarks/closed_form.py``). ``--cf-prior W`` adds the cheap alternative: closed-form matting
with the unrefined model's alpha as a prior in the unknown band (weight W).

Outputs under ``--output`` (default ``output/refinement``): ``<setting>/<image_id>.json`` (per
photo: metrics, wall and CPU seconds at each step count, the loss curve, the load average), the alpha PNGs
``<setting>/step<N>/<image_id>.png``, ``results.md`` (the table, the per-photo table),
``figure.png`` (image | trimap | unrefined | refined | closed-form | ground truth, with a
magnified detail; ``--figure-setting``/``--figure-steps`` pick the refined column, default the
refined row with the lowest mean SAD-T). Photos already in a setting's cache are not run again,
so an interrupted run resumes. Metrics: ``alphafree_d2.evaluation.matting_metrics``, whole image,
float predictions. Photos run one after another with ``--threads`` torch threads.
"""

import argparse
import dataclasses
import glob
import json
import os
import time

import numpy as np
import torch

from detectron2.data import DatasetCatalog

import alphafree_d2  # noqa: F401  (registers demo_val)
from alphafree_d2.data import read_alpha, read_image, read_trimap, register_matting_dataset
from alphafree_d2.engine import load_config
from alphafree_d2.evaluation import as_8bit_codes, matting_metrics
from alphafree_d2.inference.highres import predict_alpha_highres
from alphafree_d2.inference.predictor import MattingPredictor
from alphafree_d2.inference.refine import REGIONS, RefinementPolicy, parse_losses, refine_model
from alphafree_d2.utils.file_io import atomic_write, write_json, write_png
from benchmarks.closed_form import closed_form_references, trimap_pngs
from benchmarks.loss_policies.figure import policy_figure

COLUMNS = ("SAD-T", "Grad", "MSE-T", "SAD", "Conn")


def load_records(args):
    if args.real_dir:
        name = "refinement_real"
        register_matting_dataset(
            name, *(os.path.join(args.real_dir, s) for s in ("image", "trimap", "alpha"))
        )
    else:
        name = args.dataset
    records = sorted(DatasetCatalog.get(name), key=lambda r: r["image_id"])
    if args.limit:
        records = records[: args.limit]
    return records


def photo(record):
    """(image uint8 (H, W, 3) RGB, trimap uint8 {0, 128, 255}, ground truth for the metrics)."""
    image = read_image(record["file_name"], "RGB")
    trimap = read_trimap(record["trimap_file_name"])
    return image, trimap, as_8bit_codes(read_alpha(record["alpha_file_name"]))


def tensors(image, trimap):
    """The tensors MattingPredictor builds for an RGB model: (1, 3, H, W) 0-255, (1, 1, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    t = np.where(trimap == 128, 0.5, trimap / 255.0).astype(np.float32)
    return x, torch.from_numpy(t)[None, None]


def setting_name(policy):
    losses = (
        "config"
        if policy.losses is None
        else "+".join(f"{w:g}{n}" for n, w in policy.losses.items())
    )
    name = f"{policy.region}-lr{policy.lr:g}-{losses}"
    if policy.region == "crops":
        name += f"-{policy.crop_size}x{policy.batch_size}"
    return name + (f"-seed{policy.seed}" if policy.seed else "")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def clock():
    """(wall seconds, CPU seconds of this process, all threads): the CPU time barely depends on
    what else runs on the machine, the wall time does."""
    return np.array([time.perf_counter(), time.process_time()])


def timing(seconds):
    return {"seconds": float(seconds[0]), "cpu_seconds": float(seconds[1])}


def save_alpha(path, alpha):
    write_png(path, np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8))


def run_unrefined(predictor, records, out_dir):
    """The plain prediction of every photo (MattingPredictor, no refinement), cached."""
    for record in records:
        path = os.path.join(out_dir, record["image_id"] + ".json")
        if os.path.isfile(path):
            continue
        image, trimap, gt = photo(record)
        start = clock()
        alpha = predictor(image, trimap)
        seconds = clock() - start
        save_alpha(os.path.join(out_dir, "step0", record["image_id"] + ".png"), alpha)
        metrics = matting_metrics(alpha, gt, trimap)
        write_json(path, {"steps": {"0": {"metrics": metrics, **timing(seconds)}},
                          "load": os.getloadavg()[0]})  # fmt: skip
        print(f"unrefined {record['image_id']}: SAD-T {metrics['SAD-T']:.2f} "
              f"Grad {metrics['Grad']:.2f} ({seconds[0]:.1f} s)", flush=True)  # fmt: skip


def run_setting(predictor, records, policy, snapshots, out_dir):
    """Refine on every photo up to max(snapshots) steps; predict, score and save at each
    snapshot. Cached per photo (same policy and snapshots: skipped)."""
    wanted = {"policy": dataclasses.asdict(policy), "snapshots": sorted(snapshots)}
    for record in records:
        image_id = record["image_id"]
        path = os.path.join(out_dir, image_id + ".json")
        if os.path.isfile(path) and {k: load(path)[k] for k in wanted} == wanted:
            continue
        image, trimap, gt = photo(record)
        x, t = tensors(image, trimap)
        result = dict(wanted, steps={}, loss=[], load=[])
        spent = {"train": 0.0, "since": clock()}

        def on_step(step, model, losses):
            spent["train"] += clock() - spent["since"]
            result["loss"].append(sum(losses.values()))
            if step in snapshots:
                start = clock()
                with torch.inference_mode():
                    alpha = predict_alpha_highres(model, x, predictor.policy, t)
                alpha = alpha[0, 0].clamp(0, 1).numpy()
                seconds = spent["train"] + clock() - start
                save_alpha(os.path.join(out_dir, f"step{step}", image_id + ".png"), alpha)
                metrics = matting_metrics(alpha, gt, trimap)
                result["steps"][str(step)] = {"metrics": metrics, **timing(seconds)}
                result["load"].append(os.getloadavg()[0])
                print(f"{os.path.basename(out_dir)} {image_id} step {step}: SAD-T "
                      f"{metrics['SAD-T']:.2f} Grad {metrics['Grad']:.2f} loss "
                      f"{result['loss'][-1]:.4f} ({seconds[0]:.0f} s, load "
                      f"{result['load'][-1]:.1f})", flush=True)  # fmt: skip
            spent["since"] = clock()

        refine_model(predictor.model, x, t, policy, on_step=on_step)
        write_json(path, result)


def closed_form_with_prior(image, trimap, prior, weight):
    """Closed-form matting (Levin et al. 2008, pymatting's Laplacian and solver) with ``prior``
    as a soft target in the unknown band: minimise a^T L a + weight * |a_U - prior_U|^2 with the
    known pixels fixed, i.e. (L_UU + weight I) a_U = -L_UK a_K + weight prior_U.

    Args: image float (H, W, 3) in [0, 1]; trimap float (H, W) in {0, 0.5, 1}; prior (H, W).
    """
    import pymatting
    import scipy.sparse

    is_fg, _, is_known, is_unknown = pymatting.trimap_split(trimap)
    laplacian = pymatting.cf_laplacian(image, is_known=is_known)
    rows = laplacian[is_unknown, :]
    system = rows[:, is_unknown] + weight * scipy.sparse.identity(
        int(is_unknown.sum()), format="csr"
    )
    rhs = -rows[:, is_known].dot(is_fg[is_known]) + weight * prior.ravel()[is_unknown]
    alpha = trimap.astype(np.float64).ravel().copy()
    alpha[is_unknown] = pymatting.cg(system, rhs, M=pymatting.ichol(system))
    return np.clip(alpha, 0, 1).reshape(trimap.shape)


def run_cf_prior(records, weight, unrefined_dir, out_dir):
    for record in records:
        path = os.path.join(out_dir, record["image_id"] + ".json")
        if os.path.isfile(path):
            continue
        image, trimap, gt = photo(record)
        prior = read_alpha(os.path.join(unrefined_dir, "step0", record["image_id"] + ".png"))
        start = clock()
        alpha = closed_form_with_prior(
            image / 255.0, np.where(trimap == 128, 0.5, trimap / 255.0), prior, weight
        ).astype(np.float32)
        seconds = clock() - start
        save_alpha(os.path.join(out_dir, "step0", record["image_id"] + ".png"), alpha)
        metrics = matting_metrics(alpha, gt, trimap)
        write_json(path, {"steps": {"0": {"metrics": metrics, **timing(seconds)}},
                          "load": os.getloadavg()[0]})  # fmt: skip
        print(f"cf-prior {weight:g} {record['image_id']}: SAD-T {metrics['SAD-T']:.2f} "
              f"Grad {metrics['Grad']:.2f} ({seconds[0]:.0f} s)", flush=True)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Report


def cached_rows(output, ids):
    """{(setting, steps): {"rows": [per-photo metrics in ``ids`` order], "seconds": [...],
    "load": [...]}} for every setting folder with all photos cached."""
    out = {}
    for folder in sorted(glob.glob(os.path.join(output, "*", ""))):
        setting = os.path.basename(os.path.dirname(folder))
        paths = [os.path.join(folder, i + ".json") for i in ids]
        if setting == "closed_form" or not all(os.path.isfile(p) for p in paths):
            continue
        results = [load(p) for p in paths]
        for steps in results[0]["steps"]:
            entries = [r["steps"][steps] for r in results]
            loads = [np.mean(r["load"]) for r in results]
            out[(setting, int(steps))] = {
                "rows": [e["metrics"] for e in entries],
                "seconds": [e["seconds"] for e in entries],
                "cpu_seconds": [e.get("cpu_seconds", np.nan) for e in entries],
                "load": loads,
                "policy": results[0].get("policy"),
            }
    return out


def describe(setting, steps):
    if setting == "unrefined":
        return "unrefined model"
    if setting.startswith("cf-prior"):
        return f"closed-form, model alpha as prior (weight {setting.split('-w')[-1]})"
    return f"refined: {setting}, {steps} steps"


def markdown(output, records, references):
    ids = [r["image_id"] for r in records]
    rows = cached_rows(output, ids)
    base = rows[("unrefined", 0)]["rows"]

    def wins(cand):
        return sum(c["SAD-T"] < b["SAD-T"] and c["Grad"] < b["Grad"] for c, b in zip(cand, base))

    head = (
        "| Method | "
        + " | ".join(COLUMNS)
        + " | s / photo | CPU s / photo | better on SAD-T and Grad |"
    )
    lines = [head, "|---|" + "---:|" * (len(COLUMNS) + 3)]
    order = sorted(rows, key=lambda k: (k[0] != "unrefined", k[0].startswith("cf-prior"), k))
    for key in order:
        r = rows[key]
        cells = [f"{np.mean([m[c] for m in r['rows']]):.2f}" for c in COLUMNS]
        cells[2] = f"{np.mean([m['MSE-T'] for m in r['rows']]):.4f}"
        count = "-" if key == ("unrefined", 0) else f"{wins(r['rows'])} / {len(ids)}"
        lines.append(f"| {describe(*key)} | " + " | ".join(cells)
                     + f" | {np.mean(r['seconds']):.1f} | {np.mean(r['cpu_seconds']):.1f} | {count} |")  # fmt: skip
    for method, ref in references.items():
        cells = [f"{np.mean([m[c] for m in ref['rows']]):.2f}" for c in COLUMNS]
        cells[2] = f"{np.mean([m['MSE-T'] for m in ref['rows']]):.4f}"
        lines.append(f"| *{ref['title']}* | " + " | ".join(cells)
                     + f" | {ref['seconds_per_image']:.1f} | n/a | {wins(ref['rows'])} / {len(ids)} |")  # fmt: skip
    loads = [v for r in rows.values() for v in r["load"]]
    lines.append("")
    lines.append(f"Load average (1 min) while the photos ran: mean {np.mean(loads):.1f}, "
                 f"range {min(loads):.1f}-{max(loads):.1f} (2 cores).")  # fmt: skip
    # Per photo: SAD-T / Grad of every refined setting at its largest step count.
    finals = {}
    for setting, steps in order:
        finals[setting] = max(steps, finals.get(setting, 0))
    lines += ["", "Per photo, SAD-T / Grad (each setting at its largest step count):", ""]
    names = list(finals)
    lines.append("| Photo | " + " | ".join(f"{describe(n, finals[n])}" for n in names)
                 + " | " + " | ".join(references) + " |")  # fmt: skip
    lines.append("|---|" + "---:|" * (len(names) + len(references)))
    for i, image_id in enumerate(ids):
        cells = [rows[(n, finals[n])]["rows"][i] for n in names]
        cells += [ref["rows"][i] for ref in references.values()]
        lines.append(
            f"| {image_id} | "
            + " | ".join(f"{m['SAD-T']:.2f} / {m['Grad']:.2f}" for m in cells)
            + " |"
        )
    return "\n".join(lines), rows


def report(output, records, label, figure_key=None):
    # The folder python -m benchmarks.closed_form OUTPUT [--real-dir DIR] fills ahead of time.
    references = closed_form_references(records, os.path.join(output, "closed_form", label))
    text, rows = markdown(output, records, references)
    with atomic_write(os.path.join(output, "results.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(text)
    refined = [k for k in rows if k[1] > 0]
    if not refined:
        return
    if figure_key is None:
        figure_key = min(refined, key=lambda k: np.mean([m["SAD-T"] for m in rows[k]["rows"]]))
    setting, steps = figure_key
    ids = [r["image_id"] for r in records]

    def pngs(name, n):
        return {i: os.path.join(output, name, f"step{n}", i + ".png") for i in ids}

    predictions = [
        trimap_pngs(records, os.path.join(output, "trimaps")),
        pngs("unrefined", 0),
        pngs(setting, steps),
        references["closed_form"]["predictions"],
    ]
    titles = ["trimap", "unrefined", f"refined ({steps} steps)", "closed-form"]
    path = policy_figure(records, predictions, titles, os.path.join(output, "figure.png"))
    print(f"figure: {path} (refined column: {setting}, {steps} steps)")


def get_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", default="configs/demo_ddc_trimap.py")
    parser.add_argument("--checkpoint", default="output/demo_ddc_trimap/model_final.pth")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--real-dir", help="DIR with image/, trimap/, alpha/ (same file names)")
    data.add_argument("--dataset", default="demo_val", help="a registered dataset instead")
    parser.add_argument("--limit", type=int, help="only the first N photos (by id)")
    parser.add_argument("--output", default="output/refinement")
    parser.add_argument("--region", choices=REGIONS, default="crops")
    parser.add_argument("--lr", type=float, default=RefinementPolicy.lr)
    parser.add_argument("--losses", help="NAME=W[,NAME=W] (default: the config's criterion)")
    parser.add_argument("--crop-size", type=int, default=RefinementPolicy.crop_size)
    parser.add_argument("--batch-size", type=int, default=RefinementPolicy.batch_size)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--cf-prior", type=float, metavar="W", help="run closed-form + prior")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report")
    parser.add_argument("--figure-setting", help="setting folder of the figure's refined column")
    parser.add_argument("--figure-steps", type=int)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    records = load_records(args)
    print(f"{len(records)} photos; load average {os.getloadavg()}", flush=True)
    if not args.report_only:
        cfg = load_config(args.config_file)
        predictor = MattingPredictor(cfg, args.checkpoint, device="cpu")
        unrefined = os.path.join(args.output, "unrefined")
        run_unrefined(predictor, records, unrefined)
        if args.cf_prior is not None:
            folder = os.path.join(args.output, f"cf-prior-w{args.cf_prior:g}")
            run_cf_prior(records, args.cf_prior, unrefined, folder)
        else:
            policy = RefinementPolicy(
                steps=max(args.steps),
                lr=args.lr,
                losses=None if args.losses is None else parse_losses(args.losses),
                region=args.region,
                crop_size=args.crop_size,
                batch_size=args.batch_size,
                seed=args.seed,
            )
            folder = os.path.join(args.output, setting_name(policy))
            run_setting(predictor, records, policy, set(args.steps), folder)
    key = None if args.figure_setting is None else (args.figure_setting, args.figure_steps)
    report(args.output, records, "real" if args.real_dir else args.dataset, key)


if __name__ == "__main__":
    main()
