"""Where work stopped, saved with the rows it follows: fetch cursors and stream positions.

- A ``Cursor`` (``meta.cursors``) is the ``next-key`` of an unfinished paged fetch:
  a rerun resumes from it instead of paging through days already written.
- A ``StreamPosition`` (``meta.stream_positions``) says how far a stream's durable
  log is committed: every record before ``(segment, offset)`` is in the lake. It
  is written in the transaction that commits those records' rows, so after a
  crash the rows and the position agree and replay from the position neither
  loses nor duplicates a record. A position never moves backwards.

Both are written inside a transaction the caller opened (``warehouse.commit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import polars as pl

from schemas.calendar import TZ_NAME
from warehouse.datasets import Dataset, dataset
from warehouse.lake import WarehouseError
from warehouse.tables import now

__all__ = [
    "Cursor",
    "StreamGap",
    "StreamPosition",
    "mark_healed",
    "prune_positions",
    "read_cursor",
    "record_cursor",
    "record_gaps",
    "record_position",
    "stream_gaps",
    "stream_position",
    "stream_positions",
]


@dataclass(frozen=True)
class Cursor:
    """Where an unfinished paged fetch stopped: ``next_key`` leads to the rows older than ``below``.

    Written with the rows it follows, in the same transaction; ``next_key=None`` removes it.
    """

    api_id: str
    symbol: str
    options: str
    next_key: str | None
    below: date | None = None


@dataclass(frozen=True, order=True)
class StreamPosition:
    """How far ``stream``'s log is committed: the records before byte ``offset`` of ``segment``.

    Positions of one stream order by ``(segment, offset)``.
    """

    stream: str
    segment: int
    offset: int
    # the committer vouches that the stored position is the one it committed last (no other writer
    # has committed since, checked against the lake's snapshots): the look-up before the move is skipped
    verified: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stream:
            raise WarehouseError("a stream position needs the stream's name")
        if self.segment < 0 or self.offset < 0:
            raise WarehouseError(f"stream {self.stream}: negative position ({self.segment}, {self.offset})")


def record_cursor(con: duckdb.DuckDBPyConnection, ds: Dataset, cursor: Cursor, run_id: str) -> None:
    """Save (or, with ``next_key=None``, remove) ``cursor`` for ``ds``."""
    where = [ds.name, cursor.symbol, cursor.options, cursor.api_id]
    con.execute(
        "DELETE FROM meta.cursors WHERE dataset = ? AND symbol = ? AND options = ? AND api_id = ?", where
    )
    if cursor.next_key is not None:
        con.execute(
            "INSERT INTO meta.cursors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [*where, cursor.next_key, cursor.below, run_id, now()],
        )


def read_cursor(
    con: duckdb.DuckDBPyConnection, name: str, symbol: str, options: str, api_id: str
) -> Cursor | None:
    """The saved position of an unfinished fetch, if any."""
    row = con.execute(
        "SELECT next_key, below FROM meta.cursors WHERE dataset = ? AND symbol = ? AND options = ? "
        "AND api_id = ?",
        [dataset(name).name, symbol, options, api_id],
    ).fetchone()
    return Cursor(api_id, symbol, options, row[0], row[1]) if row else None


def record_position(con: duckdb.DuckDBPyConnection, position: StreamPosition, run_id: str) -> None:
    """Move ``position.stream``'s committed position to ``position``; refuse to move it backwards.

    A position behind the stored one means a second committer is replaying records
    already committed: the transaction fails (and nothing of it is written). The
    look-up is skipped for a ``verified`` position (see ``StreamPosition``).

    Positions are appended, never updated: a stream commits several times a second, and a
    delete has to read the table (with its deleted versions, kept until snapshots expire) while
    an insert does not. The newest row of a stream is its position; ``prune_positions`` drops
    the rest when the lake is compacted.
    """
    before = None if position.verified else stream_position(con, position.stream)
    if before is not None and (before.segment, before.offset) > (position.segment, position.offset):
        raise WarehouseError(
            f"stream {position.stream}: position ({position.segment}, {position.offset}) is behind the "
            f"committed ({before.segment}, {before.offset}); is another worker committing this stream?"
        )
    con.execute(
        "INSERT INTO meta.stream_positions VALUES (?, ?, ?, ?, ?)",
        [position.stream, position.segment, position.offset, run_id, now()],
    )


# the newest row of each stream: its committed position
_LATEST = (
    "SELECT stream, log_segment, log_offset, run_id, committed_at FROM meta.stream_positions "
    "QUALIFY row_number() OVER (PARTITION BY stream ORDER BY log_segment DESC, log_offset DESC) = 1"
)


def stream_position(con: duckdb.DuckDBPyConnection, stream: str) -> StreamPosition | None:
    """The committed position of ``stream`` (``None``: nothing committed yet, replay from the start)."""
    row = con.execute(
        "SELECT log_segment, log_offset FROM meta.stream_positions WHERE stream = ? "
        "ORDER BY log_segment DESC, log_offset DESC LIMIT 1",
        [stream],
    ).fetchone()
    return StreamPosition(stream, int(row[0]), int(row[1])) if row else None


def stream_positions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every stream's committed position, with the run and time of its last commit."""
    return con.execute(f"{_LATEST} ORDER BY stream").pl()


