"""The recorder writes one op per line, flushed as it goes, with increasing index and time."""

import json

from tobtest.histories.op import Op
from tobtest.histories.recorder import Recorder


def test_ops_are_flushed_per_op_and_readable_before_close(tmp_path):
    path = tmp_path / "history.jsonl"
    recorder = Recorder(path)
    recorder.record("invoke", 0, "broadcast", 1, node="n1")
    # Not closed yet: a crashed runner leaves exactly this state behind.
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["f"] == "broadcast"
    recorder.record("ok", 0, "broadcast", 1, node="n1", position=0)
    recorder.close()
    ops = [Op.from_dict(json.loads(line)) for line in path.read_text().splitlines()]
    assert [op.index for op in ops] == [0, 1]
    assert ops[0].time_ns <= ops[1].time_ns
    assert ops[1].extra == {"position": 0}
    assert ops == recorder.ops


def test_recorder_without_a_file_keeps_ops_in_memory():
    recorder = Recorder(None)
    recorder.record("invoke", "nemesis", "start-partition", None)
    assert recorder.ops[0].process == "nemesis"
    recorder.close()
