"""Pretrained ViTMatte <-> our ViTMatte without transformers installed: the settings both ways,
refusals by name, the original release's key names, the trimap channel added exactly, safe
reading. (tests/hf checks the same against transformers itself.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from detectron2.config import LazyConfig, instantiate

from alphafree_d2.checkpoint.vitmatte import convert_original_vitmatte, set_input_channels
from alphafree_d2.checkpoint.vitmatte_config import (
    NotExportableError,
    compare_settings,
    format_overrides,
    settings_from_hf,
    vitmatte_fields,
)
from alphafree_d2.checkpoint.vitmatte_keys import from_hf_state_dict, rename, to_hf_state_dict
from alphafree_d2.engine import apply_overrides
from alphafree_d2.utils.testing import randomise, tiny_config

ROOT = Path(__file__).resolve().parents[2]


def tiny_cfg(tmp_path, in_chans=3, head_channels=16):
    path = tmp_path / f"tiny_{in_chans}_{head_channels}.py"
    path.write_text(tiny_config(in_chans, head_channels))
    return LazyConfig.load(str(path))


def tiny_model(tmp_path, in_chans=3, head_channels=16, seed=0):
    torch.manual_seed(seed)
    return randomise(instantiate(tiny_cfg(tmp_path, in_chans, head_channels).model), seed).eval()


# transformers' convert_vitmatte_to_hf.py builds hustvl/vitmatte-small-* with these settings.
VITMATTE_S = {
    "num_channels": 4,
    "image_size": 512,
    "pretrain_image_size": 224,
    "patch_size": 16,
    "hidden_size": 384,
    "num_attention_heads": 6,
    "num_hidden_layers": 12,
    "use_absolute_position_embeddings": True,
    "use_relative_position_embeddings": True,
    "window_size": 14,
    "window_block_indices": [0, 1, 3, 4, 6, 7, 9, 10],
    "residual_block_indices": [2, 5, 8, 11],
}


@pytest.mark.parametrize(
    "path",
    [
        "configs/demo_ddc_trimap.py",
        "configs/am2k_ddc_trimap.py",
        "configs/finetune_vitmatte_ddc.py",
    ],
)
def test_shipped_trimap_configs_export_as_they_are(path):
    fields = vitmatte_fields(instantiate(LazyConfig.load(str(ROOT / path)).model))
    assert fields["backbone"]["num_channels"] == 4
    if path.endswith("finetune_vitmatte_ddc.py"):
        assert {k: fields["backbone"][k] for k in VITMATTE_S} == VITMATTE_S
        assert fields["vitmatte"]["convstream_hidden_sizes"] == [48, 96, 192]
        assert fields["vitmatte"]["fusion_hidden_sizes"] == [256, 128, 64, 32]


@pytest.mark.parametrize(
    "change, named",
    [
        ({"decoder.head_channels": 8}, "model.decoder.head_channels=8"),
        ({"input_format": "BGR"}, "model.input_format='BGR'"),
        ({"backbone.patch_size": 8}, "model.backbone.patch_size=8"),
        ({"backbone.mlp_ratio": 2.5}, "model.backbone.mlp_ratio"),
        ({"backbone.act_layer": nn.ReLU}, "model.backbone.act_layer"),
        ({"size_divisibility": 24}, "model.size_divisibility=24"),
    ],
)
def test_settings_transformers_cannot_hold_are_refused_by_name(tmp_path, change, named):
    cfg = tiny_cfg(tmp_path)
    for key, value in change.items():
        node, _, leaf = ("model." + key).rpartition(".")
        target = cfg
        for part in node.split("."):
            target = target[part]
        target[leaf] = value
    with pytest.raises(NotExportableError) as e:
        vitmatte_fields(instantiate(cfg.model))
    assert named in str(e.value)


def test_settings_round_trip_through_overrides(tmp_path):
    """The transformers description of a model, read back as overrides of another config,
    gives the same network; an override missing shows up by name."""
    model = tiny_model(tmp_path, in_chans=4)
    fields = vitmatte_fields(model)
    config = {"model_type": "vitmatte", "backbone_config": fields["backbone"], **fields["vitmatte"]}
    settings = settings_from_hf(config, fields["processor"])
    assert settings["model.trimap_input"] is True
    assert settings["model.pixel_mean"] == [123.675, 116.28, 103.53]
    assert compare_settings(model, settings) == {}
    other = tiny_cfg(tmp_path, in_chans=4)
    other.model.backbone.window_size = 8
    other.model.pixel_mean = [127.5, 127.5, 127.5]
    other_model = instantiate(other.model)
    assert set(compare_settings(other_model, settings)) == {
        "model.backbone.window_size",
        "model.pixel_mean",
    }
    apply_overrides(other, format_overrides(settings))
    assert compare_settings(instantiate(other.model), settings) == {}


def test_transformers_configs_our_model_cannot_hold_are_refused():
    base = {"model_type": "vitmatte", "backbone_config": {"num_hidden_layers": 2}}
    with pytest.raises(NotExportableError, match="hidden_act 'relu'"):
        settings_from_hf({**base, "backbone_config": {"hidden_act": "relu"}})
    with pytest.raises(NotExportableError, match="batch_norm_eps"):
        settings_from_hf({**base, "batch_norm_eps": 1e-3})
    with pytest.raises(NotExportableError, match="rescale_factor"):
        settings_from_hf({**base, "backbone_config": {"num_channels": 4}}, {"rescale_factor": 1.0})


def test_an_earlier_output_stage_becomes_a_shallower_vit():
    config = {
        "model_type": "vitmatte",
        "backbone_config": {
            "num_hidden_layers": 12,
            "out_features": ["stage4"],
            "window_block_indices": [0, 1, 3, 4, 6, 7, 9, 10],
            "residual_block_indices": [2, 5, 8, 11],
        },
    }
    settings = settings_from_hf(config, {"image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    assert settings["model.backbone.depth"] == 4
    assert settings["model.backbone.window_block_indexes"] == [0, 1, 3]
    assert settings["model.backbone.residual_block_indexes"] == [2]
    assert settings["model.pixel_mean"] == settings["model.pixel_std"] == [127.5] * 3


def _hf_conversion_script_name(key):
    """original -> transformers, as transformers' convert_vitmatte_to_hf.py renames (plus the
    BatchNorm attribute, "bn" there, "batch_norm" in transformers' modules)."""
    stem = {
        "backbone.pos_embed": "backbone.embeddings.position_embeddings",
        "backbone.patch_embed.proj.weight": "backbone.embeddings.projection.weight",
        "backbone.patch_embed.proj.bias": "backbone.embeddings.projection.bias",
    }
    if key in stem:
        return stem[key]
    key = key.replace("backbone.blocks", "backbone.encoder.layer").replace("attn", "attention")
    return key.replace("fusion_blks", "fusion_blocks").replace(".bn.", ".batch_norm.")


