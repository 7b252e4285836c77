"""alphafree_d2.engine.launch: detectron2's launch whose spawned workers end cleanly."""

import logging
import os

import pytest
import torch.distributed as dist

from detectron2.utils import comm

from alphafree_d2.engine import launch


def _worker(out_dir):
    rank = comm.get_rank()
    total = comm.all_gather(rank)
    # Written but never closed or flushed by the worker itself: the orderly exit must flush it.
    handler = logging.FileHandler(os.path.join(out_dir, f"log{rank}.txt"))
    logger = logging.getLogger(f"test_launch_{rank}")
    logger.addHandler(handler)
    logger.warning("ranks %s", total)


@pytest.mark.slow
def test_two_processes_finish_and_flush(tmp_path):
    launch(_worker, 2, dist_url="auto", args=(str(tmp_path),))
    for rank in (0, 1):
        assert (tmp_path / f"log{rank}.txt").read_text() == "ranks [0, 1]\n"
    assert not dist.is_initialized()  # nothing leaked into this process


def test_one_process_runs_in_place():
    seen = []
    launch(seen.append, 1, args=(3,))  # a lambda works too: nothing is pickled
    assert seen == [3]
