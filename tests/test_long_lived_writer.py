"""A writer that runs all day: its connection is recycled, and its small files merged between commits."""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from test_warehouse_seam import MINUTE, minute_bars

from flows import stream_threads
from flows.stream_threads import Merges
from warehouse import Commit, Rows, Run, StreamPosition, Warehouse, connect
from warehouse.errors import LakeError


def _commit(wh: Warehouse, run: Run, i: int) -> None:
    rows = [Rows(MINUTE, minute_bars(["005930", "000660"], i, 1), replace=False)]
    wh.commit(Commit(run, rows, [StreamPosition("rt", 1, i)]))


def _files(wh: Warehouse) -> int:
    return dict(wh.sql("SELECT table_name, file_count FROM ducklake_table_info('lake')").rows())[MINUTE]


def test_the_connection_is_opened_again_every_recycle_after_commits(tmp_path: Path):
    with Warehouse(warehouse=tmp_path / "lake", recycle_after=3) as wh:
        run = Run.new("stream")
        seen = []  # the connections themselves: a freed one's id() can be reused by the next
        for i in range(7):
            seen.append(wh.con)  # the one commit i uses
            _commit(wh, run, i)
        assert wh.reopened == 2
        changes = [i for i in range(1, 7) if seen[i] is not seen[i - 1]]
        assert changes == [3, 6], "commits 3 and 6 (the 4th and 7th) on a new connection"
        assert wh.read(MINUTE).height == 14
        assert wh.stream_position("rt") == StreamPosition("rt", 1, 6)


def test_recycling_can_be_turned_off(tmp_path: Path):
    with Warehouse(warehouse=tmp_path / "lake", recycle_after=0) as wh:
        run = Run.new("stream")
        for i in range(4):
            _commit(wh, run, i)
        assert wh.reopened == 0


