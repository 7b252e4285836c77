"""`import alphafree_d2` registers the plugin's parts with detectron2, and the install is sound."""

import importlib.metadata
import inspect
import subprocess
import sys

import detectron2
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.solver import get_default_optimizer_params

import alphafree_d2

BUILTIN_DATASETS = [
    "demo_train",
    "demo_val",
    "am2k_train",
    "am2k_val",
    "p3m10k_train",
    "p3m500np_val",
    "p3m500p_val",
]


def test_detectron2_is_a_known_distribution_and_recent_enough():
    assert importlib.metadata.version("detectron2") == detectron2.__version__
    assert "lr_factor_func" in inspect.signature(get_default_optimizer_params).parameters


def test_import_registers_datasets_and_meta_architecture():
    assert META_ARCH_REGISTRY.get("ViTMatte") is alphafree_d2.ViTMatte
    registered = DatasetCatalog.list()
    for name in BUILTIN_DATASETS:
        assert name in registered
        assert MetadataCatalog.get(name).evaluator_type == "matting"


def test_public_api():
    for name in [
        "MattingDatasetMapper",
        "register_matting_dataset",
        "MattingEvaluator",
        "matting_metrics",
        "MattingCriterion",
        "ddc_loss",
        "known_loss",
        "add_alphafree_config",
        "MattingPredictor",
    ]:
        assert callable(getattr(alphafree_d2, name)), name


def test_yacs_build_model():
    # Existing yacs-based detectron2 projects build the model through the registry.
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    alphafree_d2.add_alphafree_config(cfg)
    cfg.MODEL.META_ARCHITECTURE = "ViTMatte"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.VIT.DEPTH = 2
    cfg.MODEL.VIT.WINDOW_BLOCK_INDEXES = [0]
    cfg.MODEL.VIT.RESIDUAL_BLOCK_INDEXES = [1]
    model = build_model(cfg)
    assert isinstance(model, alphafree_d2.ViTMatte)
    assert model.criterion.losses == {"known": 1.0, "ddc": 10.0}


def test_import_is_quiet_and_leaves_the_warning_filters_alone():
    """`import alphafree_d2` prints none of the third-party deprecation notices of fvcore and
    detectron2's ViT, yet adds no FutureWarning filter, and a user's own FutureWarning still
    shows."""
    code = (
        "import warnings; before = list(warnings.filters); import alphafree_d2; "
        "added = [f for f in warnings.filters if f not in before and f[2] is FutureWarning]; "
        "assert not added, added; "
        "warnings.warn('users still see this', FutureWarning)"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "is deprecated" not in proc.stderr, proc.stderr
    assert "users still see this" in proc.stderr


def test_import_leaves_export_and_its_dependencies_unloaded():
    """`import alphafree_d2` loads neither the export modules (whose detectron2 check must not
    break training imports) nor the heavy optional libraries; the export names still resolve."""
    lazy = [
        "alphafree_d2.inference.export",
        "alphafree_d2.inference.vit_shapes",
        "onnx",
        "onnxruntime",
        "transformers",
    ]
    code = (
        f"import sys; import alphafree_d2; print([m for m in {lazy!r} if m in sys.modules]); "
        "from alphafree_d2.inference import export_onnx; "
        "print(export_onnx.__module__, 'alphafree_d2.inference.vit_shapes' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "alphafree_d2.inference.export True"]
