"""matting_metrics against plain formulations of the published scripts (alphafree_d2/utils/testing.py)."""

import math
import warnings

import cv2
import numpy as np
import pytest

from alphafree_d2.evaluation import METRIC_KEYS, matting_metrics
from alphafree_d2.utils.testing import ref_unknown_region, ref_whole_image

RTOL = 1e-6  # the tolerance; in practice the values are bit-identical


def structured_alpha(height, width, seed):
    """8-bit alpha: a few soft ellipses, noisy transitions, thin strands."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    alpha = np.zeros((height, width))
    for _ in range(3):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(3, height / 2), rng.uniform(3, width / 2)
        dist = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        alpha = np.maximum(alpha, np.clip((1.05 - dist) * rng.uniform(3, 10), 0, 1))
    soft = (alpha > 0) & (alpha < 1)
    alpha = np.clip(alpha + 0.1 * rng.standard_normal(alpha.shape) * soft, 0, 1)
    for _ in range(3):
        row = int(rng.integers(0, height))
        alpha[row, : width // 2] = np.maximum(alpha[row, : width // 2], rng.uniform(0.2, 0.9))
    return np.round(alpha * 255).astype(np.uint8)


def trimap_from(gt, radius=2):
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    fg = cv2.erode((gt == 255).astype(np.uint8), kernel)
    band = cv2.dilate((gt > 0).astype(np.uint8), kernel)
    return np.where(fg > 0, 255, np.where(band > 0, 128, 0)).astype(np.uint8)


def noisy_prediction(gt, seed):
    rng = np.random.default_rng(seed)
    pred = cv2.GaussianBlur(gt.astype(np.float64) / 255, (0, 0), 1.0)
    pred += rng.normal(0, 0.05, gt.shape) * (pred > 0)
    pred[rng.random(gt.shape) < 0.01] = 1.0  # isolated false positives
    return np.clip(pred, 0, 1)


def assert_close(ours, reference, keys):
    assert list(ours) == list(keys)
    for key in keys:
        expected = float(reference[key])
        if math.isnan(expected):
            assert math.isnan(ours[key]), key
        else:
            assert ours[key] == pytest.approx(expected, rel=RTOL, abs=1e-12), key


def unknown_region_reference(pred, gt, trimap):
    """The script reads 8-bit PNGs as float32 codes; floats enter as float32(255 * alpha)."""

    def codes(a):
        if a.dtype == np.uint8:
            return a.astype(np.float32)
        return (a.astype(np.float64) * 255.0).astype(np.float32)

    return ref_unknown_region(codes(pred), codes(gt), trimap.astype(np.float32))


CASES = [
    (h, w, seed) for seed, (h, w) in enumerate([(40, 60), (64, 48), (33, 71), (80, 80), (17, 25)])
]


@pytest.mark.parametrize("height,width,seed", CASES)
@pytest.mark.parametrize("mostly_foreground", [False, True])
def test_whole_image_matches_reference(height, width, seed, mostly_foreground):
    gt = structured_alpha(height, width, seed)
    if mostly_foreground:
        gt = 255 - gt
    trimap = trimap_from(gt)
    for pred in (
        noisy_prediction(gt, seed),  # float64, like core/test.py
        structured_alpha(height, width, seed + 100) / 255.0,  # unrelated matte
        np.random.default_rng(seed).random((height, width)),  # pure noise
    ):
        ours = matting_metrics(pred, gt, trimap, protocol="whole_image")
        assert_close(ours, ref_whole_image(pred, gt / 255.0, trimap), METRIC_KEYS["whole_image"])


@pytest.mark.parametrize("height,width,seed", CASES)
@pytest.mark.parametrize("mostly_foreground", [False, True])
def test_unknown_region_matches_reference(height, width, seed, mostly_foreground):
    gt = structured_alpha(height, width, seed)
    if mostly_foreground:  # masks above half the image: the background is not the mode
        gt = 255 - gt
    trimap = trimap_from(gt, radius=seed % 3 + 1)
    noisy = noisy_prediction(gt, seed)
    for pred in (
        np.round(noisy * 255).astype(np.uint8),
        noisy.astype(np.float32),
        np.random.default_rng(seed).random((height, width)),
    ):
        ours = matting_metrics(pred, gt, trimap, protocol="unknown_region")
        assert_close(
            ours, unknown_region_reference(pred, gt, trimap), METRIC_KEYS["unknown_region"]
        )


def test_float_and_uint8_inputs_agree():
    gt = structured_alpha(50, 40, 7)
    trimap = trimap_from(gt)
    pred = np.round(noisy_prediction(gt, 7) * 255).astype(np.uint8)
    as_codes = matting_metrics(pred, gt, trimap)
    as_float64 = matting_metrics(pred / 255.0, gt / 255.0, trimap)
    assert as_codes == as_float64
    # float32 inputs are upcast: same as the reference given the upcast arrays.
    pred32, gt32 = pred.astype(np.float32) / 255.0, gt.astype(np.float32) / 255.0
    assert_close(
        matting_metrics(pred32, gt32, trimap),
        ref_whole_image(pred32.astype(np.float64), gt32.astype(np.float64), trimap),
        METRIC_KEYS["whole_image"],
    )


def test_threshold_grid_quirk():
    """np.arange(0, 1.1, 0.1)[6] is 0.6000000000000001 > 153 / 255 in float64."""
    gt = np.zeros((12, 12), np.uint8)
    pred = np.zeros((12, 12), np.float64)
    gt[2:10, 2:8], pred[2:10, 2:8] = 204, 0.8  # region A, predicted exactly
    gt[2:10, 8:10], pred[2:10, 8:10] = 153, 1.0  # region B (16 px), touching A
    trimap = np.full((12, 12), 128, np.uint8)
    # Whole image (float64 153/255 = 0.6 < threshold 6): B leaves the largest component at
    # threshold 6, so l = threshold 5 = 0.5: phi_pred = 1 - 0.5, phi_gt = 1; |diff| = 0.5.
    conn = matting_metrics(pred, gt, trimap)["Conn"]
    assert conn == pytest.approx(16 * 0.5 / 1000, rel=1e-6)
    # With decimal thresholds B would stay until 0.7 and give 16 * 0.4 / 1000.
    assert conn != pytest.approx(16 * 0.4 / 1000, rel=1e-3)
    # Unknown region: the script's float32 153 / 255 = 0.6000000238 passes threshold 6.
    conn_unknown = matting_metrics(pred, gt, trimap, protocol="unknown_region")["Conn"]
    assert conn_unknown == pytest.approx(16 * 0.4 / 1000, rel=1e-5)
    assert_close(
        matting_metrics(pred, gt, trimap, protocol="unknown_region"),
        unknown_region_reference(pred, gt, trimap),
        METRIC_KEYS["unknown_region"],
    )


def test_unknown_region_largest_component_counts_background():
    """evaluation.py's argmax(bincount(labels)) picks the background when it is the largest."""
    gt = np.zeros((5, 5), np.uint8)
    pred = np.zeros((5, 5), np.float64)
    gt[1:3, 1:3], pred[1:3, 1:3] = 128, 1.0  # one 4-pixel object, 21 background pixels
    trimap = np.full((5, 5), 128, np.uint8)
    # The object is never "the largest component": it gets l = 0, so phi_pred = 0 and
    # phi_gt = 1 - 128/255 on its 4 pixels.
    expected = 4 * (1 - np.float32(128) / np.float32(255)) / 1000
    ours = matting_metrics(pred, gt, trimap, protocol="unknown_region")
    assert ours["Conn"] == pytest.approx(expected, rel=1e-6)
    assert_close(ours, unknown_region_reference(pred, gt, trimap), METRIC_KEYS["unknown_region"])
    # The whole-image code takes the real largest component: the object, which then never
    # leaves it, so the connectivity error is 0.
    assert matting_metrics(pred, gt, trimap)["Conn"] == 0.0