def test_merges_between_commits_lose_and_duplicate_nothing(tmp_path: Path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(stream_threads.time, "monotonic", lambda: clock[0])
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        run = Run.new("stream")
        merges = Merges(wh, [MINUTE, "stock_trades"], every=5.0)  # the second not there: skipped
        for i in range(12):
            _commit(wh, run, i)
            clock[0] += 1.0
            merges.maybe()  # due after commits 5 and 10 (5 s apart)
        assert merges.merges == 2 and merges.failures == 0, merges.stats()
        assert merges.files == 4 + 5  # 5 files became 1, then 6 (the merged one under the bound too) 1
        rows = wh.sql(f"SELECT ts, symbol, count(*) AS n FROM {MINUTE} GROUP BY ALL")
        assert rows.height == 24 and rows["n"].max() == 1
        assert _files(wh) == 3  # the merged one and commits 11 and 12
        assert wh.stream_position("rt") == StreamPosition("rt", 1, 11)


def test_a_failed_merge_is_counted_logged_and_tried_again(tmp_path: Path, monkeypatch, caplog):
    clock = [0.0]
    monkeypatch.setattr(stream_threads.time, "monotonic", lambda: clock[0])
    with Warehouse(warehouse=tmp_path / "lake") as wh:

        def broken(names: object) -> int:
            raise OSError("disk full\non two lines")

        monkeypatch.setattr(wh, "merge_small_files", broken)
        merges = Merges(wh, [MINUTE], every=1.0)
        with caplog.at_level(logging.WARNING, logger="flows.stream_threads"):
            for _ in range(3):
                clock[0] += 1.5
                merges.maybe()
        assert merges.failures == 3 and merges.merges == 0
        assert merges.stats()["last_error"] == "OSError: disk full on two lines"
        assert "merging the stream's small files failed (will retry): OSError: disk full" in caplog.text


def test_no_interval_never_merges(tmp_path: Path, monkeypatch):
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        monkeypatch.setattr(wh, "merge_small_files", lambda names: pytest.fail("merged"))
        merges = Merges(wh, [MINUTE], every=0.0)
        merges.maybe()
        assert merges.stats()["merges"] == 0


def _snapshots(wh: Warehouse) -> list[int]:
    return wh.sql("SELECT snapshot_id FROM ducklake_snapshots('lake') ORDER BY 1")["snapshot_id"].to_list()


def test_the_sessions_old_snapshots_expire_and_nothing_else(tmp_path: Path):
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        _commit(wh, Run.new("daily"), 0)  # before the session
        first = wh.snapshot()
        before = _snapshots(wh)
        run = Run.new("stream")
        for i in range(1, 6):
            _commit(wh, run, i)
        newest = wh.snapshot()
        assert wh.expire_session(first, first) == 0
        assert wh.expire_session(first, newest) == newest - first - 1  # all but the newest
        assert _snapshots(wh) == [*before, newest], "only the session's, and never the newest"
        assert wh.read(MINUTE).height == 12
        assert wh.stream_position("rt") == StreamPosition("rt", 1, 5)
        # the snapshot before the session is still there to travel to
        assert wh.sql(f"SELECT count(*) AS n FROM {MINUTE} AT (VERSION => {first})")["n"][0] == 2


def test_a_reader_keeps_its_snapshot_while_the_writer_merges_and_expires(tmp_path: Path):
    """What expiring during the session relies on: DuckLake keeps an open transaction's snapshot
    readable (a merged file carries its rows' snapshots, so this holds after a cleanup too)."""
    lake = tmp_path / "lake"
    with Warehouse(warehouse=lake) as wh:
        run, first = Run.new("stream"), wh.snapshot()
        for i in range(4):
            _commit(wh, run, i)
        reader = connect(read_only=True, warehouse=lake)  # a notebook's, in the middle of a transaction
        try:
            reader.execute("BEGIN")
            assert reader.execute(f"SELECT count(*) FROM {MINUTE}").fetchone() == (8,)
            for i in range(4, 8):
                _commit(wh, run, i)
            assert wh.merge_small_files([MINUTE]) > 0
            assert wh.expire_session(first, wh.snapshot()) > 0
            query = f"SELECT count(*), count(DISTINCT ts), sum(volume) FROM {MINUTE}"
            assert reader.execute(query).fetchone() == (8, 4, _volume(wh, 4)), "the reader's snapshot changed"
            reader.execute("COMMIT")
            assert reader.execute(query).fetchone() == (16, 8, _volume(wh, 8))
        finally:
            reader.close()


def _volume(wh: Warehouse, minutes: int) -> int:
    """The volume of the first ``minutes`` minutes' bars, read by the writer."""
    first = f"SELECT DISTINCT ts FROM {MINUTE} ORDER BY ts LIMIT {minutes}"
    got = wh.sql(f"SELECT sum(volume) AS v FROM {MINUTE} WHERE ts IN ({first})")
    return int(got["v"][0])


def test_merges_expire_the_sessions_old_snapshots_on_their_own_interval(tmp_path: Path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(stream_threads.time, "monotonic", lambda: clock[0])
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        run = Run.new("stream")
        _commit(wh, run, 0)
        before = _snapshots(wh)  # before the session: never the worker's to expire
        merges = Merges(wh, [MINUTE], every=1.0, keep=timedelta(seconds=2.5), expire_every=3.0)
        seen: dict[int, int] = {}
        for i in range(1, 8):
            _commit(wh, run, i)
            clock[0] += 1.0
            merges.maybe()  # a merge after every commit; an expiry at 3 s (nothing old enough) and 6 s
            seen[i] = wh.snapshot()
        stats = merges.stats()
        assert stats["merges"] == 7 and stats["failures"] == 0, stats
        # at 6 s, what was newest at 3 s (the expiry's mark then) is 2.5 s old: up to it, expired
        left = _snapshots(wh)
        assert [s for s in left if s <= before[-1]] == before
        assert not [s for s in left if before[-1] < s <= seen[3]]
        assert left[len(before)] == seen[3] + 1 and left[-1] == seen[7]
        assert stats["snapshots_expired"] == seen[3] - before[-1]
        assert wh.read(MINUTE).height == 16
        never = Merges(wh, [MINUTE], every=1.0, keep=None, expire_every=0.0)
        clock[0] += 10.0
        never.maybe()
        assert never.stats()["snapshots_expired"] == 0 and len(_snapshots(wh)) >= len(left)


def _held(lake: Path) -> set[str]:
    """The POSIX locks this process holds on the lake's catalog files (``/proc/locks``)."""
    inodes = {
        f":{p.stat().st_ino}" for p in (lake / "catalog.sqlite", lake / "catalog.sqlite-shm") if p.exists()
    }
    pid = f" {os.getpid()} "
    with open("/proc/locks") as fh:
        return {
            " ".join(line.split()[5:])
            for line in fh
            if pid in line and any(line.split()[5].endswith(i) for i in inodes)
        }


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux: reads /proc/locks")
def test_reading_the_snapshot_keeps_the_connections_catalog_locks(tmp_path: Path):
    """DuckDB's SQLite holds POSIX locks on the catalog (in WAL mode, the one telling other processes
    a connection still uses the WAL). Python's ``sqlite3``, a second copy of SQLite, drops them all
    when it closes the file; the warehouse never reads the catalog that way beside its connection."""
    lake = tmp_path / "lake"
    with Warehouse(warehouse=lake) as wh:
        run = Run.new("stream")
        for i in range(3):
            _commit(wh, run, i)
            wh.snapshot()  # read through DuckDB: its SQLite keeps locks on the catalog after the read
            assert _held(lake), "reading the snapshot left the connection without its locks"
        # what the rule avoids: a second SQLite copy closing the file drops every lock of the process
        db = sqlite3.connect(f"file:{lake / 'catalog.sqlite'}?mode=ro", uri=True)
        db.execute("SELECT max(snapshot_id) FROM ducklake_snapshot").fetchone()
        db.close()
        assert not _held(lake)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux: reads /proc/locks")
def test_the_collector_closes_nothing_that_drops_the_writers_locks(tmp_path: Path):
    """The first open's own SQLite connection (WAL mode for a new catalog) is closed at once: one left
    to the garbage collector closed the catalog file later, under the writer, and dropped its locks."""
    lake = tmp_path / "lake"
    gc.collect()
    gc.disable()  # what the open leaves behind stays until the collection below, not at a random point
    try:
        with Warehouse(warehouse=lake) as wh:
            _commit(wh, Run.new("stream"), 0)
            wh.snapshot()
            held = _held(lake)
            assert any(lock.endswith(" 1073741826 1073742335") for lock in held), held  # SQLite's SHARED
            gc.collect()
            assert _held(lake) >= held, "a collected object closed the catalog and dropped the writer's locks"
    finally:
        gc.enable()


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="Linux: reads /proc/locks")
def test_a_second_connection_in_the_process_keeps_the_first_ones_locks(tmp_path: Path):
    """The checks before an open read the catalog file outside DuckDB: only at the process's first open."""
    lake = tmp_path / "lake"
    with Warehouse(warehouse=lake) as wh:
        _commit(wh, Run.new("stream"), 0)
        wh.snapshot()
        held = _held(lake)
        assert held
        reader = connect(read_only=True, warehouse=lake)  # a notebook's, beside the writer
        try:
            ranges = {lock.split(" ", 1)[1] for lock in held}  # (SQLite may make a new -shm file)
            after = {lock.split(" ", 1)[1] for lock in _held(lake)}
            assert after >= ranges, "opening a second connection dropped the first one's locks"
            assert reader.execute(f"SELECT count(*) FROM {MINUTE}").fetchone() == (2,)
        finally:
            reader.close()
        _commit(wh, Run.new("stream"), 1)
        assert wh.read(MINUTE).height == 4
    del reader
    # every connection gone: the next open checks the file again, and refuses a damaged one
    (lake / "catalog.sqlite").write_bytes(b"not a catalog" * 100)
    with pytest.raises(LakeError):
        connect(read_only=True, warehouse=lake)
