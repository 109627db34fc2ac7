"""The run ledger: ``meta.runs`` (one row per flow run) and ``meta.writes`` (one row per dataset write).

Every row a run writes carries its id (``run_id``); the ``meta.writes`` row is
written in the same transaction as the rows it counts, so a write counts only
when its ledger row commits (as in dlt's load ledger). A run's first write opens
it in ``meta.runs`` if the flow did not.

A ``running`` row whose holder (``warehouse.lease``) is gone reads as
``interrupted``: the process was killed before it could close its run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from warehouse.lease import holder_alive
from warehouse.tables import now

__all__ = [
    "Run",
    "last_writes",
    "open_run",
    "record_write",
    "record_writes",
    "replace_run",
    "runs_frame",
    "with_live_status",
]


@dataclass(frozen=True)
class Run:
    """One flow run; its id goes on every row it writes."""

    id: str
    flow: str = "manual"
    started_at: datetime = field(default_factory=now)
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, flow: str = "manual", params: Mapping[str, Any] | None = None) -> Run:
        at = now()
        return cls(f"{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}", flow, at, dict(params or {}))


def record_write(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    rows: int,
    replaced: int,
    symbols: int,
    start: date | None,
    end: date | None,
    run_id: str,
) -> None:
    """One ``meta.writes`` row (inside the caller's transaction)."""
    record_writes(con, [(dataset, rows, replaced, symbols, start, end)], run_id)


def record_writes(
    con: duckdb.DuckDBPyConnection,
    writes: Sequence[tuple[str, int, int, int, date | None, date | None]],
    run_id: str,
) -> None:
    """``meta.writes`` rows of one commit, (dataset, rows, replaced, symbols, start, end) each, in one
    statement: each statement on a lake table costs milliseconds of catalog work, whatever its size."""
    if not writes:
        return
    at = now()
    marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(writes))
    params = [v for w in writes for v in (run_id, *w, at)]
    con.execute(f"INSERT INTO meta.writes VALUES {marks}", params)


def open_run(con: duckdb.DuckDBPyConnection, run: Run) -> None:
    """Open ``run`` in ``meta.runs`` (status ``running``) unless it is there already."""
    known = con.execute("SELECT count(*) FROM meta.runs WHERE run_id = ?", [run.id]).fetchone()
    if not known or not known[0]:
        _insert_run(con, run, "running", None, {})


def replace_run(
    con: duckdb.DuckDBPyConnection, run: Run, status: str, summary: Mapping[str, Any] | None = None
) -> None:
    """Set ``run``'s status (and summary): ``running`` opens it, anything else closes it now."""
    finished = None if status == "running" else now()
    con.execute("DELETE FROM meta.runs WHERE run_id = ?", [run.id])
    _insert_run(con, run, status, finished, summary or {})


def _insert_run(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    status: str,
    finished: datetime | None,
    summary: Mapping[str, Any],
) -> None:
    con.execute(
        "INSERT INTO meta.runs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            run.id,
            run.flow,
            status,
            run.started_at,
            finished,
            json.dumps(dict(run.params), default=str, ensure_ascii=False),
            json.dumps(dict(summary), default=str, ensure_ascii=False),
        ],
    )


def runs_frame(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pl.DataFrame:
    """The latest runs, newest first, with the rows each wrote; a dead holder's run reads ``interrupted``."""
    frame = con.execute(
        "SELECT r.*, coalesce(w.rows, 0) AS rows_written FROM meta.runs r "
        "LEFT JOIN (SELECT run_id, sum(rows) AS rows FROM meta.writes GROUP BY run_id) w USING (run_id) "
        "ORDER BY started_at DESC LIMIT ?",
        [limit],
    ).pl()
    return with_live_status(frame)


def with_live_status(frame: pl.DataFrame) -> pl.DataFrame:
    """``status`` with ``running`` rows whose holder is gone shown as ``interrupted`` (a few rows: the
    latest runs; each running row's holder is looked at once)."""
    running = frame.filter(pl.col("status") == "running")
    if running.is_empty():
        return frame
    gone = [
        run_id
        for run_id, summary in running.select("run_id", "summary").iter_rows()
        if holder_alive(_json(summary)) is False
    ]
    return frame.with_columns(
        pl.when(pl.col("run_id").is_in(gone))
        .then(pl.lit("interrupted"))
        .otherwise(pl.col("status"))
        .alias("status")
    )


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def last_writes(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[datetime, str]]:
    """Per dataset: when it was last written, and by which run."""
    return {
        r[0]: (r[1], r[2])
        for r in con.execute(
            "SELECT dataset, max(committed_at), arg_max(run_id, committed_at) "
            "FROM meta.writes GROUP BY dataset"
        ).fetchall()
    }
