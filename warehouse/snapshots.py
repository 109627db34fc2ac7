"""What the lake's snapshots say about who changed what, and expiring a long session's snapshots.

DuckLake records every commit as a snapshot, with what it changed in
``ducklake_snapshot_changes`` (``inserted_into_table:8,inlined_insert:4``, ...). A
stream worker commits about four times a second and merges its small files every few
seconds, so two questions come up all day:

- **Did anybody change rows since my last commit?** The stream committer trusts what it
  knows of the stored trade keys and its log position only while nobody else committed
  (``warehouse.stream_keys``). Its own merges commit too, but they change no row: they
  compact files (``compacted_table:N``) and prune old stream positions, keeping each
  stream's newest (a delete from ``meta.stream_positions``). ``upkeep_only`` tells those
  snapshots from everything else, so the merges every 5 s do not make the committer
  read the day's trade keys again (a read that grows with the day: a ``GROUP BY`` over
  every trade stored today).
- **How much history is kept?** Each snapshot leaves rows in the catalog (the snapshot,
  its changes, the data files it ended), and with a SQLite catalog DuckLake reads those
  tables without pushdown: a commit and a merge get slower as a session's ~100,000
  snapshots pile up (10-15 % by 13,000, ``bench/results/snapshots.md``).
  ``expire_session`` expires the snapshots this session made once they are some
  minutes old (``Marks`` says which one was newest that long ago). Their files are only
  scheduled for deletion (``kwh compact`` deletes them a week later), and a reader keeps
  the snapshot its transaction started on, so a notebook's query is never cut off.
"""

from __future__ import annotations

import collections

import duckdb

from warehouse.lake import LAKE

__all__ = ["META", "Marks", "expire_session", "upkeep_only"]

META = f"__ducklake_metadata_{LAKE}"  # the catalog's own tables, as DuckDB attaches them

_POSITIONS = ("meta", "stream_positions")


def _table_id(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int | None:
    row = con.execute(
        f"SELECT t.table_id FROM {META}.ducklake_table t JOIN {META}.ducklake_schema s USING (schema_id) "
        "WHERE s.schema_name = ? AND t.table_name = ? AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL",
        [schema, table],
    ).fetchone()
    return int(row[0]) if row else None


def upkeep_only(con: duckdb.DuckDBPyConnection, since: int, until: int) -> bool:
    """Whether every snapshot after ``since`` up to ``until`` only merged files or pruned stream positions.

    Such snapshots change no row of any dataset and keep each stream's newest position
    (``maintenance.merge_small_files``). Anything else, a snapshot this cannot read
    (expired, or a change it does not know) included, is ``False``: the caller reads again.
    """
    if until <= since:
        return until == since
    positions = _table_id(con, *_POSITIONS)
    allowed = {f"inlined_delete:{positions}", f"deleted_from_table:{positions}"}
    rows = con.execute(
        f"SELECT snapshot_id, changes_made FROM {META}.ducklake_snapshot_changes "
        "WHERE snapshot_id > ? AND snapshot_id <= ?",
        [since, until],
    ).fetchall()
    if len(rows) != until - since:  # a snapshot without its changes: nothing to go by
        return False
    for _, changes in rows:
        for change in (changes or "").split(","):
            if not (change.startswith("compacted_table:") or change in allowed):
                return False
    return True


def expire_session(con: duckdb.DuckDBPyConnection, after: int, upto: int) -> int:
    """Expire the snapshots after ``after`` (the session's start) up to ``upto``; how many.

    The caller picks ``upto``, a snapshot it saw some minutes ago (``flows.stream_threads.Merges``),
    and ``after`` so that earlier days' snapshots stay for ``kwh compact``'s week of time travel.
    The newest snapshot is never expired (DuckLake needs it). A batch write that committed in
    between loses its snapshot too, never its rows. By id, not time: listing
    ``ducklake_snapshots`` with its times and changes costs ~40 ms at a session's 2,000
    snapshots, the ids alone ~5 ms.
    """
    ids = [
        int(r[0])
        for r in con.execute(
            f"SELECT snapshot_id FROM {META}.ducklake_snapshot WHERE snapshot_id > ? AND snapshot_id <= ? "
            f"AND snapshot_id < (SELECT max(snapshot_id) FROM {META}.ducklake_snapshot)",
            [after, upto],
        ).fetchall()
    ]
    if not ids:
        return 0
    return len(con.execute(f"CALL ducklake_expire_snapshots('{LAKE}', versions => ?)", [ids]).fetchall())


class Marks:
    """The newest snapshot at given times, to tell which one was newest ``keep`` seconds ago."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self._marks: collections.deque[tuple[float, int]] = collections.deque()  # (when, newest)

    def older(self, now: float, newest: int) -> int | None:
        """Mark ``newest`` at ``now``; the newest snapshot marked at least ``keep`` before, if any."""
        self._marks.append((now, newest))
        found = None
        while self._marks and self._marks[0][0] <= now - self.keep:
            found = self._marks.popleft()[1]
        return found
