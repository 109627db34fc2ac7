"""The tick log's files: segment header, record layout, and reading records back.

A segment ``<segment:010d>.tick`` is a 16-byte header (magic, the first record's
sequence number) followed by records::

    u32 length | u32 crc32 | u64 seq | i64 received_ns | payload (length bytes)

The CRC covers the length, sequence number, receive time and payload. A
``Position`` is ``(segment, byte offset)``. ``Scan`` walks one segment and says
where and why it stopped; ``read_records`` walks the log (``warehouse.ticklog``
writes it).
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

__all__ = [
    "CHECKED",
    "HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_RECORD",
    "RECORD",
    "RECORD_HEADER_SIZE",
    "Position",
    "Record",
    "Scan",
    "TickLogError",
    "read_records",
    "segment_path",
    "segments",
]

MAGIC = b"KWHTICK1"
HEADER = struct.Struct("<8sQ")  # magic, first seq of the segment
RECORD = struct.Struct("<IIQq")  # length, crc32, seq, received_ns
CHECKED = struct.Struct("<IQq")  # what the crc32 covers before the payload: length, seq, received_ns
HEADER_SIZE = HEADER.size
RECORD_HEADER_SIZE = RECORD.size
MAX_RECORD = 64 << 20  # a longer length field is damage, not a frame
_SUFFIX = ".tick"


class TickLogError(Exception):
    """The log cannot be used: damaged, in use by another process, closed, or failing to sync."""


class Position(NamedTuple):
    """A place in the log: ``offset`` bytes into segment ``segment``. Positions order as tuples."""

    segment: int
    offset: int


class Record(NamedTuple):
    seq: int
    received_ns: int
    payload: bytes
    position: Position  # where the record starts
    next: Position  # where the record after it starts: commit this to say "up to and including me"


def segment_path(folder: Path, segment: int) -> Path:
    return folder / f"{segment:010d}{_SUFFIX}"


def segments(folder: Path) -> list[int]:
    out = []
    for p in folder.glob(f"*{_SUFFIX}"):
        with contextlib.suppress(ValueError):
            out.append(int(p.name.removesuffix(_SUFFIX)))
    return sorted(out)


class Scan:
    """Records of one segment from an offset; stops at the end, at a partial record or at damage."""

    def __init__(self, f: BinaryIO, segment: int, offset: int) -> None:
        self.f = f
        self.segment = segment
        self.end = offset  # after the last whole record seen
        self.problem: str | None = None  # why the scan stopped early, if it did
        self.partial = False  # the problem is a record cut short (the live tail, or a torn one)
        self.first_seq = 0
        f.seek(0)
        header = f.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE:
            self.problem, self.partial, self.end = f"segment header cut short ({len(header)} bytes)", True, 0
            return
        magic, self.first_seq = HEADER.unpack(header)
        if magic != MAGIC:
            self.problem, self.end = "not a tick log segment (bad magic)", 0
            return
        self.end = max(offset, HEADER_SIZE)
        f.seek(self.end)

    def __iter__(self) -> Iterator[Record]:
        if self.problem is not None:
            return
        read, unpack, checked = self.f.read, RECORD.unpack, CHECKED.pack
        while True:
            head = read(RECORD_HEADER_SIZE)
            if len(head) < RECORD_HEADER_SIZE:
                if head:
                    self.problem, self.partial = f"record header cut short ({len(head)} bytes)", True
                return
            length, crc, seq, received_ns = unpack(head)
            if length > MAX_RECORD:
                self.problem = f"record length {length} is not plausible"
                return
            payload = read(length)
            if len(payload) < length:
                self.problem, self.partial = f"record of {length} bytes cut short at {len(payload)}", True
                return
            if zlib.crc32(payload, zlib.crc32(checked(length, seq, received_ns))) != crc:
                self.problem = f"checksum mismatch in record {seq}"
                return
            start = self.end
            self.end = start + RECORD_HEADER_SIZE + length
            yield Record(
                seq, received_ns, payload, Position(self.segment, start), Position(self.segment, self.end)
            )


def read_records(
    folder: str | Path, start: Position | None = None, stop: Position | None = None
) -> Iterator[Record]:
    """The records from ``start`` (default: the oldest kept) up to ``stop`` (exclusive; default: the end).

    A partial record at the very end (one being written) ends the iteration; damage
    anywhere else raises ``TickLogError``. Positions in deleted segments start at
    the oldest segment kept.
    """
    folder = Path(folder)
    start = start or Position(0, 0)
    kept = [s for s in segments(folder) if s >= start.segment]
    for i, segment in enumerate(kept):
        if stop is not None and segment > stop.segment:
            return
        offset = start.offset if segment == start.segment else 0
        with open(segment_path(folder, segment), "rb", buffering=1 << 20) as f:
            scan = Scan(f, segment, offset)
            for record in scan:
                if stop is not None and record.position >= stop:
                    return
                yield record
            last = i == len(kept) - 1
            if scan.problem is not None and not (scan.partial and last):
                raise TickLogError(f"tick log {f.name}: {scan.problem} at byte {scan.end}")
