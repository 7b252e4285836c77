"""vit_shapes refuses to run against a detectron2 whose ViT no longer has what it replaces: when
an export enters :func:`size_generic_vit`, not at import."""

import pytest
import torch

from detectron2.modeling.backbone import vit

from alphafree_d2.inference import vit_shapes


def test_current_detectron2_passes_the_check():
    vit_shapes._check_detectron2_vit()


def test_a_removed_function_is_an_import_error(monkeypatch):
    monkeypatch.delattr(vit, "window_partition")
    with pytest.raises(ImportError, match="window_partition is not defined"):
        vit_shapes._check_detectron2_vit()


def test_a_changed_signature_is_an_import_error(monkeypatch):
    monkeypatch.setattr(vit, "get_abs_pos", lambda abs_pos, hw: abs_pos)
    with pytest.raises(ImportError, match="get_abs_pos.*no longer takes"):
        vit_shapes._check_detectron2_vit()


def test_a_caller_that_stopped_using_the_name_is_an_import_error(monkeypatch):
    monkeypatch.setitem(vit_shapes._CALLERS, "window_partition", ("ViT.forward",))
    with pytest.raises(ImportError, match="ViT.forward no longer calls window_partition"):
        vit_shapes._check_detectron2_vit()


def test_a_renamed_caller_class_is_an_import_error(monkeypatch):
    monkeypatch.delattr(vit, "Block")
    with pytest.raises(ImportError, match="Block.forward is not defined"):
        vit_shapes._check_detectron2_vit()


def test_the_check_runs_when_an_export_enters_size_generic_vit(monkeypatch):
    # A changed signature would otherwise be swapped silently (and export size-specific graphs).
    monkeypatch.setattr(vit, "get_abs_pos", lambda abs_pos, hw: abs_pos)
    with pytest.raises(ImportError, match="get_abs_pos.*no longer takes"):
        with vit_shapes.size_generic_vit(torch.nn.Identity()):
            pass
