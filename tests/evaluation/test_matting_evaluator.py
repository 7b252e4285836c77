"""MattingEvaluator on a small fake dataset: batching, 1 vs 2 processes, files, TensorBoard."""

import csv
import logging
import math
import os
import pickle
import uuid

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import print_csv_format
from detectron2.utils import comm
from detectron2.utils.events import EventStorage

from alphafree_d2.engine import launch
from alphafree_d2.evaluation import METRIC_KEYS, MattingEvaluator, matting_metrics
from alphafree_d2.evaluation.visualization import make_matting_grid, path_inside

# (height, width) of each fake image; image "img_3" gets a half-size prediction (resize path),
# "img_5" a trimap without unknown pixels (MSE-T undefined).
SIZES = [(40, 56), (32, 32), (48, 36), (40, 56), (24, 30), (36, 44), (28, 28)]
RESIZED_ID, NO_UNKNOWN_ID = "img_3", "img_5"


def make_dataset(root):
    """Write images, alphas, trimaps and predictions (.npy); return (records, predictions)."""
    rng = np.random.default_rng(0)
    records, predictions = [], {}
    for k in range(len(SIZES) - 1, -1, -1):  # records deliberately not sorted by image_id
        height, width = SIZES[k]
        image_id = f"img_{k}"
        yy, xx = np.mgrid[0:height, 0:width]
        dist = np.hypot((yy - height / 2) / (height / 3), (xx - width / 2) / (width / 3))
        alpha = np.round(np.clip((1.1 - dist) * 4, 0, 1) * 255).astype(np.uint8)
        if image_id == NO_UNKNOWN_ID:
            trimap = np.where(alpha > 127, 255, 0).astype(np.uint8)
        else:
            trimap = np.where(alpha == 255, 255, np.where(alpha > 0, 128, 0)).astype(np.uint8)
            trimap = cv2.dilate(trimap, np.ones((3, 3), np.uint8))
            trimap[(trimap == 255) & (alpha < 255)] = 128
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        pred = np.clip(alpha / 255.0 + rng.normal(0, 0.1, alpha.shape), 0, 1).astype(np.float32)
        if image_id == RESIZED_ID:
            pred = cv2.resize(pred, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        paths = {}
        for kind, array in (("image", image), ("alpha", alpha), ("trimap", trimap)):
            os.makedirs(os.path.join(root, kind), exist_ok=True)
            paths[kind] = os.path.join(root, kind, f"{image_id}.png")
            cv2.imwrite(paths[kind], array)
        np.save(os.path.join(root, f"{image_id}_pred.npy"), pred)
        predictions[image_id] = os.path.join(root, f"{image_id}_pred.npy")
        records.append(
            dict(
                file_name=paths["image"],
                height=height,
                width=width,
                image_id=image_id,
                trimap_file_name=paths["trimap"],
                alpha_file_name=paths["alpha"],
            )
        )
    return records, predictions


def register(records, name=None):
    name = name or f"matting_eval_test_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, lambda: [dict(r) for r in records])
    MetadataCatalog.get(name).set(evaluator_type="matting")
    return name


def run_evaluation(evaluator, records, predictions, batch_size, rank=0, world_size=1):
    """Feed this process's shard (records[rank::world_size]) in batches, as inference does."""
    evaluator.reset()
    shard = records[rank::world_size]
    for start in range(0, len(shard), batch_size):
        batch = shard[start : start + batch_size]
        inputs = [dict(r) for r in batch]
        outputs = [
            {"alpha": torch.from_numpy(np.load(predictions[r["image_id"]]))[None]} for r in batch
        ]
        evaluator.process(inputs, outputs)
    return evaluator.evaluate()


def _distributed_worker(name, records, predictions, output_dir, result_file):
    """Runs in each of the 2 processes started by detectron2's launch (GLOO on CPU)."""
    register(records, name)  # catalogs are per process
    evaluator = MattingEvaluator(
        name, output_dir=output_dir, save_predictions=True, num_visualize=3
    )
    results = run_evaluation(
        evaluator,
        records,
        predictions,
        batch_size=2,
        rank=comm.get_rank(),
        world_size=comm.get_world_size(),
    )
    with open(f"{result_file}.rank{comm.get_rank()}", "wb") as f:
        pickle.dump(results, f)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("matting_eval_data"))
    records, predictions = make_dataset(root)
    return records, predictions, register(records)


