"""The pixel cap holds wherever images are read: a small PNG that declares 20000 x 20000 pixels
(a zlib stream of zero rows, about 1 MB; decoding it would take 1.2 GB, and the float copies
along the pipeline tens of GB) is refused before decoding, with a message naming the file, its
size and the cap, by dataset registration, the training and evaluation pre-flight, the mapper,
the evaluator, the predict/page readers, the composite background and tools/predict.py. The
proof that nothing is decoded: every path runs in a subprocess whose address space is capped
at what it already uses plus 512 MB (RLIMIT_AS), far below the decoded image.

The cap is configurable (``--max-pixels``, ``dataloader.max_pixels``) and reaches the data
loader's worker processes (the mapper carries it, also with the "spawn" start method) and every
process of a multi-process run (tests/engine/test_train_net.py::test_two_cpu_processes).
"""

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from alphafree_d2.data import MattingDatasetMapper
from alphafree_d2.data.io import ImageTooLargeError, read_image
from alphafree_d2.utils.testing import load_script

ROOT = Path(__file__).resolve().parents[2]
SIDE = 20000


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=SIDE, height=SIDE):
    """A valid RGB PNG of black pixels, built without holding its raw rows: full-flushed deflate
    blocks of zeros are all alike, and the Adler-32 of n zero bytes is (n mod 65521) << 16 | 1."""
    raw = (1 + 3 * width) * height  # filter byte 0 + 3 zero bytes per pixel, per row
    unit = 1 << 20
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(unit)) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(bytes(raw % unit)) + last.flush()
    stream = b"\x78\xda" + block * (raw // unit) + tail + struct.pack(">I", (raw % 65521) << 16 | 1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", stream)
        + _chunk(b"IEND", b"")
    )


def test_the_bomb_is_a_real_image():
    """The same construction, small enough to decode: what the cap refuses is a valid PNG."""
    import cv2

    data = bomb_png(300, 2000)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape == (2000, 300, 3) and image.max() == 0
    assert len(bomb_png()) < 1_300_000


# Runs in a subprocess: every reading path on the bomb, after capping the address space.
_PATHS = textwrap.dedent("""
    import json, resource, sys, traceback
    root, bomb, small = sys.argv[1], sys.argv[2], sys.argv[3]
    import numpy as np
    import alphafree_d2  # noqa: F401
    from detectron2.data import DatasetCatalog
    from alphafree_d2.data import MattingDatasetMapper, load_matting_folder
    from alphafree_d2.data.io import read_alpha, read_image, read_trimap
    from alphafree_d2.data.preflight import check_evaluation_set, check_training_set
    from alphafree_d2.evaluation import MattingEvaluator
    from alphafree_d2.inference.batch import load_background, read_input_image, read_input_trimap
    import torch

    def vm_bytes():
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith("VmSize:"))
        return int(line.split()[1]) * 1024

    limit = vm_bytes() + (512 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    good = {"file_name": small, "height": 8, "width": 8, "trimap_file_name": small,
            "alpha_file_name": small, "image_id": "good"}

    def record(**files):
        return {**good, "image_id": "r", **files}

    DatasetCatalog.register("bomb_alpha_val", lambda: [record(alpha_file_name=bomb)])
    mapper = MattingDatasetMapper(is_train=False, augmentations=[])
    paths = {
        "read_image": lambda: read_image(bomb),
        "read_alpha": lambda: read_alpha(bomb),
        "read_trimap": lambda: read_trimap(bomb),
        "registration": lambda: load_matting_folder(root + "/images"),
        "preflight_image": lambda: check_training_set([record(file_name=bomb)], num_threads=1),
        "preflight_alpha": lambda: check_training_set([record(alpha_file_name=bomb)], num_threads=1),
        "preflight_trimap": lambda: check_training_set([record(trimap_file_name=bomb)], num_threads=1),
        "preflight_evaluation": lambda: check_evaluation_set([record(alpha_file_name=bomb)], num_threads=1),
        "mapper_image": lambda: mapper(record(file_name=bomb)),
        "mapper_alpha": lambda: mapper(record(alpha_file_name=bomb)),
        "evaluator": lambda: MattingEvaluator("bomb_alpha_val").process(
            [{"image_id": "r"}], [{"alpha": torch.zeros(1, 8, 8)}]),
        "predict_reader": lambda: read_input_image(bomb),
        "predict_trimap": lambda: read_input_trimap(bomb, small),
        "composite_background": lambda: load_background(bomb),
    }
    results = {}
    for name, run in paths.items():
        try:
            run()
            results[name] = "no error"
        except BaseException as e:
            results[name] = f"{type(e).__name__}: {e}"
    mapper(good)  # the good record still reads under the same limit
    print(json.dumps(results))
""")  # fmt: skip


def _limited_env():
    # One malloc arena and one thread per pool: their address-space reservations stay small.
    return {**os.environ, "MALLOC_ARENA_MAX": "1", "OMP_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1"}  # fmt: skip


