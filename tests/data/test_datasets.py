"""Dataset registration: built-in layouts on a fake tree, user folders, COCO json."""

import importlib.util
import json
import logging
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog

from alphafree_d2.data import (
    MattingDatasetMapper,
    prepare_coco_matting_trimaps,
    read_trimap,
    register_all_matting_datasets,
    register_coco_matting_dataset,
    register_matting_dataset,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILTIN = [
    "demo_train",
    "demo_val",
    "am2k_train",
    "am2k_val",
    "p3m10k_train",
    "p3m500np_val",
    "p3m500p_val",
]


@pytest.fixture
def fake_tree(tmp_path, write, blob_alpha):
    """AM-2K and P3M-10k folders with 2-3 tiny samples each (official layout, no generated trimaps)."""
    root = tmp_path / "datasets"

    def sample(image_dir, names, alpha_dir=None, trimap_dir=None, ext=".jpg"):
        for i, name in enumerate(names):
            alpha = blob_alpha(48, 64, seed=i)
            write(
                str(root / image_dir / (name + ext)), np.stack([alpha, 255 - alpha, alpha // 2], 2)
            )
            if alpha_dir:
                write(str(root / alpha_dir / (name + ".png")), alpha)
            if trimap_dir:
                write(
                    str(root / trimap_dir / (name + ".png")),
                    np.where(alpha == 255, 255, np.where(alpha == 0, 0, 128)).astype(np.uint8),
                )

    sample("AM-2K/train/original", ["m_a", "m_b", "m_c"], alpha_dir="AM-2K/train/mask")
    sample(
        "AM-2K/validation/original",
        ["m_v1", "m_v2"],
        "AM-2K/validation/mask",
        "AM-2K/validation/trimap",
    )
    sample("P3M-10k/train/blurred_image", ["p_a", "p_b"], alpha_dir="P3M-10k/train/mask")
    sample(
        "P3M-10k/validation/P3M-500-NP/original_image",
        ["np1", "np2"],
        "P3M-10k/validation/P3M-500-NP/mask",
        "P3M-10k/validation/P3M-500-NP/trimap",
    )
    sample(
        "P3M-10k/validation/P3M-500-P/blurred_image",
        ["p1", "p2"],
        "P3M-10k/validation/P3M-500-P/mask",
        "P3M-10k/validation/P3M-500-P/trimap",
    )
    return root


def _prepare(root, *names):
    spec = importlib.util.spec_from_file_location(
        "prepare", os.path.join(REPO, "datasets", "prepare_matting_trimaps.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([*names, "--root", str(root), "--workers", "1"])


def _register(catalog_names, prefix, root=None):
    catalog_names.extend(prefix + n for n in BUILTIN)
    register_all_matting_datasets(root, prefix=prefix)


def test_builtin_names_are_registered_lazily():
    import alphafree_d2.data  # noqa: F401  (registers on import)

    for name in BUILTIN:
        assert name in DatasetCatalog.list()
        assert MetadataCatalog.get(name).evaluator_type == "matting"


def test_builtin_layouts_resolve_on_a_fake_tree(fake_tree, monkeypatch, catalog_names):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(fake_tree))
    _register(catalog_names, "fake_")  # root from $DETECTRON2_DATASETS
    with pytest.raises(FileNotFoundError, match="prepare_matting_trimaps.py") as info:
        DatasetCatalog.get("fake_am2k_train")
    assert "AM-2K/train/trimap_generated" in str(info.value) and "train/original/*.jpg" in str(
        info.value
    )

    assert _prepare(fake_tree) == 0  # both datasets, found under --root
    train = DatasetCatalog.get("fake_am2k_train")
    assert [r["image_id"] for r in train] == ["m_a", "m_b", "m_c"]
    assert train[0] == {
        "file_name": str(fake_tree / "AM-2K/train/original/m_a.jpg"),
        "height": 48,
        "width": 64,
        "image_id": "m_a",
        "trimap_file_name": str(fake_tree / "AM-2K/train/trimap_generated/m_a.png"),
    }
    assert set(np.unique(read_trimap(train[0]["trimap_file_name"]))) <= {0, 128, 255}
    assert len(DatasetCatalog.get("fake_p3m10k_train")) == 2
    for name, count in (("am2k_val", 2), ("p3m500np_val", 2), ("p3m500p_val", 2)):
        records = DatasetCatalog.get("fake_" + name)
        assert len(records) == count and all(os.path.isfile(r["alpha_file_name"]) for r in records)
    meta = MetadataCatalog.get("fake_p3m500np_val")
    assert meta.evaluator_type == "matting"
    assert meta.image_root == str(fake_tree / "P3M-10k/validation/P3M-500-NP/original_image")
    assert meta.alpha_root.endswith("P3M-500-NP/mask") and meta.trimap_root.endswith(
        "P3M-500-NP/trimap"
    )
    assert MetadataCatalog.get("fake_am2k_train").alpha_root is None

    out = MattingDatasetMapper(is_train=False, augmentations=[])(
        DatasetCatalog.get("fake_am2k_val")[0]
    )
    assert out["image"].shape == (3, 48, 64) and out["alpha"].shape == (1, 48, 64)


def test_broken_tree_names_the_missing_folder(fake_tree, catalog_names):
    _register(catalog_names, "broken_", str(fake_tree))
    (fake_tree / "P3M-10k/validation/P3M-500-P/trimap").rename(
        fake_tree / "P3M-10k/validation/P3M-500-P/trimaps"
    )
    with pytest.raises(FileNotFoundError) as info:
        DatasetCatalog.get("broken_p3m500p_val")
    message = str(info.value)
    assert str(fake_tree / "P3M-10k/validation/P3M-500-P/trimap") in message
    assert "P3M-500-P/{blurred_image,mask,trimap}" in message
    _register(catalog_names, "empty_", str(fake_tree / "nothing_here"))
    with pytest.raises(FileNotFoundError, match="AM-2K/validation/original"):
        DatasetCatalog.get("empty_am2k_val")


def test_own_folders(tmp_path, write, blob_alpha, catalog_names, caplog):
    for name in ("b", "a", "c"):
        write(str(tmp_path / "img" / f"{name}.png"), np.zeros((10, 12, 3), np.uint8))
    for name in ("a", "b"):
        write(str(tmp_path / "tri" / f"{name}.png"), np.full((10, 12), 128, np.uint8))
    write(str(tmp_path / "tri" / "orphan.png"), np.zeros((10, 12), np.uint8))
    catalog_names.extend(["own_strict", "own_skip", "own_images"])

    register_matting_dataset(
        "own_strict", str(tmp_path / "img"), str(tmp_path / "tri"), note="mine"
    )
    with pytest.raises(FileNotFoundError, match=r"1 of 3 images .* no label .*: c\b"):
        DatasetCatalog.get("own_strict")
    assert MetadataCatalog.get("own_strict").note == "mine"

    register_matting_dataset(
        "own_skip", str(tmp_path / "img"), str(tmp_path / "tri"), skip_unlabeled=True
    )
    with caplog.at_level(logging.WARNING):
        records = DatasetCatalog.get("own_skip")
    assert [r["image_id"] for r in records] == ["a", "b"]
    assert "leaving out 1 images without a label: c" in caplog.text
    assert "orphan" in caplog.text

    register_matting_dataset("own_images", str(tmp_path / "img"))  # unlabeled: inference only
    assert [sorted(r) for r in DatasetCatalog.get("own_images")][0] == [
        "file_name",
        "height",
        "image_id",
        "width",
    ]


def test_own_folder_errors(tmp_path, write, catalog_names):
    os.makedirs(tmp_path / "empty")
    write(str(tmp_path / "dup" / "x.png"), np.zeros((4, 4), np.uint8))
    write(str(tmp_path / "dup" / "x.jpg"), np.zeros((4, 4), np.uint8))
    catalog_names.extend(["err_empty", "err_dup", "err_missing"])
    register_matting_dataset("err_empty", str(tmp_path / "empty"))
    register_matting_dataset("err_dup", str(tmp_path / "dup"))
    register_matting_dataset("err_missing", str(tmp_path / "not_there"))  # lazy: no error yet
    with pytest.raises(FileNotFoundError, match="empty: no images"):
        DatasetCatalog.get("err_empty")
    with pytest.raises(ValueError, match="stem 'x'"):
        DatasetCatalog.get("err_dup")
    with pytest.raises(FileNotFoundError, match="not_there"):
        DatasetCatalog.get("err_missing")


def _coco_json(tmp_path, write):
    """Two 40x60 images: one with a polygon (category 1), one with compressed + uncompressed RLE
    instances (category 1 and 2); a third image without instances."""
    for name in ("poly", "rle", "none"):
        write(str(tmp_path / "images" / "sub" / f"{name}.jpg"), np.full((40, 60, 3), 90, np.uint8))
    square = np.zeros((40, 60), np.uint8, order="F")
    square[10:30, 5:25] = 1
    compressed = mask_util.encode(square)
    compressed["counts"] = compressed["counts"].decode("ascii")
    other = np.zeros((40, 60), np.uint8)
    other[5:15, 40:55] = 1
    flat = other.flatten(order="F")  # uncompressed RLE: run lengths in column-major order
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])) != 0), prepend=0)
    coco = {
        "images": [
            {"id": 1, "file_name": "sub/poly.jpg", "height": 40, "width": 60},
            {"id": 2, "file_name": "sub/rle.jpg", "height": 40, "width": 60},
            {"id": 3, "file_name": "sub/none.jpg", "height": 40, "width": 60},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[10, 10, 50, 10, 50, 30, 10, 30]],
            },
            {"id": 11, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": compressed},
            {
                "id": 12,
                "image_id": 2,
                "category_id": 2,
                "iscrowd": 1,
                "segmentation": {"size": [40, 60], "counts": runs.tolist()},
            },
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    return str(path), square.astype(bool), other.astype(bool)


def _prepare_coco(*argv):
    spec = importlib.util.spec_from_file_location(
        "prepare_coco", os.path.join(REPO, "datasets", "prepare_coco_matting.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([*map(str, argv), "--no-progress"])


def _snapshot(folder):
    """{name: (size, mtime_ns)} of every file under ``folder`` (nothing when it is missing)."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), folder)] = (st.st_size, st.st_mtime_ns)
    return out


def test_coco_polygons_and_rle_become_trimaps(tmp_path, write, catalog_names, caplog):
    json_file, square, other = _coco_json(tmp_path, write)
    catalog_names.extend(["coco_all", "coco_cat", "coco_strict", "coco_other_seed"])
    kwargs = dict(kernel_size=5, reference_size=None, skip_unlabeled=True)
    assert (
        _prepare_coco(json_file, "--kernel-size", 5, "--reference-size", 0, "--skip-unlabeled") == 0
    )
    register_coco_matting_dataset("coco_all", json_file, str(tmp_path / "images"), **kwargs)
    with caplog.at_level(logging.WARNING):
        records = DatasetCatalog.get("coco_all")
    assert "none" in caplog.text
    assert [r["image_id"] for r in records] == ["poly", "rle"]
    assert records[0]["file_name"] == str(tmp_path / "images" / "sub" / "poly.jpg")
    assert records[0]["trimap_file_name"] == str(tmp_path / "ann_trimaps" / "poly.png")
    assert MetadataCatalog.get("coco_all").evaluator_type == "matting"

    poly = read_trimap(records[0]["trimap_file_name"])
    assert (
        poly[20, 30] == 255 and poly[2, 2] == 0 and poly[20, 10] == 128
    )  # band on the polygon edge
    rle = read_trimap(records[1]["trimap_file_name"])
    assert rle[20, 15] == 255 and rle[10, 47] == 255 and rle[35, 45] == 0
    assert np.all(rle[square & (rle != 128)] == 255) and np.all(
        rle[~(square | other) & (rle != 128)] == 0
    )
    assert np.all(rle[20, 3:7] == 128) and rle[20, 2] == 0 and rle[20, 7] == 255  # band around x=5

    prepare_coco_matting_trimaps(
        json_file, str(tmp_path / "cat"), category_ids=[1], progress=False, **kwargs
    )
    register_coco_matting_dataset(
        "coco_cat",
        json_file,
        str(tmp_path / "images"),
        trimap_root=str(tmp_path / "cat"),
        category_ids=[1],
        **kwargs,
    )
    cat = read_trimap(DatasetCatalog.get("coco_cat")[1]["trimap_file_name"])
    assert cat[10, 47] == 0  # the dog is background now
    register_coco_matting_dataset(
        "coco_strict", json_file, str(tmp_path / "images"), trimap_root=str(tmp_path / "s")
    )
    with pytest.raises(ValueError, match="1 of 3 images have no chosen instance.*none"):
        DatasetCatalog.get("coco_strict")
    register_coco_matting_dataset(
        "coco_other_seed",
        json_file,
        str(tmp_path / "images"),
        trimap_root=str(tmp_path / "ann_trimaps"),
        seed=3,
        skip_unlabeled=True,
    )
    with pytest.raises(
        ValueError, match=r"delete that folder .*\n.*prepare_coco_matting.py .*--seed 3"
    ):
        DatasetCatalog.get("coco_other_seed")
    with pytest.raises(ValueError, match="pass overwrite=True"):
        prepare_coco_matting_trimaps(
            json_file, str(tmp_path / "ann_trimaps"), seed=3, skip_unlabeled=True, progress=False
        )


def test_coco_loading_writes_nothing(tmp_path, write, catalog_names):
    """Loading is read-only (every DDP rank runs it): without prepared labels it names the
    prepare command; with them, loading twice leaves every file as it was."""
    json_file, _, _ = _coco_json(tmp_path, write)
    catalog_names.append("coco_ro")
    register_coco_matting_dataset(
        "coco_ro", json_file, str(tmp_path / "images"), seed=4, skip_unlabeled=True
    )
    before = _snapshot(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        DatasetCatalog.get("coco_ro")
    assert "generation.json: no such file" in str(info.value)
    command = str(info.value).split("\n  ")[1]
    assert command.startswith("python datasets/prepare_coco_matting.py " + json_file)
    assert _snapshot(tmp_path) == before  # on main, this wrote the trimaps

    assert _prepare_coco(*command.split()[2:]) == 0  # the command it names works
    prepared = _snapshot(tmp_path / "ann_trimaps")
    assert sorted(prepared) == ["generation.json", "poly.png", "rle.png"]
    for _ in range(2):
        assert len(DatasetCatalog.get("coco_ro")) == 2
    assert _snapshot(tmp_path / "ann_trimaps") == prepared

    os.remove(tmp_path / "ann_trimaps" / "rle.png")  # an interrupted preparation
    with pytest.raises(FileNotFoundError, match=r"1 of 2 trimaps are missing \(rle\)"):
        DatasetCatalog.get("coco_ro")


def test_coco_trimaps_are_seeded(tmp_path, write):
    json_file, _, _ = _coco_json(tmp_path, write)
    roots = [str(tmp_path / name) for name in ("s1", "s2")]
    for root in roots:
        stats = prepare_coco_matting_trimaps(
            json_file, root, seed=11, skip_unlabeled=True, progress=False
        )
        assert stats == {"trimap_root": root, "total": 2, "written": 2, "kept": 0}
    for name in ("poly.png", "rle.png"):
        first, second = (open(os.path.join(root, name), "rb").read() for root in roots)
        assert first == second
    again = prepare_coco_matting_trimaps(
        json_file, roots[0], seed=11, skip_unlabeled=True, progress=False
    )
    assert again["written"] == 0 and again["kept"] == 2
