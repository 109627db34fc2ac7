"""The durable tick log: raw realtime frames appended to disk before anything else happens to them.

Layout (``warehouse.ticklog_format``): a folder of segment files, each a header
and records of ``length | crc32 | seq | received_ns | payload``. A ``Position``
is ``(segment, byte offset)``; ``append`` returns the position just after its
record, which is where a reader resumes once that record is committed.

Durability is group commit: appends go to a buffered file, and ``sync()`` (or the
background flusher, every ``sync_interval`` seconds when something was appended)
writes the buffer out and fsyncs it; ``durable`` is the position up to which the
log survives a crash of the machine. No fsync per record. A segment is fsynced
whole before the next one is created, so only the last segment can have a torn
tail: on open it is checked record by record and cut at the last whole one, with
a ``TornTailWarning`` naming the bytes dropped.

Segments are deleted only by ``release(committed)``: those whose every record is
before ``committed``, never the segment being written (it carries the numbering on).
One process at a time may open a log for writing (an exclusive ``flock``);
``read_records`` reads one without opening it, e.g. from another process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from warehouse.ticklog_format import (
    CHECKED,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_RECORD,
    RECORD,
    RECORD_HEADER_SIZE,
    Position,
    Record,
    Scan,
    TickLogError,
    read_records,
    segment_path,
)
from warehouse.ticklog_format import segments as list_segments

__all__ = [
    "HEADER_SIZE",
    "RECORD_HEADER_SIZE",
    "Position",
    "Record",
    "TickLog",
    "TickLogError",
    "TornTailWarning",
    "Truncation",
    "read_records",
]


class TornTailWarning(UserWarning):
    """The last segment ended in a partial or damaged record, which was cut off on open."""


@dataclass(frozen=True)
class Truncation:
    """What opening the log cut off its torn tail."""

    segment: int
    offset: int  # the new end of the segment: after the last whole record
    dropped: int  # bytes removed
    reason: str


class TickLog:
    """The log opened for appending (one process at a time). See the module's docstring.

    ``sync_interval``: the background flusher's period in seconds (``None``: no
    flusher; the caller calls ``sync()``). ``segment_bytes``: a segment is closed
    once it holds this much. ``buffer_bytes``: the write buffer in front of the file.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        segment_bytes: int = 64 << 20,
        sync_interval: float | None = 0.05,
        buffer_bytes: int = 1 << 20,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._buffer_bytes = buffer_bytes
        self._lockfile = open(self.folder / "LOCK", "a+b")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            raise TickLogError(f"tick log {self.folder} is open in another process") from None
        self._write_lock = threading.Lock()  # the file, its position and the sequence number
        self._sync_lock = threading.Lock()  # one sync at a time
        self._synced = threading.Condition()
        self._retired: list[IO[bytes]] = []  # full segments, fsynced; closed by the next sync
        self._dir_dirty = False
        self._error: BaseException | None = None
        self._closed = False
        self.recovered: Truncation | None = None
        self._file, self._pos, self.next_seq = self._open_tail()
        self._durable = Position(self._segment, self._pos)
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if sync_interval is not None:
            self._flusher = threading.Thread(
                target=self._flush_loop,
                args=(sync_interval,),
                name=f"ticklog-sync {self.folder}",
                daemon=True,
            )
            self._flusher.start()

    # ------------------------------------------------------------------ opening

    def _open_tail(self) -> tuple[IO[bytes], int, int]:
        segments = list_segments(self.folder)
        if not segments:
            self._segment = 1
            return self._fresh_segment(0), HEADER_SIZE, 0
        self._segment = segments[-1]
        path = segment_path(self.folder, self._segment)
        with open(path, "rb", buffering=1 << 20) as f:
            scan = Scan(f, self._segment, 0)
            next_seq = scan.first_seq
            for record in scan:
                next_seq = record.seq + 1
            size = os.fstat(f.fileno()).st_size
        if scan.problem is not None and scan.end < HEADER_SIZE:
            if not scan.partial:
                raise TickLogError(f"tick log {path}: {scan.problem}")
            # a header cut short: the segment was being created when the process died
            if len(segments) > 1:
                with open(segment_path(self.folder, segments[-2]), "rb", buffering=1 << 20) as prev:
                    for record in Scan(prev, segments[-2], 0):
                        next_seq = record.seq + 1
            self._truncated(scan.end, size, scan.problem)
            path.unlink()
            return self._fresh_segment(next_seq), HEADER_SIZE, next_seq
        if size > scan.end:
            self._truncated(scan.end, size, scan.problem or "trailing bytes")
            with open(path, "r+b") as cut:
                cut.truncate(scan.end)
                os.fsync(cut.fileno())
        f = open(path, "ab", buffering=self._buffer_bytes)  # noqa: SIM115 - owned by the log
        os.fsync(f.fileno())  # what survived a crashed process may still be only in the page cache
        return f, scan.end, next_seq

    def _truncated(self, end: int, size: int, reason: str) -> None:
        self.recovered = Truncation(self._segment, end, size - end, reason)
        warnings.warn(
            TornTailWarning(
                f"tick log {segment_path(self.folder, self._segment)}: torn tail, dropped "
                f"{size - end} bytes after byte {end} ({reason}); the log ends at the last whole record"
            ),
            stacklevel=3,
        )

    def _fresh_segment(self, first_seq: int) -> IO[bytes]:
        f = self._new_segment(self._segment, first_seq)
        f.flush()
        os.fsync(f.fileno())
        self._sync_dir()
        return f

    def _new_segment(self, segment: int, first_seq: int) -> IO[bytes]:
        f = open(segment_path(self.folder, segment), "xb", buffering=self._buffer_bytes)  # noqa: SIM115
        f.write(HEADER.pack(MAGIC, first_seq))
        self._dir_dirty = True
        return f

    def _sync_dir(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._dir_dirty = False

    # ------------------------------------------------------------------ appending

    def append(self, payload: bytes, received_ns: int | None = None) -> Position:
        """Add one frame; the position just after it. Durable once ``durable`` reaches that position."""
        if received_ns is None:
            received_ns = time.time_ns()
        length = len(payload)
        if length > MAX_RECORD:
            raise TickLogError(f"a frame of {length} bytes is longer than a record may be ({MAX_RECORD})")
        with self._write_lock:
            if self._closed or self._error is not None:
                self._raise_state()
            seq = self.next_seq
            crc = zlib.crc32(payload, zlib.crc32(CHECKED.pack(length, seq, received_ns)))
            write = self._file.write
            write(RECORD.pack(length, crc, seq, received_ns))
            write(payload)
            self.next_seq = seq + 1
            self._pos += RECORD_HEADER_SIZE + length
            end = Position(self._segment, self._pos)
            if self._pos >= self.segment_bytes:
                self._rotate()
            return end

    def _rotate(self) -> None:
        """Close the full segment (written out and fsynced first) and start the next one."""
        old = self._file
        old.flush()
        os.fsync(old.fileno())
        self._retired.append(old)
        with self._synced:
            self._durable = max(self._durable, Position(self._segment, self._pos))
            self._synced.notify_all()
        self._segment += 1
        self._file = self._new_segment(self._segment, self.next_seq)
        self._pos = HEADER_SIZE

    @property
    def end(self) -> Position:
        """The position after the last appended record (durable or not)."""
        with self._write_lock:
            return Position(self._segment, self._pos)

    @property
    def durable(self) -> Position:
        """Every record before this position is on disk (fsynced)."""
        return self._durable

    def sync(self) -> Position:
        """Write out everything appended so far and fsync it: group commit. The new durable position."""
        with self._sync_lock:
            with self._write_lock:
                if self._error is not None:
                    self._raise_state()
                if self._closed:
                    return self._durable
                self._file.flush()
                target = Position(self._segment, self._pos)
                retired, self._retired = self._retired, []
                fd = self._file.fileno()
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            try:
                for f in retired:
                    f.close()
                if dir_dirty:
                    self._sync_dir()
                if target > self._durable:
                    os.fsync(fd)
            except BaseException as exc:
                self._error = exc
                raise TickLogError(f"tick log {self.folder}: sync failed: {exc}") from exc
            with self._synced:
                self._durable = max(self._durable, target)
                self._synced.notify_all()
            return self._durable

    def wait_durable(self, position: Position, timeout: float | None = None) -> bool:
        """Block until ``position`` is durable (True) or ``timeout`` passes (False)."""
        with self._synced:
            return self._synced.wait_for(
                lambda: self._durable >= position or self._error is not None or self._closed, timeout
            ) and (self._durable >= position)

    def wait_past(self, position: Position, timeout: float | None = None) -> bool:
        """Block until something after ``position`` is durable (True) or ``timeout`` passes (False)."""
        with self._synced:
            return self._synced.wait_for(
                lambda: self._durable > position or self._error is not None or self._closed, timeout
            ) and (self._durable > position)

    def _flush_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self._durable < self.end:
                try:
                    self.sync()
                except TickLogError:
                    with self._synced:
                        self._synced.notify_all()
                    return

    def _raise_state(self) -> None:
        if self._error is not None:
            raise TickLogError(f"tick log {self.folder}: an earlier sync failed: {self._error}")
        raise TickLogError(f"tick log {self.folder} is closed")

    # ------------------------------------------------------------------ reading and releasing

    def read(self, start: Position | None = None, stop: Position | None = None) -> Iterator[Record]:
        """Records from ``start`` up to ``stop`` (default: ``durable``, so only records on disk)."""
        return read_records(self.folder, start, self.durable if stop is None else stop)

    def segments(self) -> list[int]:
        return list_segments(self.folder)

    def release(self, committed: Position) -> list[int]:
        """Delete the segments whose every record is before ``committed``; the segments deleted.

        ``committed`` is the position the warehouse has committed up to (a ``Record.next``).
        The segment being written is never deleted.
        """
        with self._write_lock:
            active = self._segment
        gone = []
        for segment in list_segments(self.folder):
            if segment >= active:
                break
            path = segment_path(self.folder, segment)
            whole = segment < committed.segment or (
                segment == committed.segment and committed.offset >= path.stat().st_size
            )
            if not whole:
                break
            path.unlink()
            gone.append(segment)
        if gone:
            self._sync_dir()
        return gone

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Sync what was appended, stop the flusher and release the log."""
        if self._closed:
            return
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        try:
            if self._error is None:
                self.sync()
        finally:
            with self._write_lock:
                self._closed = True
                for f in (*self._retired, self._file):
                    with contextlib.suppress(OSError):
                        f.close()
                self._retired = []
            with self._synced:
                self._synced.notify_all()
            self._lockfile.close()

    def __enter__(self) -> TickLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TickLog({str(self.folder)!r}, end={self.end}, durable={self.durable})"
