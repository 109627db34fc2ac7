"""The transaction seam: everything one commit puts in the lake, applied in one DuckLake transaction.

A ``Commit`` is data: the run, the rows per dataset (each with the coverage and
fetch cursor that go with it) and the stream log positions they bring the lake
up to. Batch writes and stream commits are the same thing with different parts:

- batch (``Warehouse.write``): rows + coverage + cursor + ledger;
- stream: rows of each realtime dataset + the log position + ledger.

``transaction`` applies a prepared commit between ``BEGIN`` and ``COMMIT``; the
catalog commit is the last step, so a crash at any point leaves the previous
snapshot and a failure of any part leaves nothing of the others. Running it
again after a conflict is safe: rows replace their keys, coverage merges,
the cursor and position are overwritten (``Warehouse.commit`` retries it).

On small commits. DuckLake 0.3 (the extension in duckdb 1.4.4) inlines inserts
of fewer than ``data_inlining_row_limit`` rows into the catalog instead of
writing a Parquet file, with a SQLite catalog too (since duckdb 1.4.3), but
there each inlined row is a separate catalog insert: measured here, 1,000 rows
cost ~0.37 s and 10,000 rows ~3.5 s, against ~25-85 ms for a Parquet file of
up to 50,000 rows. So inlining suits the few rows of the ``meta`` tables a
commit touches (positions, ledger, cursors, a merge's coverage: enabled on
those tables, see ``warehouse.tables``), not micro-batches of ticks: those write
a file per commit and need merging (``Warehouse.compact``).

Several parts of one dataset in a commit (a batch of symbols) are put with one
delete and one insert and one coverage merge: with a SQLite catalog each
statement that reads a lake table lists all the lake's files, so statements per
commit, not rows, are what a write costs.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from warehouse.coverage import Span, record_coverage, spans_of
from warehouse.datasets import Dataset, dataset
from warehouse.ledger import Run, open_run, record_writes
from warehouse.progress import (
    Cursor,
    StreamGap,
    StreamPosition,
    mark_healed,
    record_cursor,
    record_gaps,
    record_position,
)
from warehouse.tables import atomic
from warehouse.writer import conform, insert_order, put_many, put_rows

__all__ = ["Commit", "CommitResult", "Part", "Rows", "WriteResult", "prepare", "results", "transaction"]


@dataclass(frozen=True)
class Rows:
    """One dataset's share of a commit.

    ``frame`` has the dataset's columns without ``run_id`` (the commit adds it).
    ``coverage``: the days these rows stand for, merged into ``meta.coverage``
    (``None``: record no coverage, as a stream does). ``cursor``: the fetch
    position to save with them. ``replace``: delete the rows with the frame's keys
    first (idempotent); ``False`` only appends.
    """

    dataset: str
    frame: pl.DataFrame
    coverage: Sequence[Span] | None = None
    cursor: Cursor | None = None
    replace: bool = True


@dataclass(frozen=True)
class Commit:
    """Everything one transaction writes: rows per dataset, stream positions, and the ledger for ``run``."""

    run: Run
    rows: Sequence[Rows] = ()
    positions: Sequence[StreamPosition] = ()
    gaps: Sequence[StreamGap] = ()  # stream gaps the committed log records reported
    healed: Sequence[StreamGap] = ()  # recorded gaps these rows heal


@dataclass(frozen=True)
class WriteResult:
    """What a commit did to one dataset: rows inserted, rows replaced, coverage recorded."""

    dataset: str
    rows: int
    replaced: int
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class CommitResult:
    writes: tuple[WriteResult, ...]
    positions: tuple[StreamPosition, ...]

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.writes)


@dataclass(frozen=True)
class Part:
    """A ``Rows`` checked and ready: conformed rows, the order they go in, and the ledger's extents."""

    ds: Dataset
    rows: pl.DataFrame
    order: pl.Series | None  # writer.insert_order
    spans: tuple[Span, ...]  # recorded as coverage
    cursor: Cursor | None
    replace: bool
    extents: tuple[Span, ...]  # what the ledger row counts: the coverage, or the rows' own days

    @classmethod
    def of(
        cls,
        ds: Dataset,
        rows: pl.DataFrame,
        spans: Sequence[Span] | None,
        cursor: Cursor | None = None,
        replace: bool = True,
    ) -> Part:
        """A part from rows already conformed (``writer.conform``)."""
        recorded = tuple(spans) if spans is not None else ()
        extents = recorded if spans is not None else tuple(spans_of(ds, rows))
        return cls(ds, rows, insert_order(ds, rows), recorded, cursor, replace, extents)


