"""The procedural demo dataset, and detectron2's loaders running the mapper on it."""

import json
import multiprocessing
import os

import numpy as np
import pytest
import torch

from detectron2.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)

from alphafree_d2.data import (
    MattingDatasetMapper,
    build_matting_augmentations,
    read_alpha,
    read_image,
    read_trimap,
    register_all_matting_datasets,
)
from alphafree_d2.data.datasets import demo

PREFIX = "demotest_"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    """The full demo generated once under a fresh root, registered as demotest_demo_{train,val}."""
    root = str(tmp_path_factory.mktemp("demo_root"))
    register_all_matting_datasets(root, prefix=PREFIX)
    yield root
    for name in DatasetCatalog.list():
        if name.startswith(PREFIX):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def _files(folder):
    return {
        os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
        for d, _, files in os.walk(folder)
        for f in files
    }


def test_generation_is_deterministic(tmp_path):
    demo.generate_demo_dataset(str(tmp_path / "a"), num_train=3, num_val=2, seed=5)
    demo.generate_demo_dataset(str(tmp_path / "b"), num_train=3, num_val=2, seed=5)
    demo.generate_demo_dataset(str(tmp_path / "c"), num_train=3, num_val=2, seed=6)
    a, b, c = (_files(str(tmp_path / x)) for x in "abc")
    assert len(a) == 3 * 5 + 1 and a == b
    assert a["train/image/demo_train_000.png"] != c["train/image/demo_train_000.png"]
    assert a["train/image/demo_train_000.png"] != a["train/image/demo_train_001.png"]


def test_registered_demo_structure(demo_root):
    train, val = DatasetCatalog.get(PREFIX + "demo_train"), DatasetCatalog.get(PREFIX + "demo_val")
    assert len(train) == demo.DEMO_NUM_TRAIN == 64 and len(val) == demo.DEMO_NUM_VAL == 12
    assert train[0]["image_id"] == "demo_train_000" and val[-1]["image_id"] == "demo_val_011"
    folder = os.path.join(demo_root, "alphafree_demo")
    with open(os.path.join(folder, "manifest.json")) as f:
        assert json.load(f)["version"] == demo.DEMO_VERSION
    assert not [e for e in os.listdir(demo_root) if ".tmp-" in e or ".old-" in e]
    meta = MetadataCatalog.get(PREFIX + "demo_val")
    assert meta.evaluator_type == "matting" and meta.alpha_root == os.path.join(
        folder, "val", "alpha"
    )

    soft_fractions = []
    for record in train[:6] + val[:3]:
        assert 256 <= record["height"] <= 384 and 256 <= record["width"] <= 384
        image = read_image(record["file_name"])
        alpha = read_alpha(record["alpha_file_name"])
        trimap = read_trimap(record["trimap_file_name"])
        assert image.shape[:2] == alpha.shape == trimap.shape
        assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
        assert np.all(trimap[(alpha > 0) & (alpha < 1)] == 128)  # hair, fur and veil are unknown
        assert 0.05 < (alpha == 1).mean() < 0.5 and (alpha == 0).mean() > 0.3
        soft_fractions.append(((alpha > 0) & (alpha < 1)).mean())
        levels = np.unique(np.round(alpha[(alpha > 0) & (alpha < 1)] * 255))
        assert len(levels) > 100  # fine partial coverage, not a few steps
    assert min(soft_fractions) > 0.01


def test_demo_trimaps(demo_root):
    """Training trimaps have seeded, varied bands; evaluation trimaps one fixed kernel."""
    train = DatasetCatalog.get(PREFIX + "demo_train")
    widths = []
    for record in train[:12]:
        trimap, alpha = (
            read_trimap(record["trimap_file_name"]),
            read_alpha(record["alpha_file_name"]),
        )
        widths.append((trimap == 128).sum() / max(1, ((alpha > 0) & (alpha < 1)).sum()))
    assert max(widths) > 1.5 * min(widths)


def test_ensure_is_atomic_and_survives_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_NUM_TRAIN", 2)
    monkeypatch.setattr(demo, "DEMO_NUM_VAL", 1)
    original = demo.generate_demo_dataset

    def crash(output_dir, **kwargs):
        original(output_dir, **{**kwargs, "num_val": 0})  # half-written...
        raise KeyboardInterrupt  # ...then killed

    monkeypatch.setattr(demo, "generate_demo_dataset", crash)
    with pytest.raises(KeyboardInterrupt):
        demo.ensure_demo_dataset(str(tmp_path))
    assert not os.path.exists(tmp_path / "alphafree_demo")  # nothing half-written is trusted
    os.makedirs(tmp_path / ".alphafree_demo.tmp-killed" / "train")  # what a SIGKILL leaves behind
    monkeypatch.setattr(demo, "generate_demo_dataset", original)
    path = demo.ensure_demo_dataset(str(tmp_path))
    assert sorted(os.listdir(os.path.join(path, "val", "image"))) == ["demo_val_000.png"]
    assert not [e for e in os.listdir(tmp_path) if ".tmp-" in e]

    # A copy made by another generator version is replaced.
    manifest = os.path.join(path, "manifest.json")
    with open(manifest) as f:
        stale = json.load(f)
    stale["version"] = -1
    with open(manifest, "w") as f:
        json.dump(stale, f)
    demo.ensure_demo_dataset(str(tmp_path))
    with open(manifest) as f:
        assert json.load(f)["version"] == demo.DEMO_VERSION


def _ensure_in_child(root, queue):
    demo.DEMO_NUM_TRAIN, demo.DEMO_NUM_VAL = 3, 1
    queue.put(demo.ensure_demo_dataset(root))


def test_concurrent_processes_generate_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_ensure_in_child, args=(str(tmp_path), queue)) for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert queue.get() == queue.get() == str(tmp_path / "alphafree_demo")
    assert sorted(os.listdir(tmp_path / "alphafree_demo" / "train" / "image")) == [
        f"demo_train_00{i}.png" for i in range(3)
    ]
    assert not [e for e in os.listdir(tmp_path) if ".tmp-" in e or ".old-" in e]


def test_detectron2_loaders_run_the_mapper_on_the_demo(demo_root):
    torch.manual_seed(0)
    train_loader = build_detection_train_loader(
        dataset=DatasetCatalog.get(PREFIX + "demo_train"),
        mapper=MattingDatasetMapper(
            is_train=True, augmentations=build_matting_augmentations("am2k", crop_size=192)
        ),
        total_batch_size=4,
        aspect_ratio_grouping=False,
        num_workers=0,
    )
    batch = next(iter(train_loader))
    assert len(batch) == 4
    for item in batch:
        assert item["image"].shape == (3, 192, 192) and item["image"].dtype == torch.uint8
        assert item["trimap"].shape == item["alpha"].shape == (1, 192, 192)
        assert set(item["trimap"].unique().tolist()) <= {0.0, 0.5, 1.0}

    test_loader = build_detection_test_loader(
        dataset=DatasetCatalog.get(PREFIX + "demo_val"),
        mapper=MattingDatasetMapper(is_train=False, augmentations=[]),
        num_workers=0,
    )
    seen = 0
    for (item,) in test_loader:
        assert item["image"].shape == (3, item["height"], item["width"])
        assert item["alpha"].shape == item["trimap"].shape == (1, item["height"], item["width"])
        seen += 1
    assert seen == 12