def prune_positions(con: duckdb.DuckDBPyConnection) -> int:
    """Drop every stream's rows but its newest (inside the caller's transaction); the rows dropped."""
    row = con.execute(
        "DELETE FROM meta.stream_positions WHERE (stream, log_segment, log_offset) NOT IN "
        f"(SELECT stream, log_segment, log_offset FROM ({_LATEST}))"
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class StreamGap:
    """A time ``stream`` received nothing for ``symbol``: a disconnect, a restart, a stopped worker.

    ``end`` is ``None`` while the gap is still open (the session stopped for good).
    Written with the rows committed after it, in the same transaction.
    """

    stream: str
    symbol: str
    start: datetime
    end: datetime | None
    reason: str


def record_gaps(con: duckdb.DuckDBPyConnection, gaps: Sequence[StreamGap], run_id: str) -> None:
    """Record ``gaps`` (a gap already recorded with the same stream, symbol and start is replaced)."""
    for g in gaps:
        con.execute(
            "DELETE FROM meta.stream_gaps WHERE stream = ? AND symbol = ? AND start_ts = ?",
            [g.stream, g.symbol, g.start],
        )
    if gaps:
        con.executemany(
            "INSERT INTO meta.stream_gaps VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            [[g.stream, g.symbol, g.start, g.end, g.reason, run_id, now()] for g in gaps],
        )


def stream_gaps(con: duckdb.DuckDBPyConnection, day: date | None = None) -> pl.DataFrame:
    """Recorded gaps, oldest first; only those touching ``day`` (in Korea) when given."""
    where, params = "", []
    if day is not None:
        where = (
            f"WHERE CAST(timezone('{TZ_NAME}', start_ts) AS DATE) <= ? "
            f"AND CAST(timezone('{TZ_NAME}', coalesce(end_ts, start_ts)) AS DATE) >= ?"
        )
        params = [day, day]
    return con.execute(
        "SELECT stream, symbol, start_ts, end_ts, reason, run_id, healed_run, recorded_at "
        f"FROM meta.stream_gaps {where} ORDER BY start_ts, symbol",
        params,
    ).pl()


def mark_healed(con: duckdb.DuckDBPyConnection, gaps: Sequence[StreamGap], run_id: str) -> None:
    """Mark ``gaps`` healed by ``run_id`` (inside the transaction that inserted the healed rows)."""
    for g in gaps:
        con.execute(
            "UPDATE meta.stream_gaps SET healed_run = ? WHERE stream = ? AND symbol = ? AND start_ts = ?",
            [run_id, g.stream, g.symbol, g.start],
        )
