"""Seeded trimap and mask labels from alpha mattes, and the tools/alpha_to_trimap.py CLI."""

import filecmp
import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from alphafree_d2.data.io import read_alpha, read_trimap
from alphafree_d2.data.trimap import (
    alpha_to_mask,
    alpha_to_trimap,
    generate_trimaps,
    mask_to_trimap,
    rng_for,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def alpha_folder(write, blob_alpha):
    """``alpha_folder(folder, count)``: ``count`` 96x128 mattes named img_<i>.png."""

    def make(folder, count=5):
        for i in range(count):
            write(os.path.join(folder, f"img_{i}.png"), blob_alpha(96, 128, seed=i))
        return folder

    return make


def _bytes(folder):
    return {
        n: open(os.path.join(folder, n), "rb").read()
        for n in sorted(os.listdir(folder))
        if n.endswith(".png")
    }


def test_rng_for_is_stable_across_processes_and_versions():
    # SHA-256 of the name, not the per-process salted hash(): pinned, since a change here would
    # silently change every generated label.
    assert rng_for(0, "GT02").integers(1 << 30) == 509709428
    assert rng_for(0, "GT02").integers(1 << 30) != rng_for(1, "GT02").integers(1 << 30)
    assert rng_for(0, "GT02").integers(1 << 30) != rng_for(0, "GT03").integers(1 << 30)


def test_known_pixels_agree_with_alpha_and_soft_pixels_are_unknown(tmp_path, write, blob_alpha):
    rng = np.random.default_rng(0)
    alpha = read_alpha(write(str(tmp_path / "a.png"), blob_alpha(120, 160)))
    alpha[rng.random(alpha.shape) < 0.01] = 0.5  # isolated soft pixels anywhere
    for seed in range(5):
        trimap = alpha_to_trimap(alpha, rng=rng_for(seed, "x"))
        assert set(np.unique(trimap)) <= {0, 128, 255}
        assert np.all(alpha[trimap == 255] == 1.0)
        assert np.all(alpha[trimap == 0] == 0.0)
        assert np.all(trimap[(alpha > 0) & (alpha < 1)] == 128)


def test_alpha_one_means_the_largest_code_of_the_bit_depth(tmp_path, write):
    alpha16 = np.zeros((40, 40), np.uint16)
    alpha16[5:35, 5:35] = 65535
    alpha16[18:22, 18:22] = 65534  # just below 1: unknown, not foreground
    alpha16[0, 0] = 1  # just above 0: unknown, not background
    alpha = read_alpha(write(str(tmp_path / "a16.png"), alpha16))
    trimap = alpha_to_trimap(alpha, kernel_size=1)
    assert np.all(trimap[18:22, 18:22] == 128)
    assert trimap[0, 0] == 128
    assert np.all(trimap[10:15, 10:15] == 255) and np.all(trimap[37:, 37:] == 0)
    alpha8 = read_alpha(write(str(tmp_path / "a8.png"), (alpha16 // 257).astype(np.uint8)))
    np.testing.assert_array_equal(alpha_to_trimap(alpha8, kernel_size=1)[10:15, 10:15], 255)


def test_larger_kernel_widens_the_unknown_band(blob_alpha):
    alpha = blob_alpha(200, 240).astype(np.float32) / 255
    previous = None
    for k in (1, 10, 20, 30):
        unknown = alpha_to_trimap(alpha, kernel_size=k) == 128
        if previous is not None:
            assert np.all(unknown >= previous)  # nested
            assert unknown.sum() > previous.sum()
        previous = unknown


def test_kernel_sizes_refer_to_the_640_px_reference(blob_alpha):
    alpha = cv2.resize(blob_alpha(160, 160), (1280, 1280), interpolation=cv2.INTER_LINEAR) / 255.0
    at_reference = alpha_to_trimap(alpha, kernel_size=15, reference_size=640)
    native = alpha_to_trimap(alpha, kernel_size=30, reference_size=None)
    np.testing.assert_array_equal(at_reference, native)


def test_random_kernels_follow_seed_and_name(blob_alpha):
    alpha = blob_alpha(200, 240).astype(np.float32) / 255
    same = [alpha_to_trimap(alpha, rng=rng_for(0, "a")) for _ in range(2)]
    np.testing.assert_array_equal(*same)
    others = [alpha_to_trimap(alpha, rng=rng_for(0, f"img_{i}")) for i in range(6)]
    assert len({t.tobytes() for t in others}) > 1


def test_mask_to_trimap_band_straddles_the_boundary():
    mask = np.zeros((100, 100), bool)
    mask[30:70, 30:70] = True
    trimap = mask_to_trimap(mask, kernel_size=9, reference_size=None)
    assert trimap[50, 50] == 255 and trimap[5, 5] == 0
    assert trimap[50, 30] == 128 and trimap[50, 29] == 128  # both sides of the edge
    assert trimap[50, 36] == 255 and trimap[50, 23] == 0


def test_alpha_to_mask_is_binary_and_seeded(blob_alpha):
    alpha = blob_alpha(200, 240).astype(np.float32) / 255
    masks = [alpha_to_mask(alpha, rng=rng_for(3, "m")) for _ in range(2)]
    np.testing.assert_array_equal(*masks)
    assert set(np.unique(masks[0])) <= {0, 255}
    assert 0 < (masks[0] == 255).mean() < 1


def test_generate_trimaps_is_byte_identical_whatever_the_workers(tmp_path, alpha_folder):
    alphas = alpha_folder(str(tmp_path / "alpha"))
    one = generate_trimaps(alphas, str(tmp_path / "w1"), seed=7, workers=1, progress=False)
    two = generate_trimaps(alphas, str(tmp_path / "w2"), seed=7, workers=2, progress=False)
    assert one == two == {"total": 5, "written": 5, "kept": 0}
    files1, files2 = _bytes(tmp_path / "w1"), _bytes(tmp_path / "w2")
    assert list(files1) == [f"img_{i}.png" for i in range(5)]
    assert files1 == files2
    assert len(set(files1.values())) == 5  # different images, different labels
    generate_trimaps(alphas, str(tmp_path / "s8"), seed=8, progress=False)
    assert _bytes(tmp_path / "s8") != files1
    trimap = read_trimap(str(tmp_path / "w1" / "img_0.png"))
    assert set(np.unique(cv2.imread(str(tmp_path / "w1" / "img_0.png"), cv2.IMREAD_UNCHANGED))) <= {
        0,
        128,
        255,
    }
    assert trimap.shape == (96, 128)


def test_generate_trimaps_does_not_depend_on_the_other_files(tmp_path, alpha_folder):
    alphas = alpha_folder(str(tmp_path / "alpha"), count=4)
    generate_trimaps(alphas, str(tmp_path / "all"), seed=1, progress=False)
    os.makedirs(tmp_path / "sub")
    os.rename(os.path.join(alphas, "img_2.png"), tmp_path / "sub" / "img_2.png")
    generate_trimaps(str(tmp_path / "sub"), str(tmp_path / "one"), seed=1, progress=False)
    assert filecmp.cmp(
        tmp_path / "all" / "img_2.png", tmp_path / "one" / "img_2.png", shallow=False
    )


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, write, alpha_folder):
    alphas = alpha_folder(str(tmp_path / "alpha"), count=3)
    out = str(tmp_path / "out")
    generate_trimaps(alphas, out, progress=False)
    marker = np.full((96, 128), 128, np.uint8)
    write(os.path.join(out, "img_0.png"), marker)
    os.remove(os.path.join(out, "img_1.png"))
    assert generate_trimaps(alphas, out, progress=False) == {"total": 3, "written": 1, "kept": 2}
    np.testing.assert_array_equal(read_trimap(os.path.join(out, "img_0.png")), marker)
    assert generate_trimaps(alphas, out, overwrite=True, progress=False)["written"] == 3
    assert not np.all(read_trimap(os.path.join(out, "img_0.png")) == 128)
    with pytest.raises(ValueError, match="generated with"):
        generate_trimaps(alphas, out, seed=5, progress=False)
    with open(os.path.join(out, "generation.json")) as f:
        assert json.load(f)["seed"] == 0


def test_generate_trimaps_errors(tmp_path, write, blob_alpha):
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no alpha mattes"):
        generate_trimaps(str(tmp_path / "empty"), str(tmp_path / "o"), progress=False)
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        generate_trimaps(str(tmp_path / "missing_dir"), str(tmp_path / "o"), progress=False)
    write(str(tmp_path / "dup" / "a.png"), blob_alpha())
    write(str(tmp_path / "dup" / "a.jpg"), blob_alpha())
    with pytest.raises(ValueError, match="stem 'a'"):
        generate_trimaps(str(tmp_path / "dup"), str(tmp_path / "o"), progress=False)


def _load_cli():
    spec = importlib.util.spec_from_file_location(
        "alpha_to_trimap", os.path.join(REPO, "tools", "alpha_to_trimap.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli(tmp_path, capsys, alpha_folder):
    cli = _load_cli()
    alphas = alpha_folder(str(tmp_path / "alpha"), count=3)
    assert (
        cli.main(
            [alphas, str(tmp_path / "t"), "--seed", "2", "--workers", "1", "--kernel-size", "10"]
        )
        == 0
    )
    assert (
        cli.main(
            [alphas, str(tmp_path / "t"), "--seed", "2", "--workers", "1", "--kernel-size", "10"]
        )
        == 0
    )
    assert "0 written, 3 existing kept" in capsys.readouterr().out
    for i in range(3):
        expected = alpha_to_trimap(read_alpha(os.path.join(alphas, f"img_{i}.png")), kernel_size=10)
        np.testing.assert_array_equal(read_trimap(str(tmp_path / "t" / f"img_{i}.png")), expected)
    assert cli.main([alphas, str(tmp_path / "m"), "--mask", "--workers", "2"]) == 0
    assert set(np.unique(read_trimap(str(tmp_path / "m" / "img_0.png")))) <= {0, 255}
    assert cli.main([str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "nowhere" in capsys.readouterr().err
