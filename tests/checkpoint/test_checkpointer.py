"""MattingCheckpointer: atomic saves that survive interruption, and clear errors."""
import os

import pytest
import torch
from torch import nn

from alphafree_d2.checkpoint import CheckpointError, MattingCheckpointer


def _model(value):
    model = nn.Linear(3, 2)
    nn.init.constant_(model.weight, value)
    return model


def test_save_load_round_trip(tmp_path):
    MattingCheckpointer(_model(1.5), str(tmp_path)).save("model_0000009", iteration=9)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000009.pth"
    target = _model(0.0)
    extra = MattingCheckpointer(target, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 9
    assert torch.all(target.weight == 1.5)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    MattingCheckpointer(_model(1.0), str(tmp_path)).save("model_0000009")
    before = sorted(os.listdir(tmp_path))

    def killed(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # what Ctrl-C or a kill in the middle of torch.save looks like

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        MattingCheckpointer(_model(2.0), str(tmp_path)).save("model_0000019")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == before  # no partial file, no temporary left behind
    target = _model(0.0)
    MattingCheckpointer(target, str(tmp_path)).resume_or_load("", resume=True)
    assert torch.all(target.weight == 1.0)


def test_corrupt_checkpoint_is_named(tmp_path):
    bad = tmp_path / "model_final.pth"
    bad.write_bytes(b"\x80\x02truncated")
    with pytest.raises(CheckpointError, match="model_final.pth.*cannot be read"):
        MattingCheckpointer(_model(0.0)).load(str(bad))


def test_missing_checkpoint_suggests_the_conversion(tmp_path):
    with pytest.raises(CheckpointError, match="convert_pretrained.py"):
        MattingCheckpointer(_model(0.0)).load(str(tmp_path / "missing.pth"))
