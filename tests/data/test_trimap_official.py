"""Trimap labels as the official alpha2trimap.py makes them (--official)."""

import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from alphafree_d2.data.io import read_alpha, read_trimap
from alphafree_d2.data.trimap import (
    OFFICIAL_INTERPOLATIONS,
    alpha_to_trimap_official,
    draw_official_trimap_params,
    generate_trimaps,
    official_trimap,
    rng_for,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _reference(alpha_uint8, interpolation, fg_size, bg_size):
    """The script's steps, written plainly: codes / 255, 640 x 640 resize, int() thresholds,
    separate erosions with k x k ellipses, 128 elsewhere, nearest back."""
    h, w = alpha_uint8.shape
    alpha = cv2.resize(alpha_uint8 / 255.0, (640, 640), interpolation=interpolation)
    fg = (alpha + 1e-5).astype(int).astype(np.uint8)
    bg = (1 - alpha + 1e-5).astype(int).astype(np.uint8)
    ellipse = lambda k: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))  # noqa: E731
    fg = cv2.erode(fg, ellipse(fg_size))
    bg = cv2.erode(bg, ellipse(bg_size))
    trimap = np.ones_like(alpha) * 128
    trimap[fg == 1] = 255
    trimap[bg == 1] = 0
    return cv2.resize(trimap, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.uint8)


def _matte(rng, h, w):
    """A soft-edged blob: exact 0 and 255 regions with a band of intermediate codes."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h * rng.uniform(0.3, 0.7)) / h, (xx - w * rng.uniform(0.3, 0.7)) / w)
    return np.clip((0.3 - r) * rng.uniform(1500, 3000), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("interpolation", OFFICIAL_INTERPOLATIONS)
def test_equals_the_script_step_by_step(interpolation):
    rng = np.random.default_rng(interpolation)
    for h, w, fg_size, bg_size in ((96, 128, 1, 29), (700, 500, 29, 2), (640, 640, 14, 15)):
        alpha8 = _matte(rng, h, w)
        ours = official_trimap(
            read_alpha_like(alpha8), interpolation=interpolation, fg_size=fg_size, bg_size=bg_size
        )
        np.testing.assert_array_equal(ours, _reference(alpha8, interpolation, fg_size, bg_size))
        assert set(np.unique(ours)) <= {0, 128, 255} and {0, 128, 255} <= set(np.unique(ours))


def read_alpha_like(alpha8):
    return alpha8.astype(np.float32) / 255.0  # what read_alpha returns for an 8-bit file


def test_kernel_range_and_interpolations_are_respected():
    draws = [draw_official_trimap_params(rng_for(0, f"img_{i}")) for i in range(400)]
    sizes = [d["fg_size"] for d in draws] + [d["bg_size"] for d in draws]
    assert min(sizes) == 1 and max(sizes) == 29  # randint(1, 30): 30 never drawn
    assert {d["interpolation"] for d in draws} == set(OFFICIAL_INTERPOLATIONS)
    narrow = [draw_official_trimap_params(rng_for(0, str(i)), (5, 7)) for i in range(100)]
    assert {d["fg_size"] for d in narrow} == {d["bg_size"] for d in narrow} == {5, 6, 7}
    # a wider kernel never shrinks the unknown band of a 640 x 640 matte (no resampling there)
    alpha = read_alpha_like(_matte(np.random.default_rng(0), 640, 640))
    bands = [
        (official_trimap(alpha, interpolation=cv2.INTER_LINEAR, fg_size=k, bg_size=k) == 128).sum()
        for k in (1, 9, 19, 29)
    ]
    assert bands == sorted(bands) and bands[0] < bands[-1]


def test_seeded_per_file(tmp_path, write):
    alpha = read_alpha_like(_matte(np.random.default_rng(1), 120, 90))
    a = alpha_to_trimap_official(alpha, rng=rng_for(3, "x"))
    np.testing.assert_array_equal(a, alpha_to_trimap_official(alpha, rng=rng_for(3, "x")))
    fixed = alpha_to_trimap_official(alpha, rng=rng_for(3, "x"), kernel_size=10)
    params = draw_official_trimap_params(rng_for(3, "x"))
    np.testing.assert_array_equal(
        fixed, official_trimap(alpha, interpolation=params["interpolation"], fg_size=10, bg_size=10)
    )


def test_generate_official_is_byte_identical_for_a_seed(tmp_path, write):
    rng = np.random.default_rng(2)
    for i in range(4):
        write(str(tmp_path / "alpha" / f"img_{i}.png"), _matte(rng, 80 + 8 * i, 100))
    alphas = str(tmp_path / "alpha")

    def run(name, **kw):
        generate_trimaps(alphas, str(tmp_path / name), progress=False, **kw)
        folder = tmp_path / name
        names = sorted(n for n in os.listdir(folder) if n != "generation.json")
        return {n: (folder / n).read_bytes() for n in names}

    one = run("w1", seed=7, official=True, workers=1)
    assert one == run("w2", seed=7, official=True, workers=2)
    assert one != run("s8", seed=8, official=True)
    assert one != run("ours", seed=7)
    with open(tmp_path / "w1" / "generation.json") as f:
        params = json.load(f)
    assert params["mode"] == "trimap_official" and params["kernel_size_range"] == [1, 29]
    for i in range(4):
        expected = alpha_to_trimap_official(
            read_alpha(os.path.join(alphas, f"img_{i}.png")), rng=rng_for(7, f"img_{i}")
        )
        np.testing.assert_array_equal(read_trimap(str(tmp_path / "w1" / f"img_{i}.png")), expected)
    with pytest.raises(ValueError, match="official"):
        generate_trimaps(alphas, str(tmp_path / "bad"), official=True, mask=True, progress=False)


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_and_prepare_script(tmp_path, write, capsys):
    rng = np.random.default_rng(3)
    for i in range(2):
        write(str(tmp_path / "AM-2K/train/mask" / f"m{i}.png"), _matte(rng, 64, 80))
    alphas = str(tmp_path / "AM-2K/train/mask")
    cli = _load(("tools", "alpha_to_trimap.py"), "alpha_to_trimap")
    args = ["--official", "--seed", "4", "--workers", "1"]
    assert cli.main([alphas, str(tmp_path / "t"), *args]) == 0
    for i in range(2):
        expected = alpha_to_trimap_official(
            read_alpha(os.path.join(alphas, f"m{i}.png")), rng=rng_for(4, f"m{i}")
        )
        np.testing.assert_array_equal(read_trimap(str(tmp_path / "t" / f"m{i}.png")), expected)
    assert cli.main([alphas, str(tmp_path / "u"), "--official", "--reference-size", "320"]) == 2
    assert "--reference-size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([alphas, str(tmp_path / "v"), "--official", "--mask"])

    prepare = _load(("datasets", "prepare_matting_trimaps.py"), "prepare")
    assert prepare.main(["am2k", "--root", str(tmp_path), *args]) == 0
    out = tmp_path / "AM-2K/train/trimap_generated_official"
    assert sorted(os.listdir(out)) == ["generation.json", "m0.png", "m1.png"]
    assert (out / "m0.png").read_bytes() == (tmp_path / "t" / "m0.png").read_bytes()
