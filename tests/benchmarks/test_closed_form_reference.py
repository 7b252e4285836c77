"""python -m benchmarks.loss_policies --trimap-input: the trimap-guided config for every run,
and the classical reference rows (pymatting closed-form / KNN matting, benchmarks/closed_form.py)
computed from the same trimaps."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import closed_form
from benchmarks.loss_policies import cli as loss_policies


def two_colour_photos(root, count=2):
    """Images that are exact blends of two flat colours, so alpha is a linear function of the
    colour and closed-form matting must recover it."""
    records = []
    for sub in ("image", "alpha", "trimap"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        h, w = 48 + 8 * i, 64
        yy, xx = np.mgrid[:h, :w]
        alpha = np.clip(1.5 - np.hypot(yy - h / 2, xx - w / 2) / 10.0, 0, 1)
        alpha = np.rint(alpha * 255) / 255
        fg, bg = np.array([220.0, 200.0, 180.0]), np.array([20.0, 40.0, 60.0])
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        trimap = np.full((h, w), 128, np.uint8)
        trimap[alpha == 1] = 255
        trimap[alpha == 0] = 0
        names = {}
        arrays = (("image", image[:, :, ::-1]), ("alpha", alpha * 255), ("trimap", trimap))
        for sub, array in arrays:
            names[sub] = str(root / sub / f"p{i}.png")
            cv2.imwrite(names[sub], np.rint(array).astype(np.uint8))
        records.append(
            {
                "image_id": f"p{i}",
                "file_name": names["image"],
                "alpha_file_name": names["alpha"],
                "trimap_file_name": names["trimap"],
            }
        )
    return records


def test_closed_form_recovers_a_two_colour_blend_and_is_cached(tmp_path, monkeypatch):
    records = two_colour_photos(tmp_path / "real")
    out = tmp_path / "out"
    # KNN matting is left out to keep the test short (numba compiles each method on first use).
    methods = ("closed_form",)
    result = closed_form.closed_form_references(records, str(out), methods)
    assert set(result) == {"closed_form"}
    for method, r in result.items():
        assert len(r["rows"]) == 2 and r["seconds_per_image"] >= 0
        assert all(Path(p).is_file() for p in r["predictions"].values())
    # MSE-T: mean squared error on the unknown band; a linear colour model makes it ~0.
    assert max(row["MSE-T"] for row in result["closed_form"]["rows"]) < 1e-3
    # A second call reuses the written metrics instead of solving again.
    import pymatting

    def refuse(*args, **kwargs):
        raise AssertionError("solved again")

    monkeypatch.setattr(pymatting, "estimate_alpha_cf", refuse)
    again = closed_form.closed_form_references(records, str(out), methods)
    assert again["closed_form"]["rows"] == result["closed_form"]["rows"]
    # Other records are solved, not served from the cache.
    with pytest.raises(AssertionError, match="solved again"):
        closed_form.closed_form_references(records[:1], str(out), methods)


def test_trimap_input_runs_use_the_trimap_guided_config(tmp_path, capsys):
    two_colour_photos(tmp_path / "real")
    args = ["--dry-run", "--trimap-input", "--policies", "known", "known_ddc", "--output",
            str(tmp_path / "out"), "--real-dir", str(tmp_path / "real")]  # fmt: skip
    assert loss_policies.main(args) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if "_train_entry.py" in line]
    assert len(commands) == 8  # 2 policies x 2 seeds x (train, eval)
    assert all("configs/demo_ddc_trimap.py" in c for c in commands)
