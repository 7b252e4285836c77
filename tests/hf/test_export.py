"""Our ViTMatte -> a transformers folder: it loads offline with from_pretrained and computes our
alpha (same tensor, each side's own preprocessing, and back), for 3 and 4 channels and sizes
that are not multiples of 32; what transformers cannot hold is refused by name."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.vitmatte_config import NotExportableError
from alphafree_d2.inference import hf as bridge
from alphafree_d2.inference.export import random_images, random_trimaps, snap_trimaps
from alphafree_d2.utils.testing import load_script

transformers = pytest.importorskip("transformers")
from transformers import VitMatteForImageMatting, VitMatteImageProcessor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZES = [(64, 96), (77, 101)]  # the second is not a multiple of 32 (padding on both sides)


def _tool():
    return load_script("tools/export.py")


def _user_alpha(folder, image, trimap):
    """What a transformers user writes: processor, model, crop to the image (transformers'
    model takes the processor's 4 channels, or the first 3 for an automatic model)."""
    model = VitMatteForImageMatting.from_pretrained(folder, local_files_only=True).eval()
    processor = VitMatteImageProcessor.from_pretrained(folder, local_files_only=True)
    inputs = processor(images=image, trimaps=trimap, return_tensors="pt")
    chans = model.config.backbone_config.num_channels
    with torch.no_grad():
        alphas = model(pixel_values=inputs["pixel_values"][:, :chans]).alphas
    return alphas[0, 0, : image.shape[0], : image.shape[1]]


@pytest.mark.parametrize("chans", [3, 4])
def test_exported_folder_loads_offline_and_gives_our_alpha(tiny_models, tmp_path, chans):
    model = tiny_models[chans]
    folder = tmp_path / "hf"
    report = bridge.export_hf_checked(model, str(folder), SIZES)
    assert sorted(p.name for p in folder.iterdir()) == sorted(bridge.HF_FILES)
    assert report["ok"], report
    for size in ("64x96", "77x101"):
        numbers = report["numbers"][size]
        assert numbers["tensor"] <= 1e-5 and numbers["band"] <= 1e-3, numbers
        if chans == 4:
            assert numbers["band_127.5"] <= 1e-5, numbers
        assert numbers["roundtrip"] == 0.0
    config = json.loads((folder / "config.json").read_text())
    backbone = config["backbone_config"]
    assert (backbone["num_channels"], backbone["window_size"], backbone["image_size"]) == (
        chans,
        4,
        128,
    )
    assert (backbone["window_block_indices"], backbone["residual_block_indices"]) == ([0], [1])
    assert backbone["pretrain_image_size"] == 64 and backbone["use_relative_position_embeddings"]
    assert config["fusion_hidden_sizes"] == [16, 16, 8, 8]
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    np.testing.assert_allclose(np.array(processor["image_mean"]) * 255, [123.675, 116.28, 103.53])

    # Independently of the bridge's own comparison: a user's transformers code on an odd size.
    images = random_images((61, 83), seed=7)
    trimaps = random_trimaps((61, 83), seed=7)
    image = images[0].permute(1, 2, 0).numpy()
    trimap = trimaps[0, 0].numpy()
    theirs = _user_alpha(str(folder), image, trimap)
    with torch.no_grad():
        ours = model.predict_alpha(images.float(), snap_trimaps(trimaps) if chans == 4 else None)
    band = torch.from_numpy(trimap == 128)
    diff = (ours[0, 0] - theirs).abs()
    assert diff[band].mean() <= 1e-3
    if chans == 3:  # no trimap in the input: only float rounding differs, everywhere
        assert diff.max() <= 1e-5


def test_the_processor_always_adds_a_trimap_channel(tiny_models, tmp_path):
    """For an automatic model transformers' processor still appends the trimap: the model
    refuses that input; its first 3 channels are the model's input."""
    folder = tmp_path / "hf3"
    bridge.export_hf(tiny_models[3], str(folder))
    model, processor = bridge.load_hf(str(folder))
    image = random_images((64, 64))[0].permute(1, 2, 0).numpy()
    pixel_values = processor(
        images=image, trimaps=np.zeros((64, 64), np.uint8), return_tensors="pt"
    )["pixel_values"]
    assert pixel_values.shape[1] == 4
    with pytest.raises(ValueError, match="Expected 3 but got 4"):
        model(pixel_values=pixel_values)
    assert model(pixel_values=pixel_values[:, :3]).alphas.shape == (1, 1, 64, 64)


def test_a_vit_without_class_token_row_exports_exactly(tiny_configs, tmp_path):
    cfg = LazyConfig.load(str(tiny_configs[4]))
    cfg.model.backbone.pretrain_use_cls_token = False
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    with torch.no_grad():
        model.backbone.pos_embed.normal_()
    report = bridge.export_hf_checked(model, str(tmp_path / "hf"), SIZES[1:])
    assert report["ok"] and report["numbers"]["77x101"]["tensor"] <= 1e-5, report


def test_export_tool_writes_the_folder_and_checks_it(tiny_configs, tmp_path, monkeypatch, capsys):
    tool = _tool()
    out = tmp_path / "export"
    args = ["--config-file", str(tiny_configs[4]), "--output", str(out), "--format", "hf",
            "--random-init", "--check-sizes", "70x50", "96x128"]  # fmt: skip
    assert tool.main(args) == 0
    printed = capsys.readouterr().out
    assert "same input tensor: max |diff|" in printed and "unknown band: mean" in printed
    report = json.loads((out / "export.json").read_text())
    assert report["ok"] and set(report["numbers"]) == {"70x50", "96x128"}
    # A second export into the same folder would overwrite another model's files: refused.
    assert tool.main(args) == 2
    assert "already holds config.json" in capsys.readouterr().err
    # Above a limit the exit status is 1.
    monkeypatch.setattr(bridge, "TENSOR_TOLERANCE", -1.0)
    assert tool.main([*args[:3], str(tmp_path / "export2"), *args[4:]]) == 1


def test_export_tool_refuses_a_head_transformers_cannot_hold(tiny_configs, tmp_path, capsys):
    args = ["--config-file", str(tiny_configs[4]), "--output", str(tmp_path / "x"), "--format",
            "hf", "--random-init", "model.decoder.head_channels=8"]  # fmt: skip
    assert _tool().main(args) == 2
    err = capsys.readouterr().err
    assert "model.decoder.head_channels=8" in err and "VitMatteHead" in err
    assert not (tmp_path / "x" / "config.json").exists()


def test_a_model_transformers_cannot_hold_is_never_written(tiny_configs, tmp_path):
    cfg = LazyConfig.load(str(tiny_configs[3]))
    cfg.model.input_format = "BGR"
    with pytest.raises(NotExportableError, match="input_format"):
        bridge.export_hf(instantiate(cfg.model), str(tmp_path / "bgr"))
    assert not (tmp_path / "bgr").exists()