@pytest.fixture(scope="module")
def bomb_tree(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("bomb")
    (root / "images").mkdir()
    bomb = root / "images" / "huge.png"
    bomb.write_bytes(bomb_png())
    small = root / "small.png"
    cv2.imwrite(str(small), np.full((8, 8), 255, np.uint8))
    return root, bomb, small


def _expect_refusal(text, bomb):
    assert text.startswith("ImageTooLargeError") or "images above the pixel cap" in text, text
    assert str(bomb) in text and "20000 x 20000 pixels" in text, text
    assert "cap of 100 megapixels" in text, text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_every_reader_refuses_the_bomb_without_decoding_it(bomb_tree):
    root, bomb, small = bomb_tree
    done = subprocess.run(
        [sys.executable, "-c", _PATHS, str(root), str(bomb), str(small)],
        capture_output=True, text=True, timeout=600, env=_limited_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 14
    for name, text in results.items():
        if name.startswith("preflight"):
            assert text.startswith("DatasetCheckError"), (name, text)
        _expect_refusal(text, bomb)


CONFIG = str(ROOT / "configs/demo_ddc.py")
TINY = ["model.backbone.depth=1", "model.backbone.embed_dim=32", "model.backbone.num_heads=1",
        "model.backbone.window_block_indexes=[]", "model.backbone.residual_block_indexes=[0]"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Overrides of configs/demo_ddc.py for a tiny model, and its random weights."""
    from detectron2.config import instantiate

    from alphafree_d2.checkpoint import MattingCheckpointer
    from alphafree_d2.engine import load_config

    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    MattingCheckpointer(instantiate(load_config(CONFIG, TINY).model), str(folder)).save("m")
    return [*TINY, f"train.init_checkpoint={folder / 'm.pth'}"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_predict_tool_refuses_the_bomb_without_decoding_it(bomb_tree, tiny_model, tmp_path):
    """tools/predict.py end to end (model loaded), under the same address-space cap."""
    _, bomb, _ = bomb_tree
    script = textwrap.dedent("""
        import resource, runpy, sys
        import torch, alphafree_d2  # noqa: F401  (what the tool imports, before the cap)
        with open("/proc/self/status") as f:
            vm = int(next(l for l in f if l.startswith("VmSize:")).split()[1]) * 1024
        limit = vm + (512 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "tools" / "predict.py"), "--config-file",
         CONFIG, "--input", str(bomb), "--output", str(out), "--no-progress", "--device", "cpu",
         *tiny_model],
        capture_output=True, text=True, timeout=600, env=_limited_env(),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert "0 written" in done.stdout and "ImageTooLargeError" in done.stderr
    _expect_refusal(done.stderr[done.stderr.index("ImageTooLargeError") :], bomb)
    assert not list(out.rglob("*.png"))


def test_max_pixels_option_and_config_key(tiny_model, tmp_path, capsys):
    """--max-pixels of tools/predict.py, and the mapper's cap from dataloader.max_pixels."""

    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "big.png"), np.zeros((40, 30, 3), np.uint8))  # 1200 pixels
    cv2.imwrite(str(photos / "small.png"), np.zeros((20, 30, 3), np.uint8))  # 600 pixels
    predict = load_script("tools/predict.py")
    out = tmp_path / "out"
    code = predict.main(["--config-file", CONFIG, "--input", str(photos), "--output", str(out),
                         "--no-progress", *tiny_model, "--max-pixels", "1000"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert (
        f"{photos / 'big.png'}: ImageTooLargeError: 30 x 40 pixels" in err
        and "cap of 0.001 megapixels (1000 pixels)" in err
    )
    assert (out / "alpha" / "small.png").is_file() and not (out / "alpha" / "big.png").exists()
    read_image(str(photos / "big.png"))  # the tool's cap ended with it

    from detectron2.config import instantiate

    from alphafree_d2.engine import load_config

    cfg = load_config(CONFIG, ["dataloader.max_pixels=1000"])
    assert instantiate(cfg.dataloader.train.mapper).max_pixels == 1000
    assert instantiate(cfg.dataloader.test.mapper).max_pixels == 1000
    assert cfg.dataloader.evaluator.max_pixels == 1000
    with pytest.raises(Exception, match="dataloader.max_pixels=0: expected"):
        load_config(CONFIG, ["dataloader.max_pixels=0"])


class _Records(torch.utils.data.Dataset):
    def __init__(self, records, mapper):
        self.records, self.mapper = records, mapper

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.mapper(self.records[i])


def test_the_mapper_cap_holds_in_spawned_loader_workers(tmp_path):
    """A worker process started with "spawn" starts with the default cap; the mapper carries
    its own (here 1000 pixels, below the 1200 of the image)."""
    import cv2

    path = tmp_path / "img.png"
    cv2.imwrite(str(path), np.zeros((40, 30, 3), np.uint8))
    record = {"file_name": str(path), "height": 40, "width": 30, "image_id": "img"}
    mapper = MattingDatasetMapper(is_train=False, augmentations=[], max_pixels=1000)
    loader = torch.utils.data.DataLoader(
        _Records([record], mapper), batch_size=None, num_workers=1,
        multiprocessing_context="spawn",
    )  # fmt: skip
    with pytest.raises(ImageTooLargeError, match=r"(?s)img.png: 30 x 40 pixels .*\(1000 pixels\)"):
        next(iter(loader))