@pytest.mark.parametrize("flip", [False, True])
def test_equal_size_components_tie_break(flip):
    gt = np.zeros((10, 12), np.uint8)
    pred = np.zeros((10, 12), np.float64)
    gt[1:4, 1:4], pred[1:4, 1:4] = 255, 1.0  # A: predicted exactly
    gt[6:9, 7:10], pred[6:9, 7:10] = 128, 1.0  # B: same area, different error
    if flip:
        gt, pred = gt[::-1, ::-1].copy(), pred[::-1, ::-1].copy()
    trimap = trimap_from(gt, radius=1)
    assert_close(
        matting_metrics(pred, gt, trimap),
        ref_whole_image(pred, gt / 255.0, trimap),
        METRIC_KEYS["whole_image"],
    )
    assert_close(
        matting_metrics(pred, gt, trimap, protocol="unknown_region"),
        unknown_region_reference(pred, gt, trimap),
        METRIC_KEYS["unknown_region"],
    )


# --- edge cases: no crash, no division by zero (RuntimeWarnings are turned into errors) -------


@pytest.fixture
def no_runtime_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def test_no_unknown_pixels(no_runtime_warnings):
    gt = structured_alpha(30, 30, 1)
    pred = noisy_prediction(gt, 1)
    trimap = np.where(gt > 127, 255, 0).astype(np.uint8)
    whole = matting_metrics(pred, gt, trimap)
    assert math.isnan(whole["MSE-T"])
    assert whole["SAD-T"] == pytest.approx(ref_whole_image(pred, gt / 255.0, trimap)["SAD-T"])
    assert all(math.isfinite(whole[k]) for k in ("SAD", "MAD", "MSE", "Grad", "Conn", "SAD-T"))
    unknown = matting_metrics(pred, gt, trimap, protocol="unknown_region")
    assert math.isnan(unknown["MSE"])
    assert unknown["SAD"] == unknown["Grad"] == unknown["Conn"] == 0.0


