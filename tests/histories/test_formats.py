"""History readers: tobtest JSONL, Jepsen EDN (vector or stream) and Jepsen log lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tobtest.histories.formats import detect_format, parse_history, read_history, write_jsonl
from tobtest.histories.op import Op

OPS = [
    Op(0, 10, "invoke", 0, "write", 3, node="n1"),
    Op(1, 20, "invoke", 1, "read", None),
    Op(2, 30, "ok", 0, "write", 3, node="n1"),
    Op(3, 40, "info", 1, "read", None, error="timeout", extra={"read_mode": "log"}),
    Op(4, 50, "info", "nemesis", "start-partition", {"n1": ["n2"]}),
]


def test_jsonl_round_trips(tmp_path: Path):
    path = tmp_path / "history.jsonl"
    write_jsonl(OPS, path)
    assert read_history(path) == OPS
    assert read_history(path, fmt="jsonl") == OPS


def test_edn_vector_reads_keywords_as_strings_and_keeps_extra_fields():
    text = """; a Knossos-style history
[{:process 0, :type :invoke, :f :cas, :value [1 2], :key "k"}
 {:process 0, :type :fail, :f :cas, :value [1 2], :error [:not-found "gone"]}
 {:process :nemesis, :type :info, :f :kill, :value nil}]