def prepare(commit: Commit) -> list[Part]:
    """Check every part of ``commit`` before the transaction: a bad frame fails the whole commit."""
    parts = []
    for r in commit.rows:
        ds = dataset(r.dataset)
        parts.append(Part.of(ds, conform(ds, r.frame), r.coverage, r.cursor, r.replace))
    return parts


def transaction(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    parts: Sequence[Part],
    positions: Sequence[StreamPosition],
    gaps: Sequence[StreamGap] = (),
    healed: Sequence[StreamGap] = (),
) -> list[int]:
    """Apply ``parts``, ``positions`` and gaps in one transaction; the rows each part replaced."""
    replaced = atomic(con, lambda: _apply(con, run, parts, positions, gaps, healed))
    _opened.setdefault(con, set()).add(run.id)  # committed: the run is in meta.runs now
    return replaced


# Runs this connection has committed (so they are in meta.runs): a commit of such a run
# skips open_run's look-up, a statement that lists the lake's files (see warehouse.tables).
# Only meta.runs' own replace_run deletes a run's row, and it puts it back in the same transaction.
_opened: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, set[str]] = weakref.WeakKeyDictionary()


def _apply(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    parts: Sequence[Part],
    positions: Sequence[StreamPosition],
    gaps: Sequence[StreamGap],
    healed: Sequence[StreamGap],
) -> list[int]:
    replaced = _put(con, parts, run.id)
    for ds, spans in _spans_by_dataset(parts):
        record_coverage(con, ds, spans, run.id)
    for part in parts:
        if part.cursor is not None:
            record_cursor(con, part.ds, part.cursor, run.id)
    writes = [
        (
            part.ds.name,
            part.rows.height,
            n,
            len({s.symbol for s in part.extents}),
            min((s.start for s in part.extents), default=None),
            max((s.end for s in part.extents), default=None),
        )
        for part, n in zip(parts, replaced, strict=True)
    ]
    record_writes(con, writes, run.id)
    if run.id not in _opened.get(con, ()):
        open_run(con, run)
    record_gaps(con, gaps, run.id)
    mark_healed(con, healed, run.id)
    for position in positions:
        record_position(con, position, run.id)
    return replaced


def _put(con: duckdb.DuckDBPyConnection, parts: Sequence[Part], run_id: str) -> list[int]:
    """Put every part's rows, marked with ``run_id``; the parts of one dataset (all replacing, or all
    appending) together.

    One delete and one insert per dataset (``writer.put_many``) leave what the parts
    put one after the other would, and count each part's replaced rows the same.
    """
    replaced = [0] * len(parts)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, part in enumerate(parts):
        groups[part.ds.name].append(i)
    for idx in groups.values():
        first = parts[idx[0]]
        if len(idx) > 1 and all(parts[i].replace == first.replace for i in idx):
            counts = put_many(con, first.ds, [parts[i].rows for i in idx], run_id, first.replace)
            for i, n in zip(idx, counts, strict=True):
                replaced[i] = n
        else:
            for i in idx:
                p = parts[i]
                replaced[i] = put_rows(con, p.ds, p.rows, p.order, run_id, p.replace)
    return replaced


def _spans_by_dataset(parts: Sequence[Part]) -> list[tuple[Dataset, list[Span]]]:
    """The coverage of all parts, one merge per dataset."""
    out: dict[str, tuple[Dataset, list[Span]]] = {}
    for part in parts:
        out.setdefault(part.ds.name, (part.ds, []))[1].extend(part.spans)
    return list(out.values())


def results(
    parts: Sequence[Part], replaced: Sequence[int], positions: Sequence[StreamPosition]
) -> CommitResult:
    writes = (WriteResult(p.ds.name, p.rows.height, n, p.spans) for p, n in zip(parts, replaced, strict=True))
    return CommitResult(tuple(writes), tuple(positions))