def test_everything_unknown(no_runtime_warnings):
    gt = structured_alpha(30, 40, 2)
    pred = noisy_prediction(gt, 2)
    trimap = np.full(gt.shape, 128, np.uint8)
    whole = matting_metrics(pred, gt, trimap)
    assert whole["SAD-T"] == whole["SAD"] and whole["MSE-T"] == whole["MSE"]
    assert_close(whole, ref_whole_image(pred, gt / 255.0, trimap), METRIC_KEYS["whole_image"])
    assert_close(
        matting_metrics(pred, gt, trimap, protocol="unknown_region"),
        unknown_region_reference(pred, gt, trimap),
        METRIC_KEYS["unknown_region"],
    )


@pytest.mark.parametrize("protocol", ["whole_image", "unknown_region"])
def test_empty_foreground(protocol, no_runtime_warnings):
    gt = np.zeros((20, 30), np.uint8)
    trimap = np.zeros((20, 30), np.uint8)
    trimap[5:10, 5:10] = 128
    assert all(v == 0 for v in matting_metrics(np.zeros((20, 30)), gt, trimap, protocol).values())
    pred = np.random.default_rng(0).random((20, 30))
    ours = matting_metrics(pred, gt, trimap, protocol)
    reference = (
        ref_whole_image(pred, gt / 255.0, trimap)
        if protocol == "whole_image"
        else unknown_region_reference(pred, gt, trimap)
    )
    assert_close(ours, reference, METRIC_KEYS[protocol])


@pytest.mark.parametrize("protocol", ["whole_image", "unknown_region"])
@pytest.mark.parametrize("dtype", ["uint8", "float64", "float32"])
def test_perfect_prediction_gives_zeros(protocol, dtype, no_runtime_warnings):
    gt = structured_alpha(40, 50, 3)
    gt = gt if dtype == "uint8" else (gt / 255.0).astype(dtype)
    trimap = trimap_from(structured_alpha(40, 50, 3))
    assert all(v == 0.0 for v in matting_metrics(gt, gt.copy(), trimap, protocol).values())


