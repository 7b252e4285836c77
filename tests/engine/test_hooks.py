"""alphafree_d2.engine.hooks: the records a resumed run redoes are dropped from metrics.json."""

import json

from alphafree_d2.engine.hooks import drop_records_from


def _write(path, records, tail=b""):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)


def test_records_of_redone_iterations_are_dropped(tmp_path):
    path = tmp_path / "metrics.json"
    records = [{"iteration": i, "total_loss": 1.0 / (i + 1)} for i in range(8)]
    records.insert(5, {"iteration": 4, "matting/SAD": 3.0})  # an evaluation record
    _write(path, records)
    with open(path, "a") as writer:  # detectron2's JSONWriter holds it open in append mode
        assert drop_records_from(str(path), 5) == 3
        writer.write(json.dumps({"iteration": 5, "total_loss": 0.5}) + "\n")
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert kept == records[:6] + [{"iteration": 5, "total_loss": 0.5}]


def test_the_final_evaluation_of_a_finished_run_stays(tmp_path):
    """A run to max_iter=4 logs its final evaluation at iteration 4, where --resume starts;
    that record evaluates the checkpoint resumed from. A record of iteration 4 redone after a
    crash (with total_loss) goes."""
    path = tmp_path / "metrics.json"
    records = [{"iteration": i, "total_loss": 1.0} for i in range(4)]
    final = {"iteration": 4, "matting/SAD": 3.0}
    _write(path, records + [final, {"iteration": 4, "total_loss": 0.9}])
    assert drop_records_from(str(path), 4) == 1
    assert [json.loads(line) for line in path.read_text().splitlines()] == records + [final]
    assert drop_records_from(str(path), 3) == 2


def test_a_line_cut_short_by_a_kill_is_dropped(tmp_path):
    path = tmp_path / "metrics.json"
    _write(path, [{"iteration": 0}, {"iteration": 1}], tail=b'{"iteration": 2, "lo')
    assert drop_records_from(str(path), 3) == 1
    assert path.read_text() == '{"iteration": 0}\n{"iteration": 1}\n'
    assert drop_records_from(str(path), 0) == 2 and path.read_bytes() == b""
    assert drop_records_from(str(tmp_path / "none.json"), 0) == 0
