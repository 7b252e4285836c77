"""The "unknown_centred" crop policy (UnknownCentredCrop) and unlabelled crop padding."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import transforms as T

from alphafree_d2.data import (
    IGNORED_ALPHA,
    MattingDatasetMapper,
    UnknownCentredCrop,
    build_matting_augmentations,
)
from alphafree_d2.data.augmentation import SEG_BACKGROUND, SEG_FOREGROUND, SEG_UNKNOWN
from alphafree_d2.modeling.losses import alpha_l1_loss

CROP = 64


def _ring_record(tmp_path, write, height=300, width=400):
    """A disc of foreground with a 2 px unknown ring; the image encodes each pixel's position
    (R = x mod 256, G = y mod 256, B = class), so a crop's offset can be read back from it."""
    yy, xx = np.mgrid[:height, :width]
    radius = np.hypot(yy - height * 0.6, xx - width * 0.3)
    trimap = np.where(radius < 50, 255, 0).astype(np.uint8)
    trimap[np.abs(radius - 50) < 1] = 128
    image = np.stack([xx % 256, yy % 256, trimap], axis=2).astype(np.uint8)
    alpha = np.where(trimap == 128, 128, trimap).astype(np.uint8)
    record = {
        "file_name": write(str(tmp_path / "image.png"), image),
        "trimap_file_name": write(str(tmp_path / "trimap.png"), trimap),
        "alpha_file_name": write(str(tmp_path / "alpha.png"), alpha),
        "height": height,
        "width": width,
    }
    return record, trimap


def _seg(trimap):
    seg = np.full(trimap.shape, SEG_UNKNOWN, np.uint8)
    seg[trimap == 0], seg[trimap == 255] = SEG_BACKGROUND, SEG_FOREGROUND
    return seg


