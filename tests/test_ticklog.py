"""The durable tick log: round trips, rotation, group commit, torn tails, SIGKILL, releasing segments."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from warehouse import ticklog
from warehouse.ticklog import (
    HEADER_SIZE,
    RECORD_HEADER_SIZE,
    Position,
    TickLog,
    TickLogError,
    TornTailWarning,
    read_records,
)

ROOT = Path(__file__).resolve().parent.parent


def frame(seq: int) -> bytes:
    """A deterministic payload of varying length (empty for some)."""
    if seq % 13 == 0:
        return b""
    return (f'{{"trnm":"REAL","seq":{seq},"data":"' + "x" * (seq * 7 % 50) + '"}').encode()


def fill(log: TickLog, n: int, start: int = 0) -> list[Position]:
    return [log.append(frame(i), received_ns=1_700_000_000_000_000_000 + i) for i in range(start, start + n)]


def segment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tick"))


def test_records_round_trip_with_positions_and_sequence(tmp_path):
    with TickLog(tmp_path, sync_interval=None) as log:
        ends = fill(log, 200)
        assert log.sync() == ends[-1] == log.end
        records = list(log.read())
    assert [r.seq for r in records] == list(range(200))
    assert [r.payload for r in records] == [frame(i) for i in range(200)]
    assert [r.received_ns for r in records] == [1_700_000_000_000_000_000 + i for i in range(200)]
    assert [r.next for r in records] == ends
    assert records[0].position == Position(1, HEADER_SIZE)
    assert all(a.next == b.position for a, b in itertools.pairwise(records))
    # reading from a record's end gives exactly what follows it
    assert [r.seq for r in read_records(tmp_path, records[149].next)] == list(range(150, 200))
    assert [r.seq for r in read_records(tmp_path, records[10].next, records[20].next)] == list(range(11, 21))
    # reopened, the log goes on where it stopped
    with TickLog(tmp_path, sync_interval=None) as log:
        assert log.next_seq == 200 and log.end == ends[-1] and log.durable == ends[-1]
        fill(log, 5, start=200)
    assert [r.seq for r in read_records(tmp_path)] == list(range(205))


def test_appends_are_buffered_and_durable_only_after_a_sync(tmp_path, monkeypatch):
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counted(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(ticklog.os, "fsync", counted)
    with TickLog(tmp_path, sync_interval=None) as log:
        opened = len(fsyncs)
        start = log.durable
        end = fill(log, 10_000)[-1]
        assert log.durable == start, "nothing is durable before a sync"
        assert list(log.read()) == [], "a reader sees only durable records"
        assert log.sync() == end
        assert len(fsyncs) - opened == 1, "one fsync for the whole group, none per record"
        assert len(list(log.read())) == 10_000


def test_the_background_flusher_makes_appends_durable_within_its_interval(tmp_path):
    with TickLog(tmp_path, sync_interval=0.02) as log:
        end = log.append(b"one")
        assert log.wait_durable(end, timeout=5)
        assert log.durable >= end
        more = fill(log, 1000)[-1]
        assert log.wait_durable(more, timeout=5)


def test_segments_rotate_at_their_size_and_read_back_in_order(tmp_path):
    with TickLog(tmp_path, segment_bytes=2_000, sync_interval=None) as log:
        ends = fill(log, 500)
        full = [r.next for r in log.read()]
        assert full and full[-1].segment == log.end.segment - 1, "a full segment is fsynced when closed"
    files = segment_files(tmp_path)
    assert len(files) > 5
    assert [int(f.stem) for f in files] == list(range(1, len(files) + 1))
    longest = max(len(frame(i)) for i in range(500))
    assert all(f.stat().st_size < 2_000 + RECORD_HEADER_SIZE + longest for f in files)
    records = list(read_records(tmp_path))
    assert [r.seq for r in records] == list(range(500))
    assert [r.next for r in records] == ends
    assert len({r.position.segment for r in records}) == len(files)
    # a record ending a segment is followed by the next segment's first record
    boundary = next(r for r in records if r.next.segment != records[r.seq + 1].position.segment)
    assert next(r.seq for r in read_records(tmp_path, boundary.next)) == boundary.seq + 1
    with TickLog(tmp_path, segment_bytes=2_000, sync_interval=None) as log:
        assert log.next_seq == 500
        fill(log, 100, start=500)
    assert [r.seq for r in read_records(tmp_path)] == list(range(600))


def test_a_segment_cut_mid_record_is_truncated_at_the_last_whole_record(tmp_path):
    with TickLog(tmp_path, sync_interval=None) as log:
        ends = fill(log, 50)
    last = segment_files(tmp_path)[-1]
    size = last.stat().st_size
    whole = ends[-2].offset  # the end of record 48
    os.truncate(last, size - 3)
    with pytest.warns(TornTailWarning, match=rf"dropped {size - 3 - whole} bytes after byte {whole}"):
        log = TickLog(tmp_path, sync_interval=None)
    with log:
        assert log.recovered is not None and log.recovered.dropped == size - 3 - whole
        assert last.stat().st_size == whole
        assert log.next_seq == 49 and log.end == ends[-2]
        fill(log, 3, start=49)
    assert [r.seq for r in read_records(tmp_path)] == list(range(52))
    assert [r.payload for r in read_records(tmp_path)] == [frame(i) for i in range(52)]


def test_a_damaged_checksum_ends_the_log_at_the_record_before_it(tmp_path):
    with TickLog(tmp_path, sync_interval=None) as log:
        ends = fill(log, 40)
    last = segment_files(tmp_path)[-1]
    size = last.stat().st_size
    damaged = ends[29].offset + 20  # inside record 30 (its receive time)
    with open(last, "r+b") as f:
        f.seek(damaged)
        byte = f.read(1)
        f.seek(damaged)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.warns(TornTailWarning, match=rf"dropped {size - ends[29].offset} bytes .*checksum"):
        log = TickLog(tmp_path, sync_interval=None)
    with log:
        assert log.next_seq == 30
    assert [r.seq for r in read_records(tmp_path)] == list(range(30))


def test_damage_in_a_closed_segment_is_an_error_not_a_silent_cut(tmp_path):
    with TickLog(tmp_path, segment_bytes=1_000, sync_interval=None) as log:
        fill(log, 100)
    first = segment_files(tmp_path)[0]
    with open(first, "r+b") as f:
        f.seek(HEADER_SIZE + RECORD_HEADER_SIZE)  # the first record's payload
        f.write(b"?")
    with pytest.raises(TickLogError, match="checksum mismatch"):
        list(read_records(tmp_path))


def test_a_segment_header_cut_short_is_rewritten_and_the_sequence_continues(tmp_path):
    with TickLog(tmp_path, segment_bytes=1_000, sync_interval=None) as log:
        fill(log, 100)
        next_seq = log.next_seq
    last = segment_files(tmp_path)[-1]
    before = [r.seq for r in read_records(tmp_path) if r.position.segment < int(last.stem)]
    os.truncate(last, 5)
    with pytest.warns(TornTailWarning, match="header cut short"):
        log = TickLog(tmp_path, segment_bytes=1_000, sync_interval=None)
    with log:
        assert log.next_seq == before[-1] + 1 < next_seq
        log.append(b"after")
    seqs = [r.seq for r in read_records(tmp_path)]
    assert seqs == [*before, before[-1] + 1]


def test_one_process_at_a_time(tmp_path):
    with TickLog(tmp_path, sync_interval=None), pytest.raises(TickLogError, match="another process"):
        TickLog(tmp_path, sync_interval=None)
    TickLog(tmp_path, sync_interval=None).close()  # released on close


def test_release_deletes_only_segments_wholly_committed(tmp_path):
    with TickLog(tmp_path, segment_bytes=1_000, sync_interval=None) as log:
        fill(log, 200)
        log.sync()
        records = list(log.read())
        segments = log.segments()
        assert len(segments) > 4
        # committed to the middle of the third segment: the first two go
        third = [r for r in records if r.position.segment == segments[2]]
        mid = third[len(third) // 2]
        assert log.release(mid.next) == segments[:2]
        assert log.segments() == segments[2:]
        assert [r.seq for r in log.read(mid.next)] == list(range(mid.seq + 1, 200))
        assert log.release(mid.next) == [], "releasing again deletes nothing more"
        # committed to the very end of the third segment: it goes too
        end_of_third = third[-1]
        assert log.release(end_of_third.next) == [segments[2]]
        # everything committed: the segment being written stays
        assert log.release(log.end) == segments[3:-1]
        assert log.segments() == [segments[-1]]
        assert [r.seq for r in log.read(log.end)] == []
    with TickLog(tmp_path, segment_bytes=1_000, sync_interval=None) as log:
        assert log.segments() == [segments[-1]] and log.next_seq == 200
        log.append(b"next")
    kept = [r.seq for r in records if r.position.segment == segments[-1]]
    assert [r.seq for r in read_records(tmp_path)] == [*kept, 200]
    assert [r.seq for r in read_records(tmp_path, end_of_third.next)] == [*kept, 200]


_CHILD = textwrap.dedent(
    """
    import sys
    from warehouse.ticklog import TickLog
    sys.path.insert(0, {tests!r})
    from test_ticklog import frame

    log = TickLog({folder!r}, segment_bytes=200_000, sync_interval=0.005)
    seq = log.next_seq
    print("START", seq, flush=True)
    reported = log.durable
    while True:
        log.append(frame(seq))
        seq += 1
        if seq % 50 == 0 and log.durable != reported:
            reported = log.durable
            print("DURABLE", reported.segment, reported.offset, flush=True)
    """
)


def test_a_writer_killed_with_sigkill_keeps_every_fsynced_record(tmp_path):
    folder = tmp_path / "log"
    rng = random.Random(12)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected_start = 0
    for _round in range(4):
        code = _CHILD.format(tests=str(ROOT / "tests"), folder=str(folder))
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        assert child.stdout is not None
        try:
            start = child.stdout.readline().split()
            assert start[0] == "START" and int(start[1]) == expected_start
            durable = Position(0, 0)
            wanted = rng.randint(5, 40)
            for _ in range(wanted):
                line = child.stdout.readline().split()
                assert line and line[0] == "DURABLE", line
                durable = Position(int(line[1]), int(line[2]))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TornTailWarning)  # the unsynced tail may be cut anywhere
            log = TickLog(folder, segment_bytes=200_000, sync_interval=None)
        with log:
            records = list(log.read())
            assert log.end >= durable, "every position reported durable survived"
            # a position just past a new segment's header is the same point as the end of the
            # segment before it (the writer reports that after a rotation)
            last = records[-1].next
            same_point = durable.offset == HEADER_SIZE and durable.segment == last.segment + 1
            assert last >= durable or same_point
            assert [r.seq for r in records] == list(range(len(records))), "no gap, no duplicate"
            assert all(r.payload == frame(r.seq) for r in records), "every record intact"
            expected_start = log.next_seq
    assert expected_start > 1000
