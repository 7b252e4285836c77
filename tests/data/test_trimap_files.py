"""Trimap files that do not read as 0/128/255 trimaps are refused, never read as background;
0/1/2 label maps are read with the explicit ``trimap_encoding="labels012"``."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import DatasetCatalog

from alphafree_d2.data import MattingDatasetMapper, read_trimap, register_matting_dataset
from alphafree_d2.evaluation import MattingEvaluator

LEVELS = np.array([0, 128, 255], np.uint8)


@pytest.fixture
def classes():
    """(30, 40) class map: 0 background, 1 unknown band, 2 foreground."""
    out = np.zeros((30, 40), np.uint8)
    out[5:25, 5:35] = 1
    out[10:20, 12:28] = 2
    return out


def _palette_png(path, indices, palette):
    image = Image.fromarray(indices, mode="P")
    image.putpalette([v for colour in palette for v in colour] + [0] * (768 - 3 * len(palette)))
    image.save(path)
    return str(path)


def test_gray_trimaps_and_masks_are_read(tmp_path, write, classes):
    for name, array in (
        ("t.png", LEVELS[classes]),
        ("t16.png", (LEVELS[classes].astype(np.uint16) * 257)),
        ("mask.png", (classes == 2).astype(np.uint8) * 255),
        ("empty.png", np.zeros_like(classes)),  # legal: all background
        ("rgb.png", np.repeat(LEVELS[classes][..., None], 3, axis=2)),
    ):
        expected = LEVELS[classes] if name != "mask.png" else array
        expected = np.zeros_like(classes) if name == "empty.png" else expected
        np.testing.assert_array_equal(read_trimap(write(str(tmp_path / name), array)), expected)
    gray = _palette_png(tmp_path / "gray_palette.png", classes, [(0,) * 3, (128,) * 3, (255,) * 3])
    np.testing.assert_array_equal(read_trimap(gray), LEVELS[classes])


@pytest.mark.parametrize(
    "kind, found",
    [
        ("labels", r"values 0, 1, 2 .*labels012"),
        ("mask01", r"values 0, 1 .*labels012"),
        ("16bit_8bit_levels", r"values 0, 128, 255 in a uint16 file.*8-bit levels"),
        ("colour_palette", r"colours.*\(255, 0, 0\).*labels012"),
        ("other_levels", r"64 \(\d+% of pixels\)"),
        ("other_levels_large", r"64 \(\d+% of pixels\)"),  # area shares from a sample
    ],
)
def test_other_encodings_are_refused_naming_file_and_values(tmp_path, write, classes, kind, found):
    path = str(tmp_path / f"{kind}.png")
    if kind == "labels":
        write(path, classes)
    elif kind == "mask01":
        write(path, (classes == 2).astype(np.uint8))
    elif kind == "16bit_8bit_levels":
        write(path, LEVELS[classes].astype(np.uint16))
    elif kind == "colour_palette":
        _palette_png(path, classes, [(0, 0, 0), (0, 255, 0), (255, 0, 0)])
    elif kind == "other_levels":
        write(path, np.array([0, 64, 255], np.uint8)[classes])
    else:
        write(path, np.array([0, 64, 255], np.uint8)[np.kron(classes, np.ones((20, 20), np.uint8))])
    with pytest.raises(ValueError, match=found) as info:
        read_trimap(path)
    assert path in str(info.value)


def test_labels012_encoding(tmp_path, write, classes):
    plain = write(str(tmp_path / "plain.png"), classes)
    palette = _palette_png(tmp_path / "pal.png", classes, [(0, 0, 0), (0, 255, 0), (255, 0, 0)])
    for path in (plain, palette):
        np.testing.assert_array_equal(read_trimap(path, encoding="labels012"), LEVELS[classes])
    gray = write(str(tmp_path / "gray.png"), LEVELS[classes])
    with pytest.raises(ValueError, match=r"gray.png: trimap_encoding='labels012'.*0, 128, 255"):
        read_trimap(gray, encoding="labels012")
    with pytest.raises(ValueError, match="trimap_encoding must be one of"):
        read_trimap(gray, encoding="012")


def _label_map_dataset(tmp_path, write, classes, catalog_names, name, **kwargs):
    alpha = (classes == 2).astype(np.uint8) * 255
    write(str(tmp_path / "img" / "a.png"), np.repeat(alpha[..., None], 3, axis=2))
    write(str(tmp_path / "alpha" / "a.png"), alpha)
    write(str(tmp_path / "labels" / "a.png"), classes)
    catalog_names.append(name)
    register_matting_dataset(
        name, str(tmp_path / "img"), str(tmp_path / "labels"), str(tmp_path / "alpha"), **kwargs
    )
    return DatasetCatalog.get(name)


def test_label_map_dataset_needs_the_explicit_encoding(tmp_path, write, classes, catalog_names):
    records = _label_map_dataset(tmp_path, write, classes, catalog_names, "labels_default")
    for is_train in (True, False):
        with pytest.raises(ValueError, match=r"labels/a.png: every pixel would read as background"):
            MattingDatasetMapper(is_train=is_train, augmentations=[])(records[0])

    records = _label_map_dataset(
        tmp_path, write, classes, catalog_names, "labels_012", trimap_encoding="labels012"
    )
    assert records[0]["trimap_encoding"] == "labels012"
    out = MattingDatasetMapper(is_train=True, augmentations=[])(records[0])
    assert torch.equal(out["trimap"][0], torch.from_numpy(classes / 2.0).float())
    with pytest.raises(ValueError, match="trimap_encoding must be one of"):
        register_matting_dataset("never", str(tmp_path / "img"), trimap_encoding="labels")


def test_unknown_region_evaluation_is_never_a_silent_perfect_score(
    tmp_path, write, classes, catalog_names, caplog
):
    """A label map evaluated without the encoding is an error (on main it scored SAD=0,
    MSE=nan); with the encoding the unknown band is measured."""
    alpha = torch.from_numpy((classes == 2).astype(np.float32))[None]
    _label_map_dataset(tmp_path, write, classes, catalog_names, "eval_default")
    evaluator = MattingEvaluator("eval_default", protocol="unknown_region", distributed=False)
    with pytest.raises(ValueError, match=r"labels/a.png: every pixel would read as background"):
        evaluator.process([{"image_id": "a"}], [{"alpha": torch.full_like(alpha, 0.5)}])

    _label_map_dataset(
        tmp_path, write, classes, catalog_names, "eval_012", trimap_encoding="labels012"
    )
    evaluator = MattingEvaluator("eval_012", protocol="unknown_region", distributed=False)
    evaluator.process([{"image_id": "a"}], [{"alpha": torch.full_like(alpha, 0.5)}])
    metrics = evaluator.evaluate()["matting"]
    assert metrics["SAD"] > 0 and np.isfinite(metrics["MSE"])

    # A gray trimap without unknown pixels: named, and not scored as perfect.
    write(str(tmp_path / "known" / "a.png"), (classes == 2).astype(np.uint8) * 255)
    catalog_names.append("eval_known")
    register_matting_dataset(
        "eval_known", str(tmp_path / "img"), str(tmp_path / "known"), str(tmp_path / "alpha")
    )
    evaluator = MattingEvaluator("eval_known", protocol="unknown_region", distributed=False)
    with caplog.at_level(logging.WARNING):
        evaluator.process([{"image_id": "a"}], [{"alpha": torch.full_like(alpha, 0.5)}])
        metrics = evaluator.evaluate()["matting"]
    assert all(np.isnan(v) for v in metrics.values())
    assert "image 'a'" in caplog.text and "no unknown (128) pixel" in caplog.text