def test_every_crop_is_centred_on_an_unknown_pixel(tmp_path, write):
    record, trimap = _ring_record(tmp_path, write)
    assert (trimap == 128).mean() < 0.01  # a thin band: uniform crops mostly miss it
    mapper = MattingDatasetMapper(is_train=True, augmentations=[UnknownCentredCrop(CROP)])
    np.random.seed(0)
    centres = set()
    for _ in range(40):
        out = mapper(record)
        image = out["image"].permute(1, 2, 0).numpy().astype(int)
        assert image.shape == (CROP, CROP, 3)
        x0, y0 = image[0, 0, 0], image[0, 0, 1]  # position of the crop, read from the pixels
        expected = (trimap[y0 : y0 + CROP, x0 : x0 + CROP] / 255.0 * 2).round() / 2
        np.testing.assert_array_equal(out["trimap"][0].numpy(), expected)
        assert trimap[y0 + CROP // 2, x0 + CROP // 2] == 128  # centred on an unknown pixel
        assert out["trimap"][0, CROP // 2, CROP // 2] == 0.5
        centres.add((y0, x0))
    assert len(centres) > 20  # drawn at random along the ring, not one fixed place


def test_uniform_crops_miss_the_ring_sometimes(tmp_path, write):
    # the reason for the policy: the same record cropped uniformly often has no unknown pixel
    record, _ = _ring_record(tmp_path, write)
    mapper = MattingDatasetMapper(
        is_train=True, augmentations=build_matting_augmentations("p3m", CROP, crop_policy="uniform")
    )
    np.random.seed(0)
    hits = [bool((mapper(record)["trimap"] == 0.5).any()) for _ in range(40)]
    assert not all(hits)


def test_few_candidates_fall_back_to_a_uniform_crop():
    trimap = np.zeros((200, 200), np.uint8)
    trimap[100:104, 100:104] = 128  # one candidate on the 4 px grid: < 10
    aug = UnknownCentredCrop(CROP)
    np.random.seed(0)
    offsets = set()
    for _ in range(20):
        t = aug.get_transform(np.zeros((200, 200, 3), np.uint8), _seg(trimap))
        (crop,) = t.transforms
        assert isinstance(crop, T.CropTransform) and (crop.h, crop.w) == (CROP, CROP)
        assert 0 <= crop.x0 <= 200 - CROP and 0 <= crop.y0 <= 200 - CROP
        offsets.add((crop.y0, crop.x0))
    assert len(offsets) > 10 and (100 - CROP // 2, 100 - CROP // 2) not in offsets


@pytest.mark.parametrize("size", [(50, 40), (64, 300), (4, 4)])
def test_small_images_are_enlarged_never_padded(tmp_path, write, size):
    h, w = size
    crop = 5 if size == (4, 4) else CROP
    rng = np.random.default_rng(0)
    trimap = np.array([0, 128, 255], np.uint8)[rng.integers(0, 3, size=(h, w))]
    record = {
        "file_name": write(str(tmp_path / "image.png"), np.dstack([trimap] * 3)),
        "trimap_file_name": write(str(tmp_path / "trimap.png"), trimap),
        "alpha_file_name": write(str(tmp_path / "alpha.png"), trimap),
        "height": h,
        "width": w,
    }
    aug = UnknownCentredCrop(crop, interp=Image.NEAREST)  # image and labels sampled alike
    np.random.seed(0)
    transforms = aug.get_transform(np.zeros((h, w, 3), np.uint8), _seg(trimap)).transforms
    resizes = [t for t in transforms if isinstance(t, T.ResizeTransform)]
    assert resizes and isinstance(transforms[-1], T.CropTransform)
    ratio = 1.1 * max(crop / h, crop / w)  # the short side to 1.1 x crop
    assert (resizes[0].new_h, resizes[0].new_w) == (int(h * ratio), int(w * ratio))
    assert resizes[-1].new_h > crop and resizes[-1].new_w > crop
    assert len(resizes) == (2 if size == (4, 4) else 1)  # repeated while a side <= crop

    out = MattingDatasetMapper(is_train=True, augmentations=[aug])(record)
    assert out["image"].shape == (3, crop, crop)
    assert torch.all(out["alpha"] >= 0)  # nothing added, nothing unlabelled
    # the grey image is its own trimap: labels stay aligned with it through resize and crop
    np.testing.assert_array_equal(
        out["trimap"][0].numpy(), (out["image"][0].numpy() / 255.0 * 2).round() / 2
    )
    np.testing.assert_allclose(out["alpha"][0].numpy(), out["image"][0].numpy() / 255.0, atol=1e-6)


def test_no_unknown_pixel_resizes_the_whole_image(tmp_path, write):
    trimap = np.zeros((90, 150), np.uint8)
    trimap[30:60, 40:100] = 255
    record = {
        "file_name": write(str(tmp_path / "image.png"), np.dstack([trimap] * 3)),
        "trimap_file_name": write(str(tmp_path / "trimap.png"), trimap),
        "height": 90,
        "width": 150,
    }
    t = UnknownCentredCrop(CROP).get_transform(np.zeros((90, 150, 3), np.uint8), _seg(trimap))
    assert isinstance(t, T.ResizeTransform)
    assert (t.h, t.w, t.new_h, t.new_w) == (90, 150, CROP, CROP)
    out = MattingDatasetMapper(is_train=True, augmentations=[UnknownCentredCrop(CROP)])(record)
    expected = cv2.resize(trimap, (CROP, CROP), interpolation=cv2.INTER_NEAREST) / 255.0
    assert out["trimap"].shape == (1, CROP, CROP)
    # nearest sampling conventions differ by at most one pixel along the block edges
    assert (out["trimap"][0].numpy() != expected).mean() < 0.05


def test_needs_the_trimap():
    with pytest.raises(ValueError, match="sem_seg"):
        UnknownCentredCrop(CROP).get_transform(np.zeros((80, 80, 3), np.uint8), None)
    with pytest.raises(ValueError, match="crop_size"):
        UnknownCentredCrop((0, 5))


def test_crop_padding_is_not_supervised_by_alpha_l1(tmp_path, write):
    trimap = np.full((50, 40), 255, np.uint8)
    record = {
        "file_name": write(str(tmp_path / "image.png"), np.dstack([trimap] * 3)),
        "trimap_file_name": write(str(tmp_path / "trimap.png"), trimap),
        "alpha_file_name": write(str(tmp_path / "alpha.png"), trimap),
        "height": 50,
        "width": 40,
    }
    augs = build_matting_augmentations("crop_only", CROP, crop_policy="uniform")
    gt = MattingDatasetMapper(is_train=True, augmentations=augs)(record)["alpha"][None]
    padding = gt == IGNORED_ALPHA
    assert padding.sum() == CROP * CROP - 50 * 40  # bottom and right padding
    pred = torch.rand(gt.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pred.requires_grad_(True)
    loss = alpha_l1_loss(pred, gt.double())
    loss.backward()
    expected = (pred - 1.0).abs()[~padding].mean()  # the image is all foreground: alpha 1
    torch.testing.assert_close(loss, expected)
    assert torch.all(pred.grad[padding] == 0) and torch.all(pred.grad[~padding] != 0)
