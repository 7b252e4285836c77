"""A transformers ViTMatte (built and saved by transformers itself) -> our checkpoint: the
printed settings make our config the same network, and it computes transformers' alpha."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.vitmatte import convert_hf_vitmatte
from alphafree_d2.checkpoint.vitmatte_config import format_overrides
from alphafree_d2.engine import apply_overrides
from alphafree_d2.inference import hf as bridge
from alphafree_d2.inference.export import random_images, random_trimaps, snap_trimaps

pytest.importorskip("transformers")
from transformers import VitMatteImageProcessor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZES = [(64, 96), (77, 101)]


def our_model(tiny_config_path, settings):
    cfg = LazyConfig.load(str(tiny_config_path))
    apply_overrides(cfg, format_overrides(settings))
    return instantiate(cfg.model).eval()


@pytest.mark.parametrize("chans, out_stage", [(4, 3), (3, 3), (4, 2)])
def test_a_transformers_model_converts_to_the_same_network(
    tiny_configs, tmp_path, save_random_hf, chans, out_stage
):
    folder = tmp_path / "hf"
    hf_model = save_random_hf(folder, chans, out_stage)
    state, settings, report = convert_hf_vitmatte(str(folder))
    assert settings["model.backbone.depth"] == out_stage  # blocks after the decoded one: unused
    assert report["dropped_blocks"] == list(range(out_stage, 3))
    assert settings["model.pixel_mean"] == [127.5] * 3 and settings["model.trimap_input"] == (
        chans == 4
    )
    model = our_model(tiny_configs[chans], settings)
    model.load_state_dict(state, strict=True)

    numbers = bridge.compare_with_hf(
        model, hf_model, VitMatteImageProcessor.from_pretrained(folder), SIZES
    )
    for n in numbers.values():
        assert n["tensor"] <= 1e-5 and n["band"] <= 1e-3, numbers
        assert n.get("band_127.5", 0.0) <= 1e-5, numbers
    # Directly, on an odd size: our predict_alpha vs the processor + transformers' model.
    images, trimaps = random_images((45, 70), seed=3), random_trimaps((45, 70), seed=3)
    with torch.no_grad():
        ours = model.predict_alpha(images.float(), snap_trimaps(trimaps) if chans == 4 else None)
        inputs = VitMatteImageProcessor.from_pretrained(folder)(
            images=images[0].permute(1, 2, 0).numpy(),
            trimaps=trimaps[0, 0].numpy(),
            return_tensors="pt",
        )
        theirs = hf_model(pixel_values=inputs["pixel_values"][:, :chans]).alphas[:, :, :45, :70]
    band = trimaps == 128
    assert (ours - theirs).abs()[band].mean() <= 1e-3


def test_a_bin_file_beside_its_config_converts_like_the_folder(tmp_path, save_random_hf):
    folder = tmp_path / "hf"
    model = save_random_hf(folder)
    # Older hub repositories hold pytorch_model.bin (transformers 5 writes only safetensors).
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    torch.save(model.state_dict(), bin_folder / "pytorch_model.bin")
    shutil.copy(folder / "config.json", bin_folder / "config.json")
    from_folder, _, _ = convert_hf_vitmatte(str(folder))
    from_bin, settings, report = convert_hf_vitmatte(str(bin_folder / "pytorch_model.bin"))
    assert from_folder.keys() == from_bin.keys()
    assert all(torch.equal(from_folder[k], from_bin[k]) for k in from_folder)
    assert report["processor"] is None and "model.pixel_mean" not in settings


def tool(*args):
    cmd = [sys.executable, str(ROOT / "tools/convert_pretrained.py"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.slow
def test_convert_tool_in_chans_4_and_config_check(tiny_configs, tmp_path, save_random_hf):
    """An automatic transformers model made trimap-guided (--in-chans 4) and checked against a
    config: the overrides it needs are named, and with them the config's model computes
    transformers' alpha (on the image channels)."""
    folder = tmp_path / "hf"
    save_random_hf(folder, chans=3, depth=2, out_stage=2, window=8)
    done = tool("--format", "hf-vitmatte", "--in-chans", "4", folder, tmp_path / "x.pth",
                "--config-file", tiny_configs[4], "--check-sizes", "64x96", "77x101")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    added = done.stdout.split(f"with {tiny_configs[4]} add:\n")[1].splitlines()[0].split()
    # The tiny config differs in window size and normalisation.
    assert sorted(added) == [
        "model.backbone.window_size=8",
        "model.pixel_mean=[127.5,127.5,127.5]",
        "model.pixel_std=[127.5,127.5,127.5]",
    ]
    assert "77x101  same input tensor: max |diff|" in done.stdout
    assert (tmp_path / "x.pth").is_file()
    # With those overrides, nothing is left to add.
    matching = tmp_path / "matching.py"
    lines = [f"{a.split('=')[0]} = {a.split('=')[1]}" for a in added]
    matching.write_text(
        tiny_configs[4].read_text() + "\n".join(lines).replace("true", "True") + "\n"
    )
    done = tool("--format", "hf-vitmatte", "--in-chans", "4", folder, tmp_path / "y.pth",
                "--config-file", matching, "--check-sizes", "64x96")  # fmt: skip
    assert done.returncode == 0 and " add:" not in done.stdout, done.stdout + done.stderr
    # The checkpoint never replaces an input of the conversion, --overwrite or not.
    weights = (folder / "model.safetensors").read_bytes()
    done = tool("--format", "hf-vitmatte", folder, folder / "model.safetensors", "--overwrite")
    assert done.returncode == 1 and "is an input of the conversion" in done.stderr
    assert (folder / "model.safetensors").read_bytes() == weights
    # A trimap-guided model cannot lose its trimap channel.
    save_random_hf(tmp_path / "hf4", chans=4)
    done = tool("--format", "hf-vitmatte", "--in-chans", "3", tmp_path / "hf4", tmp_path / "z.pth")
    assert (
        done.returncode == 1 and done.stderr.startswith("error:") and "trimap-guided" in done.stderr
    )
    assert "Traceback" not in done.stderr
