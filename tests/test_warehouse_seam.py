"""The transaction seam: rows, coverage, cursors, stream positions and ledger commit whole or not at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

import warehouse.commit as commit_mod
from schemas.calendar import KST
from warehouse import (
    Commit,
    Cursor,
    Rows,
    Run,
    Span,
    StreamPosition,
    Warehouse,
    WarehouseError,
    connect,
    dataset,
    options_key,
)

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2025, 12, 1)
MINUTE = "stock_bars_minute"


def minute_bars(symbols: list[str], start: int, n: int, day: date = DAY) -> pl.DataFrame:
    """``n`` one-minute bars per symbol from minute ``start`` after 09:00 KST: any schema the registry has."""
    ds = dataset(MINUTE)
    open_ = datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST)
    rows = len(symbols) * n
    cols: dict[str, list[object]] = {}
    for col, dtype in ds.schema.items():
        if col == "run_id":
            continue
        if col == ds.symbol:
            cols[col] = [s for s in symbols for _ in range(n)]
        elif col == ds.time:
            cols[col] = [open_ + timedelta(minutes=start + i) for _ in symbols for i in range(n)]
        elif dtype == pl.Date:  # the KST trading day of ts
            cols[col] = [day] * rows
        elif dtype == pl.Boolean:
            cols[col] = [True] * rows
        elif dtype.is_integer():
            cols[col] = [1 + (i % 50) for i in range(rows)]
        elif dtype.is_float():
            cols[col] = [1.5] * rows
        else:
            cols[col] = ["x"] * rows
    return pl.DataFrame(cols, schema={c: t for c, t in ds.schema.items() if c != "run_id"})


@pytest.fixture
def wh(tmp_path: Path):
    with Warehouse(warehouse=tmp_path / "lake") as w:
        yield w


def _writes(wh: Warehouse) -> pl.DataFrame:
    return wh.sql("SELECT * FROM meta.writes ORDER BY committed_at")


def test_a_stream_commit_puts_rows_position_and_ledger_in_one_transaction(wh):
    run = Run.new("stream")
    frame = minute_bars(["005930", "000660"], 0, 30)
    result = wh.commit(Commit(run, [Rows(MINUTE, frame)], [StreamPosition("realtime", 3, 4096)]))
    assert result.rows == 60 and result.writes[0].replaced == 0 and result.writes[0].spans == ()
    assert wh.read(MINUTE).height == 60
    assert wh.stream_position("realtime") == StreamPosition("realtime", 3, 4096)
    assert wh.stream_position("other") is None
    ledger = _writes(wh).row(0, named=True)
    assert (
        ledger["dataset"],
        ledger["rows"],
        ledger["symbols"],
        ledger["start_date"],
        ledger["end_date"],
    ) == (
        MINUTE,
        60,
        2,
        DAY,
        DAY,
    )
    assert wh.coverage(MINUTE).is_empty(), "a stream records no coverage unless it says so"
    assert wh.runs()["run_id"].to_list() == [run.id]
    # the next micro-batch moves the position on; a reader sees rows and position together
    wh.commit(
        Commit(run, [Rows(MINUTE, minute_bars(["005930"], 30, 5))], [StreamPosition("realtime", 3, 9000)])
    )
    reader = connect(warehouse=wh.config.root)
    try:
        assert reader.sql(f"SELECT count(*) FROM {MINUTE}").fetchone() == (65,)
        newest = "ORDER BY log_segment DESC, log_offset DESC LIMIT 1"  # positions are appended
        assert reader.sql(
            f"SELECT log_segment, log_offset FROM meta.stream_positions {newest}"
        ).fetchall() == [(3, 9000)]
    finally:
        reader.close()
    positions = wh.stream_positions()
    assert positions.select("stream", "log_segment", "log_offset", "run_id").rows() == [
        ("realtime", 3, 9000, run.id)
    ]


@pytest.mark.parametrize("fail_in", ["record_position", "record_writes", "put_rows"])
def test_a_failure_anywhere_in_the_transaction_leaves_neither_rows_nor_position(wh, monkeypatch, fail_in):
    run = Run.new("stream")
    wh.commit(Commit(run, [Rows(MINUTE, minute_bars(["005930"], 0, 10))], [StreamPosition("rt", 1, 100)]))
    before_rows, before_writes = wh.read(MINUTE), _writes(wh)
    real = getattr(commit_mod, fail_in)
    calls = []

    def boom(*args, **kwargs):
        calls.append(fail_in)
        if fail_in == "put_rows":
            real(*args, **kwargs)  # the rows are in the transaction, then it fails
        raise RuntimeError(f"injected failure in {fail_in}")

    monkeypatch.setattr(commit_mod, fail_in, boom)
    batch = minute_bars(["005930", "000660"], 10, 20)
    with pytest.raises(RuntimeError, match="injected"):
        wh.commit(Commit(run, [Rows(MINUTE, batch)], [StreamPosition("rt", 1, 900)]))
    assert calls == [fail_in], "not retried: only conflicts are"
    assert wh.read(MINUTE).equals(before_rows)
    assert wh.stream_position("rt") == StreamPosition("rt", 1, 100)
    assert _writes(wh).equals(before_writes)
    # the same commit again, without the failure, lands whole and once
    monkeypatch.setattr(commit_mod, fail_in, real)
    wh.commit(Commit(run, [Rows(MINUTE, batch)], [StreamPosition("rt", 1, 900)]))
    assert wh.read(MINUTE).height == 10 + 40
    assert wh.stream_position("rt") == StreamPosition("rt", 1, 900)
    assert _writes(wh).height == before_writes.height + 1


def test_a_conflict_reruns_the_whole_transaction_and_commits_once(wh, monkeypatch):
    real = commit_mod.record_position
    attempts = []

    def locked_once(con, position, run_id):
        attempts.append(position)
        real(con, position, run_id)
        if len(attempts) == 1:
            raise duckdb.TransactionException("TransactionContext Error: database is locked")

    monkeypatch.setattr(commit_mod, "record_position", locked_once)
    run = Run.new("stream")
    result = wh.commit(
        Commit(run, [Rows(MINUTE, minute_bars(["005930"], 0, 25))], [StreamPosition("rt", 2, 50)])
    )
    assert len(attempts) == 2
    assert result.rows == 25 and wh.read(MINUTE).height == 25
    assert wh.stream_position("rt") == StreamPosition("rt", 2, 50)
    assert _writes(wh).height == 1


def test_a_process_killed_between_rows_and_position_leaves_neither(tmp_path):
    lake = tmp_path / "lake"
    with Warehouse(warehouse=lake) as wh:
        wh.commit(Commit(Run.new("stream"), [Rows(MINUTE, minute_bars(["005930"], 0, 5))], []))
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        import warehouse.commit as commit_mod
        from test_warehouse_seam import MINUTE, minute_bars
        from warehouse import Commit, Rows, Run, StreamPosition, Warehouse

        def die(con, position, run_id):
            # the rows are inserted in the open transaction: the process dies before the position
            assert con.sql("SELECT count(*) FROM {MINUTE}").fetchone()[0] == 5 + 40
            print("DYING", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        commit_mod.record_position = die
        with Warehouse(warehouse={str(lake)!r}) as wh:
            frame = minute_bars(["005930", "000660"], 5, 20)
            wh.commit(Commit(Run.new("stream"), [Rows(MINUTE, frame)], [StreamPosition("rt", 7, 77)]))
        print("SURVIVED", flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == -9 and "DYING" in proc.stdout and "SURVIVED" not in proc.stdout, proc.stderr
    with Warehouse(warehouse=lake) as wh:
        assert wh.read(MINUTE).height == 5
        assert wh.stream_position("rt") is None
        assert _writes(wh).height == 1


def test_a_stream_position_never_moves_backwards(wh):
    run = Run.new("stream")
    wh.commit(Commit(run, [], [StreamPosition("rt", 4, 500)]))
    wh.commit(Commit(run, [], [StreamPosition("rt", 4, 500)]))  # the same position again is fine
    with pytest.raises(WarehouseError, match=r"behind the committed \(4, 500\)"):
        wh.commit(Commit(run, [Rows(MINUTE, minute_bars(["005930"], 0, 3))], [StreamPosition("rt", 3, 900)]))
    assert wh.read(MINUTE).is_empty()
    assert wh.stream_position("rt") == StreamPosition("rt", 4, 500)
    wh.commit(Commit(run, [], [StreamPosition("rt", 5, 16)]))
    assert wh.stream_position("rt") == StreamPosition("rt", 5, 16)
    with pytest.raises(WarehouseError):
        StreamPosition("rt", -1, 0)


def test_positions_and_ledger_rows_stay_in_the_catalog_not_in_a_file_per_commit(wh):
    run = Run.new("stream")
    for i in range(1, 21):
        batch = minute_bars(["005930"], i, 1)
        wh.commit(Commit(run, [Rows(MINUTE, batch, replace=False)], [StreamPosition("rt", 1, i * 100)]))
    files = dict(wh.sql("SELECT table_name, file_count FROM ducklake_table_info('lake')").rows())
    assert files["stream_positions"] == 0 and files["writes"] == 0 and files["runs"] == 0
    assert files[MINUTE] == 20, "the rows themselves go to Parquet (inlining costs ~0.35 ms a row)"
    assert wh.read(MINUTE).height == 20 and _writes(wh).height == 20
    assert wh.sql("SELECT count(*) AS n FROM meta.stream_positions")["n"][0] == 20  # appended, never updated
    wh.compact(older_than=timedelta(0))
    assert wh.stream_position("rt") == StreamPosition("rt", 1, 2000)
    assert (
        wh.sql("SELECT count(*) AS n FROM meta.stream_positions")["n"][0] == 1
    )  # compaction keeps the newest


def test_one_commit_spans_datasets_coverage_and_cursors_and_a_bad_part_stops_all(wh):
    run = Run.new("backfill")
    options = {"tic_scope": 1, "adjusted": True}
    spans = [Span("005930", options_key(options), DAY, DAY)]
    cursor = Cursor("ka10080", "005930", options_key(options), "next-key-1", DAY)
    daily = dataset("stock_bars_daily")
    bad = pl.DataFrame({"symbol": ["005930"]})
    with pytest.raises(WarehouseError, match=f"does not fit dataset {daily.name}"):
        wh.commit(
            Commit(
                run,
                [
                    Rows(MINUTE, minute_bars(["005930"], 0, 10), coverage=spans, cursor=cursor),
                    Rows(daily.name, bad),
                ],
                [StreamPosition("rt", 1, 1)],
            )
        )
    assert wh.read(MINUTE).is_empty() and wh.coverage().is_empty() and wh.stream_position("rt") is None
    assert wh.cursor(MINUTE, "005930", options_key(options), "ka10080") is None
    result = wh.commit(
        Commit(run, [Rows(MINUTE, minute_bars(["005930"], 0, 10), coverage=spans, cursor=cursor)], [])
    )
    assert result.writes[0].spans == tuple(spans)
    assert wh.covered(MINUTE, "005930", options) == [(DAY, DAY)]
    assert wh.cursor(MINUTE, "005930", options_key(options), "ka10080") == cursor
    # rows replace their keys: the same commit again changes nothing but the ledger
    again = wh.commit(Commit(run, [Rows(MINUTE, minute_bars(["005930"], 0, 10), coverage=spans)], []))
    assert again.writes[0].replaced == 10 and wh.read(MINUTE).height == 10


def test_a_running_stream_merges_its_own_small_files_and_nothing_else(wh):
    run = Run.new("stream")
    for i in range(1, 11):
        batch = minute_bars(["005930"], i, 1)
        wh.commit(Commit(run, [Rows(MINUTE, batch, replace=False)], [StreamPosition("rt", 1, i * 100)]))
    rows = wh.read(MINUTE)

    def files() -> int:
        return dict(wh.sql("SELECT table_name, file_count FROM ducklake_table_info('lake')").rows())[MINUTE]

    assert files() == 10
    assert wh.merge_small_files(["stock_trades"]) == 0  # not there yet: skipped
    assert files() == 10, "another table's files left alone"
    assert wh.merge_small_files([MINUTE]) > 0
    assert files() == 1, "the micro-batches merged"
    assert wh.read(MINUTE).equals(rows)
    assert wh.stream_position("rt") == StreamPosition("rt", 1, 1000)
    assert wh.sql("SELECT count(*) AS n FROM meta.stream_positions")["n"][0] == 1


def test_a_merge_leaves_files_over_the_small_file_bound_alone(wh, monkeypatch):
    """Files an earlier merge made (over ``SMALL_FILE``) are not rewritten by the next merge."""
    from warehouse import maintenance

    run = Run.new("stream")
    for i in range(1, 5):
        wh.commit(Commit(run, [Rows(MINUTE, minute_bars(["005930"], i, 1), replace=False)], []))
    sizes = wh.sql(f"SELECT data_file_size_bytes AS n FROM ducklake_list_files('lake', '{MINUTE}')")["n"]
    monkeypatch.setattr(maintenance, "SMALL_FILE", int(sizes.min()) - 1)  # every file counts as big
    assert wh.merge_small_files([MINUTE]) == 0
    monkeypatch.setattr(maintenance, "SMALL_FILE", int(sizes.max()) * 10)
    assert wh.merge_small_files([MINUTE]) == 3  # four small files became one
