"""Pre-flight check of the training set: bad files stop training before it starts."""

import logging
import os

import numpy as np
import pytest

from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog

from alphafree_d2.data import (
    DatasetCheckError,
    MattingDatasetMapper,
    build_matting_train_loader,
    check_training_set,
    register_matting_dataset,
)
from alphafree_d2.data import build as build_module
from alphafree_d2.data import preflight as preflight_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _trimap(alpha):
    return np.where(alpha == 255, 255, np.where(alpha == 0, 0, 128)).astype(np.uint8)


@pytest.fixture
def good_set(tmp_path, write, blob_alpha):
    """Five 24x32 samples (image jpg, trimap png, alpha png) registered as a folder dataset;
    returns a function that (re)loads its records."""

    def make(root=tmp_path / "set", n=5):
        for i in range(n):
            alpha = blob_alpha(24, 32, seed=i)
            write(str(root / "img" / f"s{i}.jpg"), np.stack([alpha, 255 - alpha, alpha], 2))
            write(str(root / "tri" / f"s{i}.png"), _trimap(alpha))
            write(str(root / "alpha" / f"s{i}.png"), alpha)
        return root

    return make


def _records(root):
    from alphafree_d2.data import load_matting_folder

    return load_matting_folder(str(root / "img"), str(root / "tri"), str(root / "alpha"))


def test_a_good_set_passes(good_set, caplog):
    root = good_set()
    with caplog.at_level(logging.INFO, logger=preflight_module.__name__):
        report = check_training_set(_records(root))
    assert report["images"] == 5 and report["no_known"] == [] and report["no_foreground"] == 0
    assert "5 images OK" in caplog.text