def test_original_release_names_agree_with_the_transformers_conversion(tmp_path):
    model = tiny_model(tmp_path, in_chans=4)
    state = model.state_dict()
    original = {rename(k, "ours", "original"): k for k in state}
    # Names from hustvl/ViTMatte's modules (Detail_Capture: convstream.convs[i].{conv,bn},
    # fusion_blks[i].conv.{conv,bn}, matting_head.matting_convs[0..3]; detectron2's ViT).
    for name in (
        "decoder.convstream.convs.0.conv.weight",
        "decoder.convstream.convs.2.bn.running_var",
        "decoder.fusion_blks.3.conv.conv.weight",
        "decoder.fusion_blks.0.conv.bn.bias",
        "decoder.matting_head.matting_convs.3.bias",
        "backbone.blocks.1.residual.norm3.weight",
        "backbone.blocks.0.attn.rel_pos_h",
    ):
        assert name in original, name
    hf, unknown = to_hf_state_dict(state)
    assert not unknown
    assert {_hf_conversion_script_name(o) for o in original} == set(hf)
    back, unknown = from_hf_state_dict(hf)
    assert not unknown and back.keys() == state.keys()
    assert all(back[k] is state[k] for k in state)


def test_position_embedding_without_class_token_gets_a_zero_row():
    pos = torch.randn(1, 16, 8)
    hf, _ = to_hf_state_dict({"backbone.pos_embed": pos}, cls_token=False)
    row = hf["backbone.embeddings.position_embeddings"]
    assert row.shape == (1, 17, 8) and not row[:, 0].any() and torch.equal(row[:, 1:], pos)
    back, _ = from_hf_state_dict(hf, cls_token=False)
    assert torch.equal(back["backbone.pos_embed"], pos)


@torch.no_grad()
def test_a_trimap_channel_added_to_an_automatic_model_changes_nothing(tmp_path):
    three = tiny_model(tmp_path, in_chans=3)
    four = instantiate(tiny_cfg(tmp_path, in_chans=4).model).eval()
    four.load_state_dict(set_input_channels(three.state_dict(), 4), strict=True)
    x = torch.randn(2, 4, 64, 96)
    expected = three.decode(three.encode(x[:, :3]), x[:, :3])
    got = four.decode(four.encode(x), x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="trimap-guided"):
        set_input_channels(four.state_dict(), 3)


@torch.no_grad()
def test_original_release_checkpoint_converts_to_the_same_model(tmp_path):
    model = tiny_model(tmp_path, in_chans=4)
    original = {rename(k, "ours", "original"): v for k, v in model.state_dict().items()}
    path = tmp_path / "ViTMatte_S_Com.pth"
    torch.save({"model": original, "iteration": 10, "optimizer": {"state": {}}}, path)
    state, report = convert_original_vitmatte(str(path))
    assert report["converted"] == len(original)
    fresh = instantiate(tiny_cfg(tmp_path, in_chans=4).model).eval()
    fresh.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 70, 50) * 255
    t = torch.full((1, 1, 70, 50), 0.5)
    assert torch.equal(fresh.predict_alpha(x, t), model.predict_alpha(x, t))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_that_would_run_code_are_refused(tmp_path):
    marker = tmp_path / "code_ran"
    bad = tmp_path / "ViTMatte_S_Com.pth"
    torch.save({"model": {"backbone.pos_embed": torch.zeros(1)}, "x": _RunsCode(marker)}, bad)
    with pytest.raises(ValueError, match="ViTMatte_S_Com.pth: refused to load.*system"):
        convert_original_vitmatte(str(bad))
    assert not marker.exists()


def test_the_package_and_the_conversion_do_not_import_transformers():
    code = (
        "import sys, alphafree_d2, alphafree_d2.checkpoint.vitmatte; "
        "loaded = [m for m in ('transformers', 'alphafree_d2.inference.hf') "
        "if m in sys.modules]; print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
