"""yacs configs: add_alphafree_config describes the LazyConfig model, built through detectron2."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detectron2.config import LazyConfig, get_cfg, instantiate
from detectron2.modeling import BACKBONE_REGISTRY, build_model

from alphafree_d2 import MattingDatasetMapper, ViTMatte, add_alphafree_config


def _cfg():
    cfg = get_cfg()
    add_alphafree_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def test_yacs_defaults_build_the_lazyconfig_model():
    lazy = LazyConfig.load(str(Path(__file__).resolve().parents[2] / "configs/common/model.py"))
    expected = instantiate(lazy.model)
    model = build_model(_cfg())
    assert isinstance(model, ViTMatte)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in expected.state_dict().items()}
    assert repr(model.criterion) == repr(expected.criterion)
    assert torch.equal(model.pixel_mean, expected.pixel_mean)
    assert torch.equal(model.pixel_std, expected.pixel_std)
    assert model.size_divisibility == expected.size_divisibility


def test_backbone_is_built_through_the_registry():
    assert "build_matting_vit_backbone" in BACKBONE_REGISTRY
    cfg = _cfg()
    cfg.MODEL.VIT.DEPTH, cfg.MODEL.VIT.EMBED_DIM, cfg.MODEL.VIT.NUM_HEADS = 2, 64, 2
    cfg.MODEL.VIT.WINDOW_BLOCK_INDEXES, cfg.MODEL.VIT.RESIDUAL_BLOCK_INDEXES = [0], [1]
    model = build_model(cfg)
    assert model.backbone.output_shape()["last_feat"].channels == 64
    assert model.decoder.in_feature == "last_feat"
    x = torch.zeros(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert model.predict_alpha(x).shape == (1, 1, 64, 64)


def test_trimap_input_builds_the_trimap_guided_model():
    lazy = LazyConfig.load(str(Path(__file__).resolve().parents[2] / "configs/demo_ddc_trimap.py"))
    cfg = _cfg()
    cfg.MODEL.VITMATTE.TRIMAP_INPUT = True
    cfg.MODEL.VIT.DEPTH, cfg.MODEL.VIT.EMBED_DIM, cfg.MODEL.VIT.NUM_HEADS = 2, 64, 2
    cfg.MODEL.VIT.WINDOW_BLOCK_INDEXES, cfg.MODEL.VIT.RESIDUAL_BLOCK_INDEXES = [0], [1]
    model = build_model(cfg)
    assert model.trimap_input and lazy.model.trimap_input
    assert model.backbone.patch_embed.proj.in_channels == 4
    model.eval()
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    trimap = torch.full((1, 64, 64), 0.5)
    trimap[:, :16] = 0.0
    trimap[:, -16:] = 1.0
    with torch.no_grad():
        (out,) = model([{"image": image, "trimap": trimap}])
    alpha = out["alpha"]
    assert alpha.shape == (1, 64, 64)
    assert torch.all(alpha[:, :16] == 0) and torch.all(alpha[:, -16:] == 1)


def test_loss_names_and_weights_must_pair_up():
    cfg = _cfg()
    cfg.MODEL.MATTING_LOSS.WEIGHTS = [1.0]
    with pytest.raises(ValueError, match="MODEL.MATTING_LOSS.NAMES"):
        build_model(cfg)


def test_mapper_crops_to_the_configured_size(tmp_path):
    cfg = _cfg()
    cfg.INPUT.CROP.SIZE = [96, 80]
    image, trimap = tmp_path / "image.png", tmp_path / "trimap.png"
    cv2.imwrite(str(image), np.full((120, 150, 3), 90, np.uint8))
    cv2.imwrite(str(trimap), np.full((120, 150), 128, np.uint8))
    record = {"file_name": str(image), "trimap_file_name": str(trimap), "height": 120, "width": 150}
    mapper = MattingDatasetMapper(cfg, is_train=True)
    torch.manual_seed(0)
    np.random.seed(0)
    for _ in range(3):
        assert mapper(record)["image"].shape == (3, 96, 80)


def test_yacs_model_defaults_are_read_from_the_lazyconfig_file(tmp_path, monkeypatch):
    from alphafree_d2 import config

    source = Path(config.MODEL_CONFIG).read_text()
    assert "embed_dim, depth, num_heads = 384, 12, 6" in source
    changed = tmp_path / "model.py"
    changed.write_text(
        source.replace("= 384, 12, 6", "= 192, 4, 3")
        + '\nmodel.criterion.losses = {"known": 1.0, "dc": 5.0}'
        + "\nmodel.decoder.conv_channels = [8, 16, 32]\n"
    )
    monkeypatch.setattr(config, "MODEL_CONFIG", str(changed))
    cfg = _cfg()
    assert (cfg.MODEL.VIT.EMBED_DIM, cfg.MODEL.VIT.DEPTH, cfg.MODEL.VIT.NUM_HEADS) == (192, 4, 3)
    assert cfg.MODEL.MATTING_LOSS.NAMES == ["known", "dc"]
    assert cfg.MODEL.MATTING_LOSS.WEIGHTS == [1.0, 5.0]
    assert cfg.MODEL.MATTING_DECODER.CONV_CHANNELS == [8, 16, 32]
    assert cfg.MODEL.MATTING_DECODER.FUSION_CHANNELS == [256, 128, 64, 32]  # DetailCapture's

    monkeypatch.setattr(config, "MODEL_CONFIG", str(tmp_path / "missing.py"))
    with pytest.raises(FileNotFoundError, match="pip install -e"):
        _cfg()
