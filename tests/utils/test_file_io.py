"""The package's one set of writers (PNG, JSON, CSV): atomic."""

import csv
import json
import os

import cv2
import numpy as np
import pytest

from alphafree_d2.utils import file_io
from alphafree_d2.utils.file_io import write_csv, write_json, write_png


def _files(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder)
        for d, _, files in os.walk(folder)
        for f in files
    )


@pytest.mark.parametrize("channels", [3, 4])
def test_png_channel_orders_agree(tmp_path, channels):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, channels), dtype=np.uint8)
    write_png(tmp_path / "rgb.png", rgb, order="RGB")
    write_png(tmp_path / "bgr.png", rgb[:, :, [2, 1, 0, 3][:channels]])  # OpenCV's order
    assert (tmp_path / "rgb.png").read_bytes() == (tmp_path / "bgr.png").read_bytes()
    decoded = cv2.imread(str(tmp_path / "rgb.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, rgb[:, :, [2, 1, 0, 3][:channels]])
    write_png(tmp_path / "sub" / "view.png", rgb[:, ::-1])  # non-contiguous view, new folder
    with pytest.raises(ValueError, match="channel order"):
        write_png(tmp_path / "x.png", rgb, order="GBR")


def test_json_and_csv_round_trip(tmp_path):
    write_json(tmp_path / "a.json", {"b": [1, 2.5]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"b": [1, 2.5]}
    write_csv(tmp_path / "t.csv", ["id", "v"], [["x,y", 1], ["z", 0.25]])
    with open(tmp_path / "t.csv", newline="") as f:
        assert list(csv.reader(f)) == [["id", "v"], ["x,y", "1"], ["z", "0.25"]]


@pytest.mark.parametrize(
    "write",
    [
        lambda p: write_png(p, np.zeros((4, 4), np.uint8)),
        lambda p: write_json(p, {"a": 1}),
        lambda p: write_csv(p, ["a"], [[1]]),
    ],
)
def test_a_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch, write):
    target = tmp_path / "out"
    target.write_bytes(b"previous")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(file_io.os, "fsync", killed)  # after the data, before the rename
    with pytest.raises(KeyboardInterrupt):
        write(str(target))
    assert _files(tmp_path) == ["out"] and target.read_bytes() == b"previous"


class _Fills:
    """A file that fails at its second write, as a full disk (or Ctrl+C) would."""

    def __init__(self, f, error):
        self._f, self._error, self._writes = f, error, 0

    def write(self, data):
        self._writes += 1
        if self._writes == 2:
            raise self._error
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize("via_torch", [False, True])
@pytest.mark.parametrize("error", ["disk_full", "quota", "ctrl_c"])
def test_a_full_disk_names_the_file_and_ctrl_c_stays_an_interrupt(tmp_path, via_torch, error):
    """Also when torch.save reports them as its own "RuntimeError: ... unexpected pos"."""
    import errno

    import torch

    raised = {
        "disk_full": OSError(errno.ENOSPC, "No space left on device"),
        "quota": OSError(errno.EDQUOT, "Disk quota exceeded"),
        "ctrl_c": KeyboardInterrupt(),
    }[error]
    path = tmp_path / "model_final.pth"
    path.write_bytes(b"the previous checkpoint")
    expected = KeyboardInterrupt if error == "ctrl_c" else file_io.DiskFullError
    with pytest.raises(expected) as info:
        with file_io.atomic_write(str(path)) as f:
            if via_torch:
                torch.save({"w": torch.zeros(1000), "b": torch.ones(1000)}, _Fills(f, raised))
            else:
                filling = _Fills(f, raised)
                filling.write(b"a")
                filling.write(b"b")
    if error != "ctrl_c":
        message = str(info.value)
        assert str(path) in message and "the file was not written" in message
        assert ("no space left" if error == "disk_full" else "quota") in message
        assert info.value.filename == str(path)
    assert path.read_bytes() == b"the previous checkpoint"
    assert _files(tmp_path) == ["model_final.pth"]  # no temporary file left


def test_a_full_disk_is_one_error_line(tmp_path, monkeypatch, capsys):
    import errno

    from alphafree_d2.engine import expected_errors

    monkeypatch.delenv("ALPHAFREE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        with expected_errors():
            with file_io.atomic_write(str(tmp_path / "metrics.json"), "w"):
                raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no space left on the device while writing {tmp_path}")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