def assert_same_results(a, b):
    assert list(a) == list(b) == ["matting"]
    assert list(a["matting"]) == list(b["matting"])
    for key, value in a["matting"].items():
        assert value == b["matting"][key] or (math.isnan(value) and math.isnan(b["matting"][key]))


def expected_results(records, predictions, protocol):
    """Mean over images of matting_metrics, computed directly (nan left out of a mean; with the
    unknown-region protocol, images without unknown pixels are left out of every mean)."""
    rows = []
    for record in records:
        gt = cv2.imread(record["alpha_file_name"], cv2.IMREAD_UNCHANGED)
        trimap = cv2.imread(record["trimap_file_name"], cv2.IMREAD_UNCHANGED)
        if protocol == "unknown_region" and not (trimap == 128).any():
            continue
        pred = torch.from_numpy(np.load(predictions[record["image_id"]]))
        if tuple(pred.shape) != gt.shape:
            pred = F.interpolate(
                pred[None, None], size=gt.shape, mode="bilinear", align_corners=False
            )[0, 0].clamp(0, 1)
        rows.append(matting_metrics(pred.numpy(), gt, trimap, protocol))
    return {key: np.nanmean([row[key] for row in rows]) for key in METRIC_KEYS[protocol]}


@pytest.mark.parametrize("protocol", ["whole_image", "unknown_region"])
def test_batch_sizes_agree_and_match_direct_metrics(dataset, protocol, caplog):
    records, predictions, name = dataset
    evaluator = MattingEvaluator(name, protocol=protocol, num_visualize=0)
    with caplog.at_level(logging.WARNING, logger="alphafree_d2.evaluation.matting_evaluation"):
        one = run_evaluation(evaluator, records, predictions, batch_size=1)
        four = run_evaluation(evaluator, records, predictions, batch_size=4)
    assert_same_results(one, four)
    expected = expected_results(records, predictions, protocol)
    assert list(one["matting"]) == list(METRIC_KEYS[protocol])
    for key, value in one["matting"].items():
        assert value == pytest.approx(expected[key], rel=1e-12)
    messages = [r.getMessage() for r in caplog.records]
    # The resize is logged once per round (2 rounds here); the undefined MSE is reported.
    assert sum("resized bilinearly" in m for m in messages) == 2
    assert any("1 of 7 images" in m and NO_UNKNOWN_ID in m for m in messages)
    if protocol == "unknown_region":  # not a perfect SAD of 0: named and left out
        assert any(NO_UNKNOWN_ID in m and "no unknown (128) pixel" in m for m in messages)


def test_one_and_two_processes_agree(dataset, tmp_path):
    records, predictions, name = dataset
    single_dir, multi_dir = str(tmp_path / "single"), str(tmp_path / "multi")
    single = run_evaluation(
        MattingEvaluator(name, output_dir=single_dir, save_predictions=True, num_visualize=3),
        records,
        predictions,
        batch_size=3,
    )

    result_file = str(tmp_path / "results")
    multi_name = f"matting_eval_test_{uuid.uuid4().hex[:8]}"
    launch(
        _distributed_worker,
        2,
        dist_url="auto",
        args=(multi_name, records, predictions, multi_dir, result_file),
    )
    with open(result_file + ".rank0", "rb") as f:
        multi = pickle.load(f)
    with open(result_file + ".rank1", "rb") as f:
        other = pickle.load(f)
    assert other is None  # results only on the main process
    assert_same_results(single, multi)
    # Same per-image CSV (sorted by image_id) whatever the sharding.
    with open(os.path.join(single_dir, f"{name}_whole_image_per_image.csv")) as f:
        single_csv = f.read()
    with open(os.path.join(multi_dir, f"{multi_name}_whole_image_per_image.csv")) as f:
        multi_csv = f.read()
    assert single_csv == multi_csv
    # Every process wrote the predictions it evaluated; the main one wrote the 3 visuals.
    assert sorted(os.listdir(os.path.join(multi_dir, "predictions", multi_name))) == sorted(
        f"{r['image_id']}.png" for r in records
    )
    assert sorted(os.listdir(os.path.join(multi_dir, "vis", multi_name))) == [
        "img_0.png",
        "img_1.png",
        "img_2.png",
    ]


