"""Built-in datasets described by BuiltinMattingDataset; the demo's command-line generator."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog

from alphafree_d2.data.datasets import BUILTIN_DATASETS, demo, register_all_matting_datasets

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registered(tmp_path):
    prefix = "builtin_test_"
    register_all_matting_datasets(str(tmp_path), prefix=prefix)
    yield prefix
    for name in DatasetCatalog.list():
        if name.startswith(prefix):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


@pytest.mark.parametrize(
    "name, command",
    [
        ("am2k_train", "prepare_matting_trimaps.py --root {root} am2k\n"),
        ("am2k_train_mask", "prepare_matting_trimaps.py --root {root} am2k --mask\n"),
        ("am2k_train_trimap_k20", "prepare_matting_trimaps.py --root {root} am2k --kernel-size 20"),
        ("p3m10k_train", "prepare_matting_trimaps.py --root {root} p3m10k\n"),
    ],
)
def test_missing_generated_labels_name_the_command_that_makes_them(
    tmp_path, registered, name, command
):
    dataset = next(d for d in BUILTIN_DATASETS if d.name == name)
    os.makedirs(tmp_path / dataset.image_dir)
    with pytest.raises(FileNotFoundError) as info:
        DatasetCatalog.get(registered + name)
    assert str(tmp_path / dataset.trimap_dir) in str(info.value)
    assert command.format(root=tmp_path) in str(info.value)


def test_validation_sets_have_no_generation_hint(tmp_path, registered):
    with pytest.raises(FileNotFoundError) as info:
        DatasetCatalog.get(registered + "am2k_val")
    assert "AM-2K/validation/original" in str(info.value)
    assert "labels are generated once" not in str(info.value)


def test_prepare_demo_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO_NUM_TRAIN", 2)
    monkeypatch.setattr(demo, "DEMO_NUM_VAL", 1)
    spec = importlib.util.spec_from_file_location(
        "prepare_demo", REPO / "datasets" / "prepare_demo.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--root", str(tmp_path)]) == 0
    folder = tmp_path / "alphafree_demo"
    assert capsys.readouterr().out.strip() == str(folder)
    assert json.loads((folder / "manifest.json").read_text())["num_train"] == 2
    assert sorted(os.listdir(folder / "val" / "image")) == ["demo_val_000.png"]


@pytest.mark.parametrize("kind", ["file", "uncreatable"])
def test_an_unusable_datasets_root_names_the_variable(tmp_path, monkeypatch, kind):
    from alphafree_d2.data.datasets import DatasetsRootError

    if kind == "file":
        root = tmp_path / "datasets.txt"
        root.write_text("not a folder")
        says = "is a file, not a folder"
    else:
        (tmp_path / "locked").write_text("a file where a folder would have to be made")
        root = tmp_path / "locked" / "datasets"
        says = "must be a folder you can write to"
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    prefix = "root_test_"
    register_all_matting_datasets(str(root), prefix=prefix)
    try:
        for name in ("demo_train", "am2k_val"):
            if kind == "uncreatable" and name == "am2k_val":
                says = "does not exist"
            with pytest.raises(DatasetsRootError) as info:
                DatasetCatalog.get(prefix + name)
            assert str(info.value).startswith(f"DETECTRON2_DATASETS={root}: "), info.value
            assert says in str(info.value)
    finally:
        for name in DatasetCatalog.list():
            if name.startswith(prefix):
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