"""
    ops = parse_history(text)
    assert [(o.index, o.time_ns, o.type, o.process, o.f) for o in ops] == [
        (0, 0, "invoke", 0, "cas"),
        (1, 1, "fail", 0, "cas"),
        (2, 2, "info", "nemesis", "kill"),
    ]
    assert ops[0].value == [1, 2] and ops[0].extra == {"key": "k"}
    assert ops[1].error == '["not-found", "gone"]'


def test_edn_stream_keeps_given_index_and_time():
    text = (
        "{:type :invoke, :f :acquire, :process 3, :time 371408519, :index 7}\n"
        "{:type :fail, :f :acquire, :process 3, :time 372000000, :index 8, :error :held}\n"
    )
    ops = parse_history(text, fmt="edn")
    assert [(o.index, o.time_ns) for o in ops] == [(7, 371408519), (8, 372000000)]
    assert ops[1].error == "held"


def test_jepsen_log_lines_like_the_porcupine_etcd_ones():
    text = (
        "INFO  jepsen.util - 3\t:invoke\t:write\t4\n"
        "INFO  jepsen.core - Worker 3 starting\n"  # chatter without tabs is skipped
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n"
        "INFO  jepsen.util - 3\t:info\t:write\t:timed-out\n"
        "INFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\n"
        "INFO  jepsen.util - 0\t:ok\t:read\tnil\n"
        'INFO  jepsen.util - :nemesis\t:info\t:start\t"cut off"\tsome-error\n'
    )
    assert detect_format(text) == "jepsen-log"
    ops = parse_history(text)
    assert [(o.index, o.process, o.type, o.f, o.value) for o in ops] == [
        (0, 3, "invoke", "write", 4),
        (1, 2, "invoke", "cas", [3, 0]),
        (2, 3, "info", "write", "timed-out"),
        (3, 2, "fail", "cas", [3, 0]),
        (4, 0, "ok", "read", None),
        (5, "nemesis", "info", "start", "cut off"),
    ]
    assert ops[5].error == "some-error"
    assert [o.time_ns for o in ops] == [0, 1, 2, 3, 4, 5]


def test_plain_history_txt_lines_read_too():
    ops = parse_history('0\t:invoke\t:read\tnil\n0\t:ok\t:read\t[1 "a"]\n')
    assert ops[1].value == [1, "a"]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('{"index": 0}', "jsonl"),
        ("[{:type :invoke}]", "edn"),
        ("({:type :invoke})", "edn"),
        ("{:process 0, :type :invoke}", "edn"),
        ("#jepsen.history.Op{:index 0}", "edn"),
        ("\n; comment\n{:a 1}", "edn"),
        ("0\t:invoke\t:read\tnil", "jepsen-log"),
        ("INFO jepsen.core - starting", "jepsen-log"),
        ("", "jsonl"),
    ],
)
def test_detects_the_format_from_content(text, fmt):
    assert detect_format(text) == fmt


def test_empty_files_hold_no_ops(tmp_path: Path):
    path = tmp_path / "empty.log"
    path.write_text("")
    assert read_history(path) == []


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ('{"index": 0}\nnot json\n', "jsonl", "h.txt:1: op is missing field 'time_ns'"),
        (
            # Newline-terminated: a whole malformed line, not a tail torn by a crash.
            '\n{"index": 0, "time_ns": 0, "type": "ok", "process": 0, "f": "r"}\n{\n',
            "jsonl",
            "h.txt:3: not JSON",
        ),
        (
            "[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :done, :f :read}]",
            "edn",
            "h.txt:2: op 1: unknown :type 'done'",
        ),
        ("[{:process 0, :type :invoke}]", "edn", "h.txt:1: op 0: missing :f"),
        ("[{:process 0.5, :type :invoke, :f :x}]", "edn", "h.txt:1: op 0: :process must be"),
        ('[{:process 0, :type :ok, :f :x, :time "t"}]', "edn", "h.txt:1: op 0: :index and :time"),
        ("{:type :ok}\n[1 2]", "edn", "h.txt:1: op 0: missing :f (and the value is no list"),
        ("\n\n[1]", "edn", "h.txt:3: expected an op map, found int"),
        (
            "[{:process 0, :type :invoke, :f :r}\n{:b",
            "edn",
            "h.txt:2: malformed EDN: '{' opened here is never closed",
        ),
        ("0\t:invoke\t:read\tnil\nbogus line\n", "jepsen-log", "h.txt:2: not a Jepsen op line"),
        ("0\t:invoke\t:read\n", "jepsen-log", "h.txt:1: expected process, type, f and value"),
        ("0\t:invoke\t:read\t[1\n", "jepsen-log", "h.txt:1: malformed EDN field"),
        ("0\t:begin\t:read\tnil\n", "jepsen-log", "h.txt:1: unknown :type 'begin'"),
    ],
)
def test_malformed_input_names_file_line_and_problem_on_one_line(tmp_path, text, fmt, message):
    path = tmp_path / "h.txt"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_history(path, fmt=fmt)
    text_of_error = str(err.value)
    assert "\n" not in text_of_error
    assert text_of_error.startswith(str(tmp_path) + "/"), text_of_error
    assert message in text_of_error, text_of_error


def test_unknown_format_and_non_utf8_are_value_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown history format 'xml'"):
        parse_history("", fmt="xml")
    path = tmp_path / "bin.edn"
    path.write_bytes(b"\xff\xfe[")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_history(path)


def test_a_torn_last_line_is_dropped_but_a_bad_middle_line_is_an_error(tmp_path):
    whole = '{"index":0,"time_ns":1,"type":"invoke","process":0,"f":"broadcast","value":1}\n'
    torn = tmp_path / "torn.jsonl"
    torn.write_text(whole + '{"index":1,"time_ns":2,"type":"ok","pro')
    assert [op.index for op in read_history(torn)] == [0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"index":1,"time_ns":2,"type":"ok","pro\n' + whole)
    with pytest.raises(ValueError, match="bad.jsonl:1: not JSON"):
        read_history(bad)
    # A malformed last line that was written whole (newline-terminated) is not a tear.
    ended = tmp_path / "ended.jsonl"
    ended.write_text(whole + "{nope\n")
    with pytest.raises(ValueError, match="ended.jsonl:2"):
        read_history(ended)


def test_elle_example_shapes_without_f_or_process_read_as_one_process_of_txns():
    # Elle's own examples leave out :f, and some :process too; Elle reads them as txns of
    # one (nil) process.
    text = (
        "{:index 0 :type :invoke  :value [[:append 5 1] [:r 6 nil]]}\n"
        "{:index 1 :type :ok      :value [[:append 5 1] [:r 6 [2]]]}\n"
        "{:index 2, :type :invoke, :process 3, :value [[ :r 5 nil] ]}\n"
    )
    ops = parse_history(text, "edn")
    assert [(op.f, op.process) for op in ops] == [("txn", "nil"), ("txn", "nil"), ("txn", 3)]
    assert ops[1].value == [["append", 5, 1], ["r", 6, [2]]]
