"""Export: the size-generic ViT helpers equal detectron2's, and TorchScript / ONNX files give
predict_alpha's output at sizes other than the export size."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from detectron2.modeling.backbone import vit

from alphafree_d2.inference.export import (
    MattingExportModule,
    compare_onnx,
    compare_torchscript,
    export_onnx,
    export_torchscript,
    random_images,
)
from alphafree_d2.inference.vit_shapes import size_generic_vit
from alphafree_d2.utils.testing import load_script

ROOT = Path(__file__).resolve().parents[2]
# Tokens of the tiny model: window 4 (padding when the grid is not a multiple of 4), relative
# positions resized for every grid but 8x8, position embedding resized for every grid but 4x4.
SIZES = [(64, 64), (128, 128), (96, 160), (50, 70), (33, 200)]


@torch.no_grad()
def test_size_generic_helpers_equal_detectron2(tiny):
    model = tiny.model
    originals = (vit.window_partition, vit.add_decomposed_rel_pos, vit.get_abs_pos)
    for i, size in enumerate(SIZES):
        x = random_images(size, torch.float32, seed=i)
        expected = model.predict_alpha(x)
        with size_generic_vit(model):
            assert vit.window_partition is not originals[0]
            got = model.predict_alpha(x)
        assert torch.equal(got, expected), size
        assert torch.equal(MattingExportModule(model)(x.to(torch.uint8)), expected), size
    assert (vit.window_partition, vit.add_decomposed_rel_pos, vit.get_abs_pos) == originals


class _PredictAlpha(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model.predict_alpha(images)


@torch.no_grad()
def test_predict_alpha_traces_for_every_size(tiny):
    # Its padding has no Python branch on the size: a trace at a size that needs no padding
    # pads at sizes that do.
    model = tiny.model
    with size_generic_vit(model):
        traced = torch.jit.trace(_PredictAlpha(model), random_images((64, 96), torch.float32))
    for i, size in enumerate([(70, 50), (33, 200)]):
        x = random_images(size, torch.float32, seed=i)
        torch.testing.assert_close(traced(x), model.predict_alpha(x), atol=1e-5, rtol=0)


def test_torchscript_round_trip(tiny, tmp_path):
    path = tmp_path / "model.torchscript.pt"
    example = random_images((64, 96))
    export_torchscript(tiny.model, str(path), example)
    loaded = torch.jit.load(str(path))
    sizes = [(70, 50), (160, 96)]
    for diffs in (
        compare_torchscript(tiny.model, loaded, sizes),
        compare_torchscript(tiny.model, loaded, sizes, dtype=torch.float32, batch=2),
    ):
        assert set(diffs) == {"70x50", "160x96"}
        assert max(diffs.values()) < 1e-5, diffs


def test_onnx_legacy_exporter_round_trip(tiny, tmp_path):
    path = tmp_path / "model.onnx"
    export_onnx(tiny.model, str(path), random_images((64, 96)), opset=17, exporter="torchscript")
    diffs = compare_onnx(tiny.model, str(path), [(70, 50), (160, 96)], batch=2)
    assert max(diffs.values()) < 1e-5, diffs
    with pytest.raises(ValueError, match="opset"):
        export_onnx(tiny.model, str(path), random_images((64, 96)), opset=16)


@pytest.mark.slow
def test_export_tool_dynamo_onnx_and_torchscript(tiny, tmp_path):
    tool = load_script("tools/export.py")
    out = tmp_path / "export"
    code = tool.main(
        [
            "--config-file",
            tiny.config_file,
            "--output",
            str(out),
            "--format",
            "both",
            "--export-size",
            "96x128",
            "--check-sizes",
            "70x50",
            "160x96",
            f"train.init_checkpoint={tiny.checkpoint}",
        ]
    )
    assert code == 0
    report = json.loads((out / "export.json").read_text())
    assert report["onnx_exporter"] == "dynamo" and report["onnx_opset"] >= 17
    for backend in ("torchscript", "onnxruntime_cpu"):
        diffs = report["max_abs_diff"][backend]
        assert set(diffs) == {"70x50", "160x96"} and max(diffs.values()) < 1e-5, diffs
    # The ONNX graph has dynamic batch, height and width.
    import onnx

    dims = onnx.load(str(out / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]
    assert np.isfinite(list(report["max_abs_diff"]["onnxruntime_cpu"].values())).all()
