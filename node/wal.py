"""The node's write-ahead log: length- and checksum-framed JSON records, fsynced on demand.

    wal = WriteAheadLog(Path("n1.data/wal.log"))
    records = wal.replay()                 # what survived; a torn tail is cut off
    wal.append([{"t": "promise", "slot": 3, "ballot": 7}])
    wal.sync()                             # durable from here on

A record is `u32 length | u32 crc32 | JSON payload` (little-endian). A kill in mid-write
leaves a torn last record; `replay` detects it (short header, short payload, bad checksum
or bad JSON), truncates the file to the last good record and returns the good ones.

`lose_unsynced=True` is the disk fault of the same name: appended records stay in this
process's memory until `sync`, so a SIGKILL loses them exactly as a power cut loses
unsynced writes (the idea of Jepsen's LazyFS). Without it, appended bytes go to the OS at
once and survive a process kill even before `sync`.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 64 << 20


def encode_record(record: dict[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":")).encode()
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_records(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Decodes records from the start of `data`; returns them and the good length."""
    records: list[dict[str, Any]] = []
    offset = 0
    while offset + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        if length > MAX_RECORD_BYTES or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            record = json.loads(payload)
        except ValueError:
            break
        if not isinstance(record, dict):
            break
        records.append(record)
        offset = end
    return records, offset


class WriteAheadLog:
    def __init__(self, path: Path, lose_unsynced: bool = False) -> None:
        self.path = path
        self.lose_unsynced = lose_unsynced
        self._fd: int | None = None
        self._buffer = bytearray()
        self.dirty = False
        self.syncs = 0
        self.torn_bytes_dropped = 0

    def replay(self) -> list[dict[str, Any]]:
        """Reads every good record and cuts off a torn tail; then opens for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = self.path.read_bytes() if self.path.exists() else b""
        records, good = decode_records(data)
        self.torn_bytes_dropped = len(data) - good
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if self.torn_bytes_dropped:
            os.ftruncate(fd, good)
            os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_END)
        self._fd = fd
        return records

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        assert self._fd is not None, "replay() opens the log"
        data = b"".join(encode_record(r) for r in records)
        if not data:
            return
        self.dirty = True
        if self.lose_unsynced:
            self._buffer += data
        else:
            os.write(self._fd, data)

    def sync(self) -> None:
        """Makes everything appended so far durable."""
        if not self.dirty or self._fd is None:
            return
        if self._buffer:
            os.write(self._fd, bytes(self._buffer))
            self._buffer.clear()
        os.fsync(self._fd)
        self.dirty = False
        self.syncs += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
