"""Every file MattingEvaluator writes (per-image CSV, prediction PNGs, visualisations) goes
through the package's atomic writers: a run killed mid-write leaves no partial file."""

import os

import pytest
from test_matting_evaluator import make_dataset, register, run_evaluation

from alphafree_d2.evaluation import MattingEvaluator
from alphafree_d2.utils import file_io


def _files(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder)
        for d, _, files in os.walk(folder)
        for f in files
    )


@pytest.fixture
def evaluation_inputs(tmp_path):
    records, predictions = make_dataset(str(tmp_path / "data"))
    return register(records), records, predictions


def _evaluator(name, output_dir):
    return MattingEvaluator(
        name, output_dir=str(output_dir), save_predictions=True, num_visualize=2, distributed=False
    )


def test_every_evaluator_output_is_renamed_into_place(evaluation_inputs, tmp_path, monkeypatch):
    name, records, predictions = evaluation_inputs
    renamed = []
    replace = os.replace

    def recording(src, dst):
        renamed.append(os.path.relpath(dst, tmp_path / "out"))
        return replace(src, dst)

    monkeypatch.setattr(file_io.os, "replace", recording)
    run_evaluation(_evaluator(name, tmp_path / "out"), records, predictions, batch_size=3)
    written = _files(tmp_path / "out")
    assert any(f.endswith(".csv") for f in written)
    assert any(f.startswith("predictions") for f in written)
    assert any(f.startswith("vis") for f in written)
    assert sorted(renamed) == written  # no file reached the folder any other way


def test_an_evaluator_killed_while_writing_leaves_no_partial_file(
    evaluation_inputs, tmp_path, monkeypatch
):
    name, records, predictions = evaluation_inputs

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    # Killed while writing its first file (data written, not yet renamed into place).
    monkeypatch.setattr(file_io.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(_evaluator(name, tmp_path / "out"), records, predictions, batch_size=3)
    assert _files(tmp_path / "out") == []