def test_every_bad_file_is_listed_before_training(good_set, write):
    root = good_set(n=8)
    records = _records(root)
    for i in (0, 1, 2):  # three missing images: the first two are listed, then the count
        os.remove(records[i]["file_name"])
    with open(records[3]["file_name"], "wb") as f:
        f.write(b"not an image at all")
    alpha = open(records[4]["alpha_file_name"], "rb").read()
    with open(records[4]["alpha_file_name"], "wb") as f:
        f.write(alpha[: len(alpha) // 2])  # truncated PNG: its header still reads
    write(records[5]["trimap_file_name"], np.zeros((20, 32), np.uint8))  # wrong size
    records[6]["height"] = 99  # the record disagrees with its image
    labels = np.zeros((24, 32), np.uint8)
    labels[4:20, 4:28], labels[8:16, 8:24] = 1, 2
    write(records[7]["trimap_file_name"], labels)  # a 0/1/2 label map
    with pytest.raises(DatasetCheckError) as info:
        check_training_set(records, max_listed=2)
    message = str(info.value)
    assert "3 missing files" in message and "... and 1 more" in message
    assert records[0]["file_name"] in message and records[2]["file_name"] not in message
    assert "2 files that cannot be read as images" in message
    assert records[3]["file_name"] in message and records[4]["alpha_file_name"] in message
    assert "2 size mismatches" in message
    assert f"its trimap {records[5]['trimap_file_name']} is 32x20" in message
    assert "but its record says 32x99" in message
    assert f"1 trimap files that do not read as trimaps:\n    {records[7]['trimap_file_name']}" in (
        message
    )
    assert "dataloader.train.preflight=False" in message


def test_trimaps_without_known_pixels_or_foreground(good_set, write, caplog):
    root = good_set()
    records = _records(root)
    write(records[1]["trimap_file_name"], np.full((24, 32), 128, np.uint8))
    with caplog.at_level(logging.WARNING, logger=preflight_module.__name__):
        report = check_training_set(records)
    assert report["no_known"] == [records[1]["trimap_file_name"]]
    assert "1 of 5 trimaps of the training set have no known" in caplog.text
    assert records[1]["trimap_file_name"] in caplog.text

    for record in records:
        write(record["trimap_file_name"], np.full((24, 32), 128, np.uint8))
    with pytest.raises(DatasetCheckError, match="no trimap of the 5 images has a known"):
        check_training_set(records)
    for record in records:
        write(record["trimap_file_name"], np.where(np.eye(24, 32) > 0, 128, 0).astype(np.uint8))
    with pytest.raises(DatasetCheckError, match="no trimap of the 5 images has a foreground"):
        check_training_set(records)


def test_the_config_train_loader_runs_it(good_set, catalog_names, write):
    """configs/common/data.py builds the train loader through the pre-flight check;
    dataloader.train.preflight=False skips it."""
    root = good_set()
    write(str(root / "tri" / "s2.png"), np.zeros((12, 16), np.uint8))  # half size
    catalog_names.append("preflight_bad")
    register_matting_dataset(
        "preflight_bad", str(root / "img"), str(root / "tri"), str(root / "alpha")
    )
    cfg = LazyConfig.load(os.path.join(REPO, "configs", "demo_ddc.py"))
    assert cfg.dataloader.train.preflight is True
    cfg.dataloader.train.dataset.names = "preflight_bad"
    cfg.dataloader.train.num_workers = 0
    with pytest.raises(DatasetCheckError, match=r"1 size mismatches:\n.*s2.png is 16x12"):
        instantiate(cfg.dataloader.train)
    cfg.dataloader.train.preflight = False
    instantiate(cfg.dataloader.train)  # built; the bad file would be found when drawn


@pytest.mark.parametrize("rank", [0, 1])
def test_only_the_main_process_checks_and_every_process_stops(good_set, monkeypatch, rank):
    """Rank ``rank`` of 2: rank 0 reads the files and shares its verdict through all_gather;
    rank 1 reads nothing and raises rank 0's error (so no process waits for the others).
    The real 2-process path runs in the engine's multi-process training tests."""
    records = _records(good_set(n=4))
    os.remove(records[0]["trimap_file_name"])
    calls, shared = [], []
    real = build_module.check_training_set
    monkeypatch.setattr(
        build_module, "check_training_set", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    monkeypatch.setattr(build_module.comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(build_module.comm, "is_main_process", lambda: rank == 0)
    rank0_error = "Pre-flight check of the training set (4 images) failed: (rank 0's list)"

    def all_gather(value):
        shared.append(value)
        return [value if rank == 0 else rank0_error, None]

    monkeypatch.setattr(build_module.comm, "all_gather", all_gather)
    with pytest.raises(DatasetCheckError) as info:
        build_matting_train_loader(
            records,
            mapper=MattingDatasetMapper(is_train=True, augmentations=[]),
            total_batch_size=2,
            num_workers=0,
        )
    assert len(calls) == (1 if rank == 0 else 0)
    if rank == 0:
        assert "1 missing files" in shared[0] and records[0]["trimap_file_name"] in shared[0]
        assert str(info.value) == shared[0]
    else:
        assert shared == [None] and str(info.value) == rank0_error


def test_registered_dataset_records_pass(good_set, catalog_names):
    root = good_set()
    catalog_names.append("preflight_good")
    register_matting_dataset(
        "preflight_good", str(root / "img"), str(root / "tri"), str(root / "alpha")
    )
    assert check_training_set(DatasetCatalog.get("preflight_good"))["images"] == 5


def test_an_evaluation_set_needs_alphas_and_trimaps_of_its_size(good_set, write):
    from alphafree_d2.data.preflight import check_evaluation_set

    root = good_set(n=4)
    records = _records(root)
    assert check_evaluation_set(records)["images"] == 4
    write(str(root / "alpha" / "s1.png"), np.zeros((20, 32), np.uint8))  # another size
    records[2] = {k: v for k, v in records[2].items() if k != "alpha_file_name"}
    # A trimap without known pixels is fine for evaluation (it is what is measured).
    write(str(root / "tri" / "s3.png"), np.full((24, 32), 128, np.uint8))
    with pytest.raises(DatasetCheckError) as info:
        check_evaluation_set(records, name="evaluation set 'val'")
    message = str(info.value)
    assert message.startswith("Pre-flight check of the evaluation set 'val' (4 images) failed")
    assert f"its alpha {root / 'alpha' / 's1.png'} is 32x20" in message
    assert "1 records without an alpha matte" in message and "s2.jpg" in message
    assert "s3.png" not in message


def test_images_above_the_pixel_cap_are_their_own_kind(good_set):
    root = good_set(n=2)
    with pytest.raises(DatasetCheckError) as info:
        check_training_set(_records(root), max_pixels=700)  # 24 x 32 = 768 pixels
    message = str(info.value)
    assert "images above the pixel cap (refused before decoding)" in message
    assert "32 x 24 pixels" in message and "(700 pixels)" in message
