"""Foreground colours, RGBA cutouts, composites and colour parsing."""

import numpy as np
import pytest

from alphafree_d2.inference.foreground import (
    composite,
    estimate_foreground,
    make_cutout,
    parse_color,
)


def blend_scene(h=48, w=64):
    """A red foreground over a blue background with a soft vertical edge."""
    alpha = np.tile(np.clip((np.arange(w) - 20) / 24.0, 0, 1), (h, 1)).astype(np.float32)
    fg = np.zeros((h, w, 3), np.float32)
    fg[..., 0] = 1.0
    bg = np.zeros((h, w, 3), np.float32)
    bg[..., 2] = 1.0
    image = np.round((alpha[..., None] * fg + (1 - alpha[..., None]) * bg) * 255).astype(np.uint8)
    return image, alpha, fg


def test_estimated_foreground_removes_the_old_background():
    image, alpha, fg = blend_scene()
    estimate = estimate_foreground(image, alpha)
    assert estimate.shape == image.shape and estimate.dtype == np.float32
    mixed = (alpha > 0.2) & (alpha < 0.8)
    # The photo's colour at the soft edge is half blue; the estimate is (nearly) pure red.
    assert (image[mixed][:, 2] / 255.0).mean() > 0.2
    assert np.abs(estimate[mixed] - fg[mixed]).mean() < 0.05


def test_cutout_is_rgba_with_alpha():
    image, alpha, _ = blend_scene()
    cutout = make_cutout(estimate_foreground(image, alpha), alpha)
    assert cutout.shape == (*alpha.shape, 4) and cutout.dtype == np.uint8
    np.testing.assert_array_equal(cutout[..., 3], np.round(alpha * 255).astype(np.uint8))


def test_composite_over_colour_and_image():
    image, alpha, fg = blend_scene()
    out = composite(fg, alpha, (0, 255, 0))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[alpha == 0], [[0, 255, 0]] * int((alpha == 0).sum()))
    np.testing.assert_array_equal(out[alpha == 1], [[255, 0, 0]] * int((alpha == 1).sum()))
    background = np.full((10, 7, 3), 200, np.uint8)  # resized to the image size
    out = composite(fg, alpha, background)
    assert out.shape == image.shape
    assert (out[alpha == 0] == 200).all()


def test_parse_color(tmp_path):
    assert parse_color("white") == (255, 255, 255)
    assert parse_color("#00FF80") == (0, 255, 128)
    assert parse_color("0, 128,255") == (0, 128, 255)
    assert parse_color(str(tmp_path / "background.jpg")) is None  # an image path, not a colour
    with pytest.raises(ValueError, match="not a colour"):
        parse_color("#12345")
    with pytest.raises(ValueError, match="not a colour"):
        parse_color("0,300,0")
