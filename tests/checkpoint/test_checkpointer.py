"""MattingCheckpointer: atomic saves that survive interruption, loading without running code
from the file, checked loading of trained models, and clear errors."""

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from alphafree_d2.checkpoint import CheckpointError, MattingCheckpointer, load_trained_weights


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


class _RunsCode:
    """What a crafted pickle does: ask the unpickler to call os.system (here: touch a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pkl", ".pth", ".pyth"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, suffix):
    marker = tmp_path / "code_ran"
    bad = tmp_path / f"model{suffix}"
    if suffix == ".pkl":
        payload = {"model": {"weight": np.zeros((2, 3), np.float32)}, "x": _RunsCode(marker)}
        bad.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        weights = {"weight": torch.zeros(2, 3)}
        torch.save({"model": weights, "model_state": weights, "x": _RunsCode(marker)}, bad)
    with pytest.raises(CheckpointError, match=f"model{suffix}: refused to load.*system"):
        MattingCheckpointer(_model(0.0)).load(str(bad))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_detectron2_pkl_formats_load(tmp_path, protocol):
    """detectron2's model-zoo layout and the Detectron/Caffe2 'blobs' layout, as numpy arrays
    pickled with Python 2's and 3's protocols."""
    weight = np.full((2, 3), 1.5, np.float32)
    zoo = tmp_path / "zoo.pkl"
    with open(zoo, "wb") as f:
        state = OrderedDict(weight=weight, bias=np.zeros(2, np.float32))
        pickle.dump({"model": state, "__author__": "someone", "n": np.int64(3)}, f, protocol)
    target = _model(0.0)
    MattingCheckpointer(target).load(str(zoo))
    assert torch.all(target.weight == 1.5)

    caffe2 = tmp_path / "caffe2.pkl"
    with open(caffe2, "wb") as f:
        pickle.dump({"blobs": {"fc_w": weight, "fc_w_momentum": weight}}, f, protocol)
    loaded = MattingCheckpointer(_model(0.0))._load_file(str(caffe2))
    assert loaded["__author__"] == "Caffe2" and list(loaded["model"]) == ["fc_w"]
    np.testing.assert_array_equal(loaded["model"]["fc_w"], weight)


class _TwoParts(nn.Module):
    def __init__(self, width=3):
        super().__init__()
        self.backbone = nn.Linear(3, width)
        self.decoder = nn.Sequential(nn.Linear(width, 2), nn.Linear(2, 1))
        self.criterion = nn.Linear(1, 1)  # not needed to evaluate


def test_trained_weights_must_cover_the_model(tmp_path, caplog):
    full = _TwoParts()
    path = tmp_path / "model_final.pth"
    state = {k: v for k, v in full.state_dict().items() if not k.startswith("criterion.")}
    torch.save({"model": state}, path)
    target = _TwoParts()
    load_trained_weights(target, str(path))  # complete (the criterion is not needed)
    assert torch.equal(target.decoder[1].weight, full.decoder[1].weight)

    backbone_only = tmp_path / "backbone.pth"
    torch.save(
        {"model": {k: v for k, v in state.items() if k.startswith("backbone.")}}, backbone_only
    )
    with pytest.raises(
        CheckpointError,
        match=r"backbone.pth.*lacks 4 weights.*decoder.0 \(2\), decoder.1 \(2\).*--allow-partial-checkpoint",
    ):
        load_trained_weights(_TwoParts(), str(backbone_only))
    with pytest.raises(
        CheckpointError,
        match=r"differ in shape.*backbone \(2\).*backbone.weight: \(3, 3\) in the checkpoint, \(4, 3\)",
    ):
        load_trained_weights(_TwoParts(width=4), str(path))
    extra = tmp_path / "extra.pth"
    torch.save({"model": {**state, "head.weight": torch.zeros(1)}}, extra)
    with pytest.raises(CheckpointError, match=r"1 weights the model does not have \(in head \(1\)"):
        load_trained_weights(_TwoParts(), str(extra))

    with caplog.at_level("WARNING", logger="alphafree_d2"):
        load_trained_weights(_TwoParts(), str(backbone_only), allow_partial=True)
    assert "lacks 4 weights" in caplog.text and "Going on anyway" in caplog.text


def test_interrupted_writes_are_removed(tmp_path):
    ours = [".model_0000007.pth.tmp-ab12cd", ".last_checkpoint.tmp-x9", ".model_final.pth.tmp-1"]
    theirs = [".notes.tmp-1", "model_0000003.pth", ".hidden"]
    for name in ours + theirs:
        (tmp_path / name).write_bytes(b"x")
    removed = MattingCheckpointer(_model(0.0), str(tmp_path)).remove_interrupted_writes()
    assert sorted(removed) == sorted(ours)
    assert sorted(os.listdir(tmp_path)) == sorted(theirs)


def test_initial_weights_of_another_matting_model_are_refused(tmp_path, caplog):
    """A trained model (it has decoder weights) whose weights do not all fit is refused for
    initialising training; a pretrained backbone may leave the decoder random. Either way the
    load is summarised in one warning, not fvcore's line per tensor."""
    from alphafree_d2.checkpoint import check_init_weights

    trained = tmp_path / "other_model.pth"
    torch.save({"model": _TwoParts(width=4).state_dict()}, trained)
    checkpointer = MattingCheckpointer(_TwoParts())
    with caplog.at_level("WARNING"):
        checkpointer.load(str(trained), checkpointables=[])
    assert "Skip loading parameter" not in caplog.text
    assert caplog.text.count("weights differ in shape and are skipped") == 1
    with pytest.raises(CheckpointError, match=r"other_model.pth is a trained matting model of "
                       r"another config: .*differ in shape.*backbone \(2\), decoder.0 \(1\)"):  # fmt: skip
        check_init_weights(checkpointer, str(trained))
    check_init_weights(checkpointer, str(trained), allow_partial=True)

    backbone = tmp_path / "backbone.pth"
    torch.save({"model": {k: v for k, v in _TwoParts().state_dict().items()
                          if k.startswith("backbone.")}}, backbone)  # fmt: skip
    checkpointer = MattingCheckpointer(_TwoParts())
    checkpointer.load(str(backbone), checkpointables=[])
    check_init_weights(checkpointer, str(backbone))  # the decoder starts random: expected
