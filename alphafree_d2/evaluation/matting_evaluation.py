"""detectron2 evaluator for alpha mattes (used by do_test, periodic evaluation and --eval-only)."""

import itertools
import logging
import math
import os
import re
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..data.io import get_max_pixels, read_alpha, read_image, read_trimap
from ..utils.file_io import write_csv, write_png
from .metrics import METRIC_KEYS, PROTOCOLS, matting_metrics
from .visualization import log_matting_visuals, make_matting_grid, path_inside

__all__ = ["MattingEvaluator", "as_8bit_codes"]

_QUANTIZE = (None, "round", "floor")
_LOSSY_EXTENSIONS = (".jpg", ".jpeg")
_MAX_LISTED = 10


class MattingEvaluator(DatasetEvaluator):
    """
    Evaluate predicted alpha mattes against the dataset's ground truth with
    :func:`alphafree_d2.evaluation.matting_metrics`.

    For each (input, output) pair of every batch:

    1. the record is found by ``image_id`` in ``DatasetCatalog.get(dataset_name)``; its
       ``alpha_file_name`` and ``trimap_file_name`` are read at their original resolution
       (``alphafree_d2.data.io``; the trimap is snapped to {0, 128, 255}). An 8-bit ground truth
       is passed to the metrics as its 8-bit codes, which is what the benchmark scripts read;
    2. ``output["alpha"]`` ((1, h, w) or (h, w), values in [0, 1]) is resized to the ground
       truth's size only if the sizes differ, bilinearly with ``align_corners=False`` (as
       detectron2's ``sem_seg_postprocess``), then clamped to [0, 1]; this is logged once per
       round;
    3. the metrics of ``protocol`` are computed and kept per image.

    :meth:`evaluate` gathers the per-image metrics on the main process (``comm.gather``), sorts
    them by ``image_id`` (so the result does not depend on how images were sharded or batched)
    and returns ``{"matting": {metric: mean over images}}`` there, None on other processes.
    A metric that is nan for an image (``MSE-T`` / unknown-region ``MSE`` when the trimap has no
    unknown pixel) is left out of that metric's mean, with a warning. With the
    ``"unknown_region"`` protocol an image whose trimap has no unknown pixel has nothing to
    measure: all its metrics are nan (left out of the means, not counted as a perfect 0) and a
    warning names it. Ground-truth alphas stored as JPEG are used, with a warning naming them
    (lossy compression shifts every metric).

    Files, only when ``output_dir`` is given (nothing is written otherwise, and nothing outside
    it; files from an earlier round with the same names are replaced):

    - ``<output_dir>/<dataset>_<protocol>_per_image.csv``: image_id and every metric;
    - ``<output_dir>/predictions/<dataset>/<image_id>.png`` if ``save_predictions``: 8-bit
      predictions (rounded, or as quantised by ``quantize``), written by the process that
      evaluated the image (``output_dir`` must be shared by all processes, as detectron2's
      own evaluators assume);
    - ``<output_dir>/vis/<dataset>/<image_id>.png``: image | ground truth | prediction | error
      for the first ``num_visualize`` images of the dataset by ``image_id``. The same grids go
      to TensorBoard when a detectron2 EventStorage is active (training).
    """

    def __init__(
        self,
        dataset_name,
        protocol="whole_image",
        output_dir=None,
        save_predictions=False,
        num_visualize=4,
        distributed=True,
        *,
        quantize=None,
        vis_max_side=256,
        max_pixels=None,
    ):
        """
        Args:
            dataset_name (str or list[str]): registered dataset(s) whose records carry
                ``alpha_file_name`` and ``trimap_file_name``.
            protocol (str): "whole_image" (AM-2K / P3M benchmark; the paper's tables) or
                "unknown_region" (Composition-1k style, the paper repository's evaluation.py).
            output_dir (str or None): folder for the CSV, predictions and visualisations.
            save_predictions (bool): also write the predicted alphas as 8-bit PNGs.
            num_visualize (int): how many images (first by image_id) get a visual report.
            distributed (bool): gather results from all processes to the main one. If False,
                each process evaluates only what it saw.
            quantize (None, "round" or "floor"): evaluate the prediction as an 8-bit PNG would
                hold it. None uses the float prediction (as GFM / P3M ``core/test.py``);
                "round" evaluates exactly the PNGs ``save_predictions`` writes; "floor" matches
                the paper repository's inference.py (torchvision ``to_pil_image`` truncates),
                whose PNGs its evaluation.py reads.
            vis_max_side (int): longer side of each visualisation tile, in pixels.
            max_pixels (int or None): the pixel cap of the files read (None: the process's cap
                when the evaluator is made, :func:`alphafree_d2.data.io.get_max_pixels`; configs
                set it from ``dataloader.max_pixels``). A larger file is refused before decoding.
        """
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"MattingEvaluator: protocol must be one of {PROTOCOLS}, got {protocol!r}"
            )
        if quantize not in _QUANTIZE:
            raise ValueError(
                f"MattingEvaluator: quantize must be one of {_QUANTIZE}, got {quantize!r}"
            )
        names = (dataset_name,) if isinstance(dataset_name, str) else tuple(dataset_name)
        if not names:
            raise ValueError("MattingEvaluator: dataset_name is empty")
        self._logger = logging.getLogger(__name__)
        self._dataset_label = "+".join(names)
        self._file_label = re.sub(r"[^A-Za-z0-9._+-]", "_", self._dataset_label)
        self._protocol = protocol
        self._output_dir = output_dir
        self._save_predictions = save_predictions
        self._distributed = distributed
        self._quantize = quantize
        self._vis_max_side = vis_max_side
        self._max_pixels = get_max_pixels() if max_pixels is None else max_pixels
        self._records = self._load_records(names)
        self._vis_ids = set(sorted(self._records)[: max(0, int(num_visualize))])
        self._cpu_device = torch.device("cpu")
        self.reset()

    def _load_records(self, names):
        records = {}
        for name in names:
            for record in DatasetCatalog.get(name):
                image_id = _image_id(record)
                for key in ("alpha_file_name", "trimap_file_name"):
                    if not record.get(key):
                        raise ValueError(
                            f"MattingEvaluator: dataset {name!r}, image {image_id!r} has no "
                            f"{key!r}; evaluation needs ground-truth alpha and trimap files"
                        )
                if image_id in records:
                    raise ValueError(
                        f"MattingEvaluator: image_id {image_id!r} appears twice in "
                        f"{self._dataset_label!r}; image ids must be unique"
                    )
                records[image_id] = record
        lossy = sorted(
            r["alpha_file_name"]
            for r in records.values()
            if os.path.splitext(r["alpha_file_name"])[1].lower() in _LOSSY_EXTENSIONS
        )
        if lossy:
            shown = ", ".join(lossy[:_MAX_LISTED]) + (
                f", ... ({len(lossy) - _MAX_LISTED} more)" if len(lossy) > _MAX_LISTED else ""
            )
            self._logger.warning(
                f"MattingEvaluator: {len(lossy)} ground-truth alphas of {self._dataset_label!r} "
                f"are JPEG files: {shown}. JPEG compression changes the alpha values (most at "
                "edges), so the metrics are shifted and not comparable with published ones; "
                "use the dataset's lossless (PNG) mattes."
            )
        return records

    def reset(self):
        self._per_image = []  # dicts: image_id + metrics
        self._visuals = {}  # image_id -> uint8 RGB grid
        self._resize_logged = False

    def process(self, inputs, outputs):
        """
        Args:
            inputs (list[dict]): mapper outputs; each has "image_id" (or "file_name").
            outputs (list[dict]): model outputs; each has "alpha": float tensor (1, h, w) or
                (h, w) in [0, 1].
        """
        for input, output in zip(inputs, outputs):
            image_id = _image_id(input)
            record = self._records.get(image_id)
            if record is None:
                raise KeyError(
                    f"MattingEvaluator: image {image_id!r} is not in dataset "
                    f"{self._dataset_label!r}"
                )
            cap = self._max_pixels
            gt = read_alpha(record["alpha_file_name"], cap)
            encoding = record.get("trimap_encoding", "gray")
            trimap = read_trimap(record["trimap_file_name"], encoding, cap)
            if gt.shape != trimap.shape:
                raise ValueError(
                    f"{record['alpha_file_name']} is {gt.shape[1]}x{gt.shape[0]} but "
                    f"{record['trimap_file_name']} is {trimap.shape[1]}x{trimap.shape[0]}"
                )
            pred = self._prediction(output, gt.shape, image_id)
            try:
                metrics = matting_metrics(pred, as_8bit_codes(gt), trimap, protocol=self._protocol)
            except ValueError as e:
                raise ValueError(f"MattingEvaluator: image {image_id!r}: {e}") from e
            if self._protocol == "unknown_region" and not (trimap == 128).any():
                self._logger.warning(
                    f"MattingEvaluator: image {image_id!r}: its trimap "
                    f"{record['trimap_file_name']} has no unknown (128) pixel, so the "
                    "unknown_region protocol has nothing to measure; its metrics are nan and left "
                    "out of the means (check that the trimap is the dataset's evaluation trimap)"
                )
                metrics = {key: math.nan for key in metrics}
            self._per_image.append({"image_id": image_id, **metrics})

            if self._save_predictions and self._output_dir is not None:
                codes = pred if pred.dtype == np.uint8 else np.rint(pred * 255).astype(np.uint8)
                folder = os.path.join(self._output_dir, "predictions", self._file_label)
                write_png(path_inside(folder, f"{image_id}.png"), codes)
            if image_id in self._vis_ids:
                image = read_image(record["file_name"], "RGB", max_pixels=cap)
                self._visuals[image_id] = make_matting_grid(image, gt, pred, self._vis_max_side)

    def _prediction(self, output, size, image_id):
        """output["alpha"] -> float32 (H, W) numpy at ``size``, or uint8 codes if quantising."""
        alpha = output["alpha"].detach().to(self._cpu_device, torch.float32)
        if alpha.dim() == 3 and alpha.shape[0] == 1:
            alpha = alpha[0]
        if alpha.dim() != 2:
            raise ValueError(
                f"MattingEvaluator: image {image_id!r}: output['alpha'] must be (1, H, W) or "
                f"(H, W), got {tuple(output['alpha'].shape)}"
            )
        if tuple(alpha.shape) != tuple(size):
            if not self._resize_logged:
                self._logger.warning(
                    f"MattingEvaluator: prediction for {image_id!r} is {alpha.shape[1]}x"
                    f"{alpha.shape[0]} but its ground truth is {size[1]}x{size[0]}: predictions "
                    "are resized bilinearly (align_corners=False) to the ground truth's size "
                    "(logged once)."
                )
                self._resize_logged = True
            alpha = F.interpolate(
                alpha[None, None], size=tuple(size), mode="bilinear", align_corners=False
            )[0, 0].clamp_(0.0, 1.0)
        alpha = alpha.numpy()
        if not np.isfinite(alpha).all() or alpha.min() < 0 or alpha.max() > 1:
            raise ValueError(
                f"MattingEvaluator: image {image_id!r}: output['alpha'] must be finite and in "
                f"[0, 1], found values in [{alpha.min():g}, {alpha.max():g}]"
            )
        if self._quantize == "round":
            return np.rint(alpha * 255).astype(np.uint8)
        if self._quantize == "floor":
            return np.floor(alpha * 255).astype(np.uint8)
        return alpha

    def evaluate(self):
        """
        Returns:
            {"matting": OrderedDict(metric -> mean over images)} on the main process (empty
            dict if no image was processed), None on the others when distributed.
        """
        if self._distributed:
            comm.synchronize()
            per_image = list(itertools.chain(*comm.gather(self._per_image, dst=0)))
            gathered_visuals = comm.gather(self._visuals, dst=0)
            if not comm.is_main_process():
                return None
            visuals = {}
            for part in gathered_visuals:
                visuals.update(part)
        else:
            per_image, visuals = list(self._per_image), dict(self._visuals)

        if not per_image:
            self._logger.warning(
                f"MattingEvaluator: no prediction was processed for {self._dataset_label!r}"
            )
            return {}
        by_id = {}
        for row in per_image:
            if row["image_id"] in by_id:
                self._logger.warning(
                    f"MattingEvaluator: image {row['image_id']!r} was evaluated twice; keeping one"
                )
            by_id.setdefault(row["image_id"], row)
        rows = [by_id[k] for k in sorted(by_id)]

        keys = METRIC_KEYS[self._protocol]
        means = OrderedDict()
        for key in keys:
            values = np.array([row[key] for row in rows], dtype=np.float64)
            defined = ~np.isnan(values)
            if not defined.all():
                self._logger.warning(
                    f"MattingEvaluator: {key} is undefined (no unknown pixel in the trimap) for "
                    f"{int((~defined).sum())} of {len(rows)} images of {self._dataset_label!r} "
                    f"({', '.join(row['image_id'] for row, ok in zip(rows, defined) if not ok)[:400]}); "
                    "they are left out of its mean"
                )
            means[key] = float(values[defined].mean()) if defined.any() else math.nan
        self._logger.info(
            f"Matting evaluation of {self._dataset_label!r} ({self._protocol}, {len(rows)} "
            "images): " + ", ".join(f"{k}={v:.4f}" for k, v in means.items())
        )

        if self._output_dir is not None:
            self._write_csv(rows, keys)
        vis_dir = None
        if self._output_dir is not None:
            vis_dir = os.path.join(self._output_dir, "vis", self._file_label)
        log_matting_visuals(visuals, vis_dir, tag=f"matting/{self._dataset_label}")
        return {"matting": means}

    def _write_csv(self, rows, keys):
        path = path_inside(self._output_dir, f"{self._file_label}_{self._protocol}_per_image.csv")
        lines = ([row["image_id"], *(repr(row[k]) for k in keys)] for row in rows)
        write_csv(path, ["image_id", *keys], lines)
        self._logger.info(f"MattingEvaluator: per-image metrics written to {path}")


def _image_id(record):
    if record.get("image_id") is not None:
        return str(record["image_id"])
    return os.path.splitext(os.path.basename(record["file_name"]))[0]


def as_8bit_codes(alpha):
    """
    ``read_alpha``'s float32 alpha -> the uint8 codes it was decoded from, when it was an 8-bit
    file (then it equals ``codes.astype(float32) / 255.0`` exactly); otherwise the floats.

    The benchmark scripts divide 8-bit codes by 255 themselves (in float64 for the whole-image
    protocol); handing them the codes reproduces that exactly. Used by the evaluator and by
    ``benchmarks/`` wherever a ground truth read with ``read_alpha`` meets :func:`matting_metrics`.
    """
    codes = np.rint(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.array_equal(codes.astype(np.float32) / 255.0, alpha):
        return codes
    return alpha
