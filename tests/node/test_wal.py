"""The write-ahead log: records survive, a torn tail is cut off at every possible offset,
and lose-unsynced mode loses exactly what was not synced."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import pytest

from tobtest.node.wal import HEADER, WriteAheadLog, decode_records, encode_record

RECORDS = [
    {"t": "promise", "slot": 0, "ballot": 4},
    {"t": "accept", "slot": 0, "ballot": 4, "value": {"msg_id": "m1", "value": [1, "x"]}},
    {"t": "chosen", "slot": 0, "value": "last one"},
]


def test_records_round_trip(tmp_path):
    wal = WriteAheadLog(tmp_path / "wal.log")
    assert wal.replay() == []
    wal.append(RECORDS[:2])
    wal.append([])
    wal.sync()
    wal.append(RECORDS[2:])
    wal.close()
    again = WriteAheadLog(tmp_path / "wal.log")
    assert again.replay() == RECORDS
    assert again.torn_bytes_dropped == 0


def test_a_torn_last_record_is_dropped_at_every_byte_offset(tmp_path):
    path = tmp_path / "wal.log"
    whole = b"".join(encode_record(r) for r in RECORDS)
    last_start = len(whole) - len(encode_record(RECORDS[-1]))
    for cut in range(last_start, len(whole)):
        path.write_bytes(whole[:cut])
        wal = WriteAheadLog(path)
        assert wal.replay() == RECORDS[:-1], f"cut at byte {cut}"
        assert wal.torn_bytes_dropped == cut - last_start
        # The file was truncated to the good prefix, so new records follow on cleanly.
        wal.append([{"t": "after"}])
        wal.sync()
        wal.close()
        assert WriteAheadLog(path).replay() == [*RECORDS[:-1], {"t": "after"}]


@pytest.mark.parametrize("corrupt", ["checksum", "not-json", "not-object", "huge-length"])
def test_a_corrupt_record_ends_the_log(corrupt):
    good = encode_record(RECORDS[0])
    if corrupt == "checksum":
        bad = bytearray(encode_record(RECORDS[1]))
        bad[-1] ^= 0xFF
    else:
        payload = {"not-json": b"{nope", "not-object": b"[1,2]", "huge-length": b"{}"}[corrupt]
        length = 1 << 30 if corrupt == "huge-length" else len(payload)
        bad = bytearray(HEADER.pack(length, zlib.crc32(payload)) + payload)
    records, good_length = decode_records(good + bytes(bad) + encode_record(RECORDS[2]))
    assert records == [RECORDS[0]]
    assert good_length == len(good)


def _writer_then_killed(path, lose_unsynced: bool) -> None:
    """Runs a child that appends, syncs some, appends more, then SIGKILLs itself."""
    script = f"""
import os, signal
from pathlib import Path
from tobtest.node.wal import WriteAheadLog
wal = WriteAheadLog(Path({str(path)!r}), lose_unsynced={lose_unsynced})
wal.replay()
wal.append([{{"n": 1}}])
wal.sync()
wal.append([{{"n": 2}}])
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], timeout=30)
    assert proc.returncode == -9


def test_lose_unsynced_loses_what_was_not_synced_when_killed(tmp_path):
    _writer_then_killed(tmp_path / "lazy.log", lose_unsynced=True)
    assert WriteAheadLog(tmp_path / "lazy.log").replay() == [{"n": 1}]
    # Without the fault, a process kill keeps unsynced writes: the OS still has them.
    _writer_then_killed(tmp_path / "plain.log", lose_unsynced=False)
    assert WriteAheadLog(tmp_path / "plain.log").replay() == [{"n": 1}, {"n": 2}]


def test_sync_without_changes_does_not_fsync(tmp_path):
    wal = WriteAheadLog(tmp_path / "wal.log")
    wal.replay()
    wal.sync()
    assert wal.syncs == 0
    wal.append([{"a": 1}])
    wal.sync()
    wal.sync()
    assert wal.syncs == 1
    wal.close()
    assert os.path.getsize(tmp_path / "wal.log") > 0