@pytest.mark.parametrize("protocol", ["whole_image", "unknown_region"])
@pytest.mark.parametrize("value", [0, 255])
def test_constant_alphas_and_single_pixel(protocol, value, no_runtime_warnings):
    full = np.full((16, 16), value, np.uint8)
    trimap = np.full((16, 16), 128, np.uint8)
    flipped = (255 - full).astype(np.uint8)
    ours = matting_metrics(flipped, full, trimap, protocol)
    reference = (
        ref_whole_image(flipped / 255.0, full / 255.0, trimap)
        if protocol == "whole_image"
        else unknown_region_reference(flipped, full, trimap)
    )
    assert_close(ours, reference, METRIC_KEYS[protocol])
    one = np.full((1, 1), value, np.uint8)
    assert all(
        math.isfinite(v)
        for v in matting_metrics(one, one, np.full((1, 1), 128, np.uint8), protocol).values()
    )


# --- input validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pred,gt,trimap,message",
    [
        (np.zeros((4, 5)), np.zeros((4, 6)), np.zeros((4, 5), np.uint8), "same"),
        (np.zeros((4, 5)), np.zeros((4, 5)), np.zeros((5, 4), np.uint8), "same"),
        (np.zeros((1, 4, 5)), np.zeros((4, 5)), np.zeros((4, 5), np.uint8), r"\(H, W\)"),
        (np.zeros((0, 5)), np.zeros((0, 5)), np.zeros((0, 5), np.uint8), "non-empty"),
        (np.full((4, 5), 1.5), np.zeros((4, 5)), np.zeros((4, 5), np.uint8), r"\[0, 1\]"),
        (np.zeros((4, 5)), np.full((4, 5), -0.1), np.zeros((4, 5), np.uint8), r"\[0, 1\]"),
        (np.full((4, 5), np.nan), np.zeros((4, 5)), np.zeros((4, 5), np.uint8), "NaN"),
        (np.zeros((4, 5), np.uint16), np.zeros((4, 5)), np.zeros((4, 5), np.uint8), "uint8"),
        (np.zeros((4, 5), bool), np.zeros((4, 5)), np.zeros((4, 5), np.uint8), "uint8"),
        (np.zeros((4, 5)), np.zeros((4, 5)), np.full((4, 5), 127, np.uint8), "127"),
        (np.zeros((4, 5)), np.zeros((4, 5)), np.full((4, 5), 0.5), "0, 128 or 255"),
        (np.zeros((4, 5)), np.zeros((4, 5)), np.full((4, 5), -1), "0, 128 or 255"),
    ],
)
def test_invalid_inputs(pred, gt, trimap, message):
    with pytest.raises(ValueError, match=message):
        matting_metrics(pred, gt, trimap)


def test_invalid_protocol():
    with pytest.raises(ValueError, match="protocol"):
        matting_metrics(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2), np.uint8), "sad")


def test_trimap_other_dtypes_accepted():
    gt = structured_alpha(20, 20, 4)
    trimap = trimap_from(gt)
    pred = noisy_prediction(gt, 4)
    expected = matting_metrics(pred, gt, trimap)
    assert matting_metrics(pred, gt, trimap.astype(np.float32)) == expected
    assert matting_metrics(pred, gt, trimap.astype(np.int64)) == expected


def test_8bit_codes_compare_alike_in_float32_and_float64():
    """Why unknown-region results do not depend on numpy 1 vs 2 comparison rules for 8-bit
    inputs: no code k / 255 (float32) falls between a threshold and its float32 rounding."""
    codes = np.arange(256, dtype=np.float32) / 255.0
    for t in np.arange(0, 1.1, 0.1):
        assert np.array_equal(codes.astype(np.float64) >= t, codes >= np.float32(t))
