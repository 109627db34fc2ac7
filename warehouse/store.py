"""The warehouse handle: one lake connection, one lock, and the transaction seam every write goes through.

``Warehouse.commit(Commit(...))`` is one DuckLake transaction (``warehouse.commit``):
rows per dataset with their coverage and fetch cursor, stream log positions, and
the ledger. ``Warehouse.write(dataset, frame, run)`` is the batch form of it:

1. delete the rows whose key the frame carries and insert the frame (``writer``),
2. merge the frame's time span into ``meta.coverage`` (``coverage``),
3. save the fetch cursor, if any, in ``meta.cursors`` (``progress``),
4. append a row to the ledger ``meta.writes`` and open the run in ``meta.runs`` (``ledger``).

A crash at any point leaves the previous snapshot: the catalog commit is
the last step. Another writer holding the catalog makes the transaction
run again from the start (it is idempotent, so that is safe).

Reading (``reading``), coverage questions (``coverage``) and maintenance
(``maintenance``) are plain functions of a connection; the methods here hold the
lock around them, because one DuckDB connection is not safe for concurrent use.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from warehouse import coverage as _coverage
from warehouse import maintenance, reading, snapshots, views
from warehouse import progress as _progress
from warehouse.commit import Commit, CommitResult, Part, Rows, WriteResult, prepare, results, transaction
from warehouse.coverage import Span, options_key, spans_of
from warehouse.datasets import Dataset, dataset
from warehouse.lake import LAKE, LakeConfig, open_lake, retry_transaction
from warehouse.ledger import Run, replace_run, runs_frame
from warehouse.migrate import migrate
from warehouse.progress import Cursor, StreamGap, StreamPosition
from warehouse.tables import atomic, create_meta, dataset_tables, ensure_table, sql_type
from warehouse.writer import conform

__all__ = [
    "Commit",
    "CommitResult",
    "Cursor",
    "Rows",
    "Run",
    "Span",
    "StreamPosition",
    "Warehouse",
    "WriteResult",
    "connect",
    "options_key",
    "read",
    "retry_transaction",
    "sql_type",
]

F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """One DuckDB connection is not safe for concurrent use: every method holds the warehouse's lock."""

    @functools.wraps(method)
    def wrapper(self: Warehouse, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


RECYCLE_AFTER = 100  # commits on one connection before it is closed and opened again (see Warehouse)


class Warehouse:
    """The lake, opened for writing. One per process is enough; writes are serialized by a lock.

    The connection is closed and opened again after every ``recycle_after`` commits (about 0.1 s).
    DuckLake 0.3 (duckdb 1.4.4) keeps the table statistics of every snapshot its connection
    committed and never lets them go (duckdb/ducklake#1018, fixed in later DuckLake), and DuckDB
    keeps memory a merge used until its connection closes: a stream worker committing three times
    a second grew about 10 MB a minute on one connection (about 50 KB a commit with the two stream
    tables), and is flat with the connection reopened every 100 commits (measured here).
    """

    def __init__(
        self,
        config: LakeConfig | None = None,
        *,
        warehouse: str | Path | None = None,
        recycle_after: int = RECYCLE_AFTER,
    ) -> None:
        self.config = config or LakeConfig.load(warehouse)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()
        self._ready: set[str] = set()
        self.recycle_after = recycle_after
        self._commits = 0  # on the open connection
        self.reopened = 0  # times the connection was recycled

    def __repr__(self) -> str:
        return f"Warehouse({self.config.describe()})"

    # ------------------------------------------------------------------ connection

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                con = self._con = open_lake(self.config)
                # a writer reads back little of what it wrote; cached, a stream's merges kept ~80 MB
                con.execute("SET enable_external_file_cache = false")
                retry_transaction(lambda: create_meta(con), con, also=("already exists",))
                retry_transaction(lambda: migrate(con), con)  # a lake of an older layout, in place
            return self._con

    @_locked
    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._ready.clear()
            self._commits = 0

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_locked
    def tables(self) -> set[str]:
        return dataset_tables(self.con)

    @_locked
    def ensure(self, ds: Dataset) -> None:
        """Create the dataset's table (partitioned, commented), or add columns the registry gained."""
        if ds.name in self._ready:
            return
        con = self.con
        retry_transaction(lambda: ensure_table(con, ds), con, also=("already exists",))
        self._ready.add(ds.name)

    # ------------------------------------------------------------------ the transaction seam

    @_locked
    def commit(self, commit: Commit) -> CommitResult:
        """Apply ``commit`` in one transaction: its rows, coverage, cursors, positions and ledger, or none.

        A stream commits its micro-batch and the log position it reached::

            wh.commit(Commit(run, rows=[Rows("stock_trades", trades)],
                             positions=[StreamPosition("realtime", segment, offset)]))
        """
        return self._apply(commit.run, prepare(commit), commit.positions, commit.gaps, commit.healed)

    def _apply(
        self,
        run: Run,
        parts: Sequence[Part],
        positions: Sequence[StreamPosition],
        gaps: Sequence[StreamGap] = (),
        healed: Sequence[StreamGap] = (),
    ) -> CommitResult:
        for part in parts:
            self.ensure(part.ds)
        con = self.con
        replaced = retry_transaction(lambda: transaction(con, run, parts, positions, gaps, healed), con)
        self._commits += 1
        if self.recycle_after and self._commits >= self.recycle_after:
            self.close()  # the next use opens it again (see the class's docstring)
            self.reopened += 1
        return results(parts, replaced, positions)

    @_locked
    def write(
        self,
        name: str,
        frame: pl.DataFrame,
        run: Run,
        coverage: Sequence[Span] | None = None,
        cursor: Cursor | None = None,
    ) -> WriteResult:
        """Replace the frame's keys in ``name``, record coverage and the ledger: one transaction.

        ``coverage`` says which days were fetched (a window with no rows is still
        covered); by default each symbol and option set covers its rows' first to
        last day.
        """
        ds = dataset(name)
        rows = conform(ds, frame)
        spans = list(coverage) if coverage is not None else spans_of(ds, rows)
        if rows.is_empty() and not spans and cursor is None:
            return WriteResult(ds.name, 0, 0, ())
        return self._apply(run, [Part.of(ds, rows, spans, cursor)], ()).writes[0]

    @_locked
    def snapshot(self) -> int:
        """The lake's newest snapshot id (one more per commit, whoever commits), about 3 ms.

        A writer that caches what it committed compares it before and after its own commit: any
        other step means another process committed. Read through this handle's connection, never
        with Python's ``sqlite3`` beside it: that is a second copy of SQLite in the process, and
        closing its file drops the POSIX locks DuckDB's copy holds on the catalog (in WAL mode, the
        lock that tells other processes a connection is still using the WAL). Another process
        opening the catalog then takes itself for the first and resets the WAL index under this
        writer: "database disk image is malformed" within a minute of a stream worker next to
        a merge process (measured here)."""
        row = self.con.execute(f"FROM {LAKE}.current_snapshot()").fetchone()
        return int(row[0]) if row and row[0] is not None else -1

    # ------------------------------------------------------------------ progress

    @_locked
    def cursor(self, name: str, symbol: str, options: str, api_id: str) -> Cursor | None:
        """The saved position of an unfinished fetch, if any."""
        return _progress.read_cursor(self.con, name, symbol, options, api_id)

    @_locked
    def stream_position(self, stream: str) -> StreamPosition | None:
        """How far ``stream``'s log is committed (``None``: nothing yet; replay from the start)."""
        return _progress.stream_position(self.con, stream)

    @_locked
    def stream_positions(self) -> pl.DataFrame:
        return _progress.stream_positions(self.con)

    @_locked
    def stream_gaps(self, day: date | None = None) -> pl.DataFrame:
        """Recorded stream gaps (per symbol), those touching ``day`` when given."""
        return _progress.stream_gaps(self.con, day)

    # ------------------------------------------------------------------ run ledger

    @_locked
    def record_run(self, run: Run, status: str, summary: Mapping[str, Any] | None = None) -> None:
        """Open (status ``running``) or close (``ok``, ``failed``, ...) a run in ``meta.runs``."""
        con = self.con
        retry_transaction(lambda: atomic(con, lambda: replace_run(con, run, status, summary)), con)

    @_locked
    def runs(self, limit: int = 20) -> pl.DataFrame:
        return runs_frame(self.con, limit)

    # ------------------------------------------------------------------ coverage

    @_locked
    def coverage(self, name: str | None = None) -> pl.DataFrame:
        return _coverage.coverage_frame(self.con, name)

    @_locked
    def covered(self, name: str, symbol: str, options: Mapping[str, Any]) -> list[tuple[date, date]]:
        return _coverage.covered(self.con, name, symbol, options)

    @_locked
    def spans(self, name: str) -> dict[tuple[str, str], list[tuple[date, date]]]:
        """Every stored span of dataset ``name`` by (symbol, options key): one query for a whole plan."""
        return _coverage.spans_by_key(self.con, name)

    @_locked
    def missing(
        self, name: str, symbol: str, options: Mapping[str, Any], start: date, end: date
    ) -> list[tuple[date, date]]:
        """The parts of [start, end] not yet fetched, trimmed to trading days (what a backfill must fetch)."""
        return _coverage.missing(self.con, name, symbol, options, start, end)

    @_locked
    def gaps(self, name: str | None = None) -> pl.DataFrame:
        """Trading days inside each covered stretch's hull that were never fetched."""
        return _coverage.gaps(self.con, name)

    # ------------------------------------------------------------------ reading

    @_locked
    def sql(self, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        return self.con.execute(query, params or []).pl()

    @_locked
    def read(
        self,
        name: str,
        symbols: str | Sequence[str] | None = None,
        start: date | str | None = None,
        end: date | str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """A dataset's rows, optionally for some symbols, days and columns, in key order."""
        return reading.read_dataset(self.con, name, symbols, start, end, columns)

    @_locked
    def resolve_names(self, tokens: Sequence[str], kind: str | None = None) -> list[str]:
        """Codes as they are, names as their codes (``reading.resolve_names``; ``kind``: stock or sector)."""
        return reading.resolve_names(self.con, tokens, kind)

    @_locked
    def status(self) -> pl.DataFrame:
        """Per dataset in the lake: rows, symbols, first and last time, last write and run, gap days."""
        return reading.status_frame(self.con)

    # ------------------------------------------------------------------ maintenance

    @_locked
    def compact(self, older_than: timedelta = timedelta(days=7), dry_run: bool = False) -> dict[str, int]:
        """Sort closed bar partitions, merge small files, expire old snapshots, delete files no one needs.

        Each closed month of minute bars (day of ticks) not yet laid out by symbol is
        rewritten sorted by symbol and time in one transaction, its row count and
        checksum compared before the commit (``maintenance.sort_closed``). Files of
        expired snapshots (and orphans from crashed writers) are deleted only once they
        are ``older_than`` too, so a long-running reader is not cut off.
        ``dry_run`` counts what would be expired and deleted and changes nothing.
        """
        return maintenance.compact(self.con, older_than, dry_run)

    @_locked
    def merge_small_files(self, names: Sequence[str]) -> int:
        """Merge the small files of datasets ``names`` (those there) and nothing else; the files merged.

        On this handle's connection, holding the lock: this handle's commits wait for it. Not on a
        second connection, in this process or another, beside the commits: with a SQLite catalog
        a merge beside a committer never commits (``flows.stream_threads.Merges``)."""
        tables = [n for n in names if n in self.tables()]
        if not tables:
            return 0
        con = self.con
        return int(retry_transaction(lambda: maintenance.merge_small_files(con, tables), con))

    @_locked
    def upkeep_only(self, since: int, until: int) -> bool:
        """Whether the snapshots after ``since`` up to ``until`` changed no row (``snapshots``)."""
        return snapshots.upkeep_only(self.con, since, until)

    @_locked
    def expire_session(self, after: int, upto: int) -> int:
        """Expire the snapshots after ``after`` up to ``upto`` (``snapshots.expire_session``)."""
        con = self.con
        return int(retry_transaction(lambda: snapshots.expire_session(con, after, upto), con))

    @_locked
    def sort_day(self, name: str, day: date) -> int:
        """Rewrite ``day`` of dataset ``name`` sorted by its symbol and time (a stream's day at the close)."""
        ds = dataset(name)
        order = tuple(c for c in (ds.symbol, ds.time) if c)
        con = self.con
        return int(retry_transaction(lambda: maintenance.sort_day(con, ds.name, day, order), con))


def connect(
    read_only: bool = True,
    warehouse: str | Path | None = None,
    catalog: str | None = None,
    data_path: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on which every dataset is a plain table name (``.pl()`` gives Polars).

    It has the ``kst_date`` macro and the views of ``warehouse.views`` (``daily``,
    ``<snapshot>_latest``, ``symbols``) as TEMP objects, on a read-only lake too.

    >>> con = connect()                                  # doctest: +SKIP
    >>> con.sql("SELECT * FROM stock_bars_daily WHERE symbol = '005930'").pl()   # doctest: +SKIP
    """
    config = LakeConfig.load(warehouse, catalog, data_path)
    if not read_only:
        with Warehouse(config) as wh:
            wh.con  # noqa: B018 - creates the meta tables on a new lake, migrates an old one
    con = open_lake(config, read_only=read_only)
    try:
        views.install(con)
    except BaseException:
        con.close()
        raise
    return con


def read(
    dataset: str,
    symbols: str | Sequence[str] | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    columns: Sequence[str] | None = None,
    warehouse: str | Path | None = None,
) -> pl.DataFrame:
    """A dataset's rows as Polars, for notebooks: opens the lake read-only, reads, closes.

    Pruned by partition and symbol (``reading.read_dataset``): only the files of the
    days and symbols asked for are read, and only ``columns`` of them.

    >>> read("stock_bars_daily", ["005930"], "2025-01-02", columns=["date", "close"])  # doctest: +SKIP
    """
    con = connect(read_only=True, warehouse=warehouse)
    try:
        return reading.read_dataset(con, dataset, symbols, start, end, columns)
    finally:
        con.close()