def test_files_written_to_output_dir(dataset, tmp_path):
    records, predictions, name = dataset
    out = str(tmp_path / "out")
    results = run_evaluation(
        MattingEvaluator(name, output_dir=out, save_predictions=True, num_visualize=2),
        records,
        predictions,
        batch_size=2,
    )
    assert sorted(os.listdir(out)) == sorted(
        [f"{name}_whole_image_per_image.csv", "predictions", "vis"]
    )

    with open(os.path.join(out, f"{name}_whole_image_per_image.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image_id", *METRIC_KEYS["whole_image"]]
    assert [r[0] for r in rows[1:]] == sorted(r["image_id"] for r in records)
    sad = [float(r[1]) for r in rows[1:]]
    assert np.mean(sad) == pytest.approx(results["matting"]["SAD"], rel=1e-12)
    no_unknown = next(r for r in rows if r[0] == NO_UNKNOWN_ID)
    assert no_unknown[-1] == "nan"  # MSE-T

    for record in records:
        saved = cv2.imread(
            os.path.join(out, "predictions", name, f"{record['image_id']}.png"),
            cv2.IMREAD_UNCHANGED,
        )
        assert saved.dtype == np.uint8 and saved.shape == (record["height"], record["width"])
        if record["image_id"] != RESIZED_ID:
            pred = np.load(predictions[record["image_id"]])
            np.testing.assert_array_equal(saved, np.rint(pred * 255).astype(np.uint8))
    assert sorted(os.listdir(os.path.join(out, "vis", name))) == ["img_0.png", "img_1.png"]
    grid = cv2.imread(os.path.join(out, "vis", name, "img_0.png"))
    assert grid.shape[0] == SIZES[0][0] and grid.shape[1] == 4 * SIZES[0][1] + 3 * 4


def test_no_output_dir_writes_nothing(dataset, tmp_path, monkeypatch):
    records, predictions, name = dataset
    monkeypatch.chdir(tmp_path)
    run_evaluation(
        MattingEvaluator(name, output_dir=None, save_predictions=True),
        records,
        predictions,
        batch_size=2,
    )
    assert os.listdir(tmp_path) == []


def test_print_csv_format(dataset, caplog):
    records, predictions, name = dataset
    results = run_evaluation(MattingEvaluator(name, num_visualize=0), records, predictions, 4)
    with caplog.at_level(logging.INFO, logger="detectron2.evaluation.testing"):
        print_csv_format(results)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "copypaste: Task: matting" in text
    # detectron2 leaves keys with "-" (SAD-T, MSE-T) out of the copypaste line by design.
    assert "copypaste: SAD,MAD,MSE,Grad,Conn" in text


def test_visuals_go_to_event_storage(dataset):
    records, predictions, name = dataset
    evaluator = MattingEvaluator(name, num_visualize=2, vis_max_side=16)
    with EventStorage(0) as storage:
        run_evaluation(evaluator, records, predictions, batch_size=3)
        names = [n for n, _, _ in storage._vis_data]
        images = [img for _, img, _ in storage._vis_data]
    assert names == [f"matting/{name}/img_0", f"matting/{name}/img_1"]
    for image in images:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[0] == 3
        assert image.shape[1] <= 16


@pytest.mark.parametrize("quantize", ["round", "floor"])
def test_quantized_evaluation_matches_saved_pngs(dataset, tmp_path, quantize):
    records, predictions, name = dataset
    out = str(tmp_path / "q")
    results = run_evaluation(
        MattingEvaluator(
            name,
            protocol="unknown_region",
            output_dir=out,
            save_predictions=True,
            num_visualize=0,
            quantize=quantize,
        ),
        records,
        predictions,
        batch_size=2,
    )
    rows = []
    for record in records:
        saved = cv2.imread(
            os.path.join(out, "predictions", name, f"{record['image_id']}.png"),
            cv2.IMREAD_UNCHANGED,
        )
        gt = cv2.imread(record["alpha_file_name"], cv2.IMREAD_UNCHANGED)
        trimap = cv2.imread(record["trimap_file_name"], cv2.IMREAD_UNCHANGED)
        if (trimap == 128).any():  # images without unknown pixels are left out (nan)
            rows.append(matting_metrics(saved, gt, trimap, "unknown_region"))
        if record["image_id"] != RESIZED_ID:
            to_codes = np.rint if quantize == "round" else np.floor
            pred = np.load(predictions[record["image_id"]])
            np.testing.assert_array_equal(saved, to_codes(pred * 255).astype(np.uint8))
    for key, value in results["matting"].items():
        assert value == pytest.approx(np.nanmean([r[key] for r in rows]), rel=1e-12)


def test_configuration_errors(dataset, tmp_path):
    records, _, name = dataset
    with pytest.raises(ValueError, match="protocol"):
        MattingEvaluator(name, protocol="composition")
    with pytest.raises(ValueError, match="quantize"):
        MattingEvaluator(name, quantize="ceil")
    no_alpha = register([{k: v for k, v in records[0].items() if k != "alpha_file_name"}])
    with pytest.raises(ValueError, match="alpha_file_name"):
        MattingEvaluator(no_alpha)
    evaluator = MattingEvaluator(name)
    with pytest.raises(KeyError, match="not in dataset"):
        evaluator.process(
            [{"image_id": "unknown", "file_name": "x.png"}], [{"alpha": torch.zeros(1, 4, 4)}]
        )
    with pytest.raises(ValueError, match="img_0.*\\[0, 1\\]"):
        evaluator.process([dict(records[-1])], [{"alpha": torch.full((1, 40, 56), 2.0)}])
    with pytest.raises(ValueError, match="outside the output folder"):
        path_inside(str(tmp_path), "../escape.png")


def test_evaluate_without_inputs_returns_empty(dataset):
    _, _, name = dataset
    evaluator = MattingEvaluator(name)
    evaluator.reset()
    assert evaluator.evaluate() == {}


def test_make_matting_grid():
    image = np.zeros((300, 600, 3), np.uint8)
    gt = np.zeros((300, 600), np.float32)
    pred = np.ones((300, 600), np.uint8) * 255
    grid = make_matting_grid(image, gt, pred, max_side=256)
    assert grid.dtype == np.uint8 and grid.shape == (128, 4 * 256 + 3 * 4, 3)
    # The error tile of a maximal error is the colour map's top colour, not black.
    assert grid[64, 3 * 260 + 128].max() > 200


def test_jpeg_ground_truth_alpha_is_named_in_a_warning(dataset, tmp_path, caplog):
    records, _, _ = dataset
    alpha = cv2.imread(records[0]["alpha_file_name"], cv2.IMREAD_UNCHANGED)
    jpeg = str(tmp_path / "gt.jpg")
    cv2.imwrite(jpeg, alpha)
    name = register([dict(records[0], alpha_file_name=jpeg), *records[1:]])
    with caplog.at_level(logging.WARNING, logger="alphafree_d2.evaluation.matting_evaluation"):
        MattingEvaluator(name, num_visualize=0)
    assert f"1 ground-truth alphas of '{name}' are JPEG files: {jpeg}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="alphafree_d2.evaluation.matting_evaluation"):
        MattingEvaluator(register(records), num_visualize=0)  # PNG ground truth: no warning
    assert "JPEG" not in caplog.text
