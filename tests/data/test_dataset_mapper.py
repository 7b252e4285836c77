"""MattingDatasetMapper and the paper's augmentation recipes."""

import cv2
import numpy as np
import pytest
import torch

from detectron2.config import LazyCall as L
from detectron2.config import instantiate
from detectron2.data import transforms as T
from detectron2.data.detection_utils import SizeMismatchError

from alphafree_d2.data import (
    IGNORED_ALPHA,
    MattingDatasetMapper,
    RandomScale,
    UnknownCentredCrop,
    build_matting_augmentations,
)

COLOURS = np.array(
    [[0, 0, 255], [0, 255, 0], [255, 0, 0]], np.uint8
)  # bg blue, unknown green, fg red


@pytest.fixture
def colour_sample(tmp_path, write):
    """An image of pure-coloured blocks whose trimap (and alpha) follow from its colours."""

    def make(seed=0, height=120, width=160, block=12):
        rng = np.random.default_rng(seed)
        classes = rng.integers(0, 3, size=(height // block + 1, width // block + 1))
        classes = np.kron(classes, np.ones((block, block), int))[:height, :width]
        classes[: height // 3, : width // 3] = 2  # asymmetric: a mirrored label would not match
        image = COLOURS[classes]
        record = {
            "file_name": write(str(tmp_path / f"s{seed}" / "image.png"), image),
            "trimap_file_name": write(
                str(tmp_path / f"s{seed}" / "trimap.png"),
                np.array([0, 128, 255], np.uint8)[classes],
            ),
            "alpha_file_name": write(
                str(tmp_path / f"s{seed}" / "alpha.png"), np.array([0, 0, 255], np.uint8)[classes]
            ),
            "height": height,
            "width": width,
            "image_id": f"s{seed}",
        }
        return record, classes

    return make


def _pure_classes(image):
    """Class (0 bg, 1 unknown, 2 fg) of each pixel of a (3, H, W) RGB tensor that is one pure colour
    (no interpolated mixture, no padding); -1 elsewhere."""
    image = image.permute(1, 2, 0).numpy().astype(int)
    out = np.full(image.shape[:2], -1)
    for c, colour in enumerate(COLOURS):
        out[np.abs(image - colour).max(axis=2) == 0] = c
    return out


@pytest.mark.parametrize("crop_policy", ["unknown_centred", "uniform"])
@pytest.mark.parametrize("recipe", ["am2k", "p3m", "rotate"])
def test_image_trimap_and_alpha_stay_aligned(colour_sample, recipe, crop_policy):
    if recipe == "rotate":
        augs = [
            T.RandomRotation([-30, 30], expand=True),
            *build_matting_augmentations("am2k", crop_size=96, crop_policy=crop_policy),
        ]
    else:
        augs = build_matting_augmentations(recipe, crop_size=96, crop_policy=crop_policy)
    mapper = MattingDatasetMapper(is_train=True, augmentations=augs)
    for seed in range(8):
        np.random.seed(seed)
        record, _ = colour_sample(seed)
        out = mapper(record)
        assert out["image"].shape == (3, 96, 96) and out["image"].dtype == torch.uint8
        assert out["trimap"].shape == out["alpha"].shape == (1, 96, 96)
        assert set(out["trimap"].unique().tolist()) <= {0.0, 0.5, 1.0}
        classes = _pure_classes(out["image"])
        pure = classes >= 0
        assert pure.mean() > 0.25  # enough pixels to compare
        trimap, alpha = out["trimap"][0].numpy(), out["alpha"][0].numpy()
        np.testing.assert_array_equal(trimap[pure], classes[pure] / 2.0)
        # "pure" is up to 8-bit rounding of the image: the float alpha may differ by < 1/255 there
        np.testing.assert_allclose(
            alpha[pure], (classes[pure] == 2).astype(np.float32), atol=1 / 255
        )
        assert (out["height"], out["width"]) == (120, 160)


def test_photometric_augmentations_leave_labels_alone(colour_sample):
    record, classes = colour_sample()
    augs = [T.RandomBrightness(0.5, 0.5), T.RandomContrast(1.5, 1.5), T.RandomLighting(1.0)]
    out = MattingDatasetMapper(is_train=True, augmentations=augs)(record)
    assert not np.array_equal(out["image"].permute(1, 2, 0).numpy(), COLOURS[classes])
    np.testing.assert_array_equal(out["trimap"][0].numpy(), classes / 2.0)
    np.testing.assert_array_equal(out["alpha"][0].numpy(), (classes == 2).astype(np.float32))


def test_trimap_values_stay_exact_under_any_scale(colour_sample):
    record, _ = colour_sample()
    for scale in (0.31, 0.5, 0.77, 1.0, 1.33, 2.0, 3.7):
        mapper = MattingDatasetMapper(is_train=True, augmentations=[RandomScale(scale, scale)])
        out = mapper(record)
        h, w = round(120 * scale), round(160 * scale)
        assert out["trimap"].shape == (1, h, w)
        assert set(out["trimap"].unique().tolist()) <= {0.0, 0.5, 1.0}
        assert 0.0 <= out["alpha"].min() and out["alpha"].max() <= 1.0


def test_crop_padding_is_unknown_and_unlabelled(colour_sample):
    record, _ = colour_sample(height=50, width=40)
    mapper = MattingDatasetMapper(
        is_train=True,
        augmentations=build_matting_augmentations("p3m", crop_size=64, crop_policy="uniform"),
    )
    out = mapper(record)
    assert out["image"].shape == (3, 64, 64)
    trimap, alpha, image = out["trimap"][0], out["alpha"][0], out["image"]
    assert torch.all(trimap[50:, :] == 0.5) and torch.all(trimap[:, 40:] == 0.5)
    assert torch.all(alpha[50:, :] == IGNORED_ALPHA) and torch.all(alpha[:, 40:] == IGNORED_ALPHA)
    assert torch.all(alpha[:50, :40] >= 0)
    assert torch.all(image[:, 50:, :] == 128)
    classes = _pure_classes(image[:, :50, :40])
    np.testing.assert_array_equal(trimap[:50, :40].numpy(), classes / 2.0)


def test_padding_is_unknown_whatever_seg_pad_value(colour_sample):
    record, _ = colour_sample(height=30, width=30)
    for seg_pad_value in (0, 128, 255):
        augs = [T.FixedSizeCrop((40, 40), pad=True, pad_value=0, seg_pad_value=seg_pad_value)]
        out = MattingDatasetMapper(is_train=True, augmentations=augs)(record)
        assert torch.all(out["trimap"][0, 30:] == 0.5)


def test_test_mode_is_the_full_image(colour_sample):
    record, classes = colour_sample()
    out = MattingDatasetMapper(is_train=False, augmentations=[])(record)
    assert out["image"].shape == (3, 120, 160)
    np.testing.assert_array_equal(out["trimap"][0].numpy(), classes / 2.0)
    np.testing.assert_array_equal(out["alpha"][0].numpy(), (classes == 2).astype(np.float32))
    assert out["trimap"].dtype == out["alpha"].dtype == torch.float32
    np.testing.assert_array_equal(out["image"].permute(1, 2, 0).numpy(), COLOURS[classes])
    bgr = MattingDatasetMapper(is_train=False, augmentations=[], image_format="BGR")(record)
    assert torch.equal(bgr["image"], out["image"].flip(0))
    assert "image" not in record  # the record itself is left alone


def test_jpeg_noisy_trimap_snaps_to_exact_values(tmp_path, colour_sample, write):
    record, classes = colour_sample()
    clean = np.array([0, 128, 255], np.uint8)[classes]
    noisy = write(str(tmp_path / "trimap.jpg"), clean)
    raw = cv2.imread(noisy, cv2.IMREAD_GRAYSCALE)
    assert len(np.unique(raw)) > 3  # the file is really noisy
    record["trimap_file_name"] = noisy
    out = MattingDatasetMapper(is_train=False, augmentations=[])(record)
    assert set(out["trimap"].unique().tolist()) <= {0.0, 0.5, 1.0}
    interior = cv2.erode(
        (classes[..., None] == np.arange(3)).astype(np.uint8), np.ones((5, 5))
    ).any(axis=2)
    np.testing.assert_array_equal(out["trimap"][0].numpy()[interior], classes[interior] / 2.0)


def test_mask_labels_stay_binary(tmp_path, colour_sample, write):
    record, classes = colour_sample()
    record["trimap_file_name"] = write(
        str(tmp_path / "mask.png"), ((classes == 2) * 255).astype(np.uint8)
    )
    out = MattingDatasetMapper(is_train=False, augmentations=[])(record)
    assert set(out["trimap"].unique().tolist()) == {0.0, 1.0}
    out = MattingDatasetMapper(
        is_train=True, augmentations=[RandomScale(0.7, 1.5), T.RandomFlip()]
    )(record)
    assert set(out["trimap"].unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit"])
def test_image_depths_and_channels(tmp_path, write, kind):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    if kind == "gray":
        stored, expected = rgb[:, :, 0], np.repeat(rgb[:, :, :1], 3, axis=2)
    elif kind == "rgba":
        stored, expected = (
            np.concatenate([rgb, rng.integers(0, 256, (20, 30, 1), dtype=np.uint8)], 2),
            rgb,
        )
    else:
        stored, expected = rgb.astype(np.uint16) * 257, rgb
    record = {
        "file_name": write(str(tmp_path / f"{kind}.png"), stored),
        "trimap_file_name": write(str(tmp_path / "t.png"), np.full((20, 30), 128, np.uint16) * 257),
        "height": 20,
        "width": 30,
    }
    out = MattingDatasetMapper(is_train=False, augmentations=[])(record)
    np.testing.assert_array_equal(out["image"].permute(1, 2, 0).numpy(), expected)
    assert torch.all(out["trimap"] == 0.5)


def test_size_mismatch_names_both_files(tmp_path, colour_sample, write):
    record, _ = colour_sample()
    record["trimap_file_name"] = write(
        str(tmp_path / "small_trimap.png"), np.zeros((60, 80), np.uint8)
    )
    with pytest.raises(ValueError, match="small_trimap.png") as info:
        MattingDatasetMapper(is_train=True, augmentations=[])(record)
    assert record["file_name"] in str(info.value)
    record, _ = colour_sample()
    record["height"] = 99
    with pytest.raises(SizeMismatchError, match="image.png"):
        MattingDatasetMapper(is_train=False, augmentations=[])(record)


def test_bad_records(tmp_path, colour_sample, write):
    record, _ = colour_sample()
    del record["trimap_file_name"]
    with pytest.raises(KeyError, match="trimap_file_name"):
        MattingDatasetMapper(is_train=True, augmentations=[])(record)
    out = MattingDatasetMapper(is_train=False, augmentations=[])(record)  # inference-only data
    assert "trimap" not in out and out["image"].shape == (3, 120, 160)
    record["trimap_file_name"] = str(tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        MattingDatasetMapper(is_train=True, augmentations=[])(record)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    record["trimap_file_name"] = str(tmp_path / "broken.png")
    with pytest.raises(ValueError, match="broken.png"):
        MattingDatasetMapper(is_train=True, augmentations=[])(record)


def test_recipes_and_lazy_config():
    am2k = build_matting_augmentations("am2k", crop_size=512)
    assert [type(a) for a in am2k] == [RandomScale, UnknownCentredCrop, T.RandomFlip]
    am2k = build_matting_augmentations("am2k", crop_size=512, crop_policy="uniform")
    assert [type(a) for a in am2k] == [RandomScale, T.RandomCrop, T.FixedSizeCrop, T.RandomFlip]
    for recipe in ("p3m", "crop_only"):
        assert [type(a) for a in build_matting_augmentations(recipe)] == [UnknownCentredCrop]
        uniform = build_matting_augmentations(recipe, crop_policy="uniform")
        assert [type(a) for a in uniform] == [T.RandomCrop, T.FixedSizeCrop]
    with pytest.raises(ValueError, match="recipe"):
        build_matting_augmentations("coco")
    with pytest.raises(ValueError, match="crop_policy"):
        build_matting_augmentations("am2k", crop_policy="centre")
    mapper = instantiate(
        L(MattingDatasetMapper)(
            is_train=True,
            augmentations=L(build_matting_augmentations)(recipe="am2k", crop_size=256),
            image_format="RGB",
        )
    )
    assert isinstance(mapper, MattingDatasetMapper) and len(mapper.augmentations.augs) == 3


def test_random_scale_is_relative_to_the_input_size():
    aug = RandomScale(0.5, 2.0)
    np.random.seed(0)
    for h, w in ((100, 50), (1000, 2000)):
        for _ in range(20):
            t = aug.get_transform(np.zeros((h, w, 3), np.uint8))
            scale = t.new_h / h
            assert 0.5 - 1 / h <= scale <= 2.0 + 1 / h
            assert abs(t.new_w / w - scale) < 2.0 / min(h, w)
    with pytest.raises(ValueError):
        RandomScale(2.0, 1.0)


def test_from_yacs_config():
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.INPUT.FORMAT = "BGR"
    mapper = MattingDatasetMapper(cfg, is_train=True)
    assert mapper.image_format == "BGR" and len(mapper.augmentations.augs) == 3
    assert MattingDatasetMapper(cfg, is_train=False).augmentations.augs == []
