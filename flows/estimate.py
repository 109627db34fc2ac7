"""What a run would fetch, without fetching: the jobs' request counts for ``--dry-run``.

A paged TR answers newest first, so the requests a job makes depend on where the
server starts paging, not only on the window asked for:

- tick and minute charts take no date: they page back from the latest trading day,
  so every page newer than the window counts too;
- day, week, month and year charts and the trend TRs page back from the window's end
  (``base_dt``, ``dt``, ``date``); a TR that also takes ``strt_dt`` ends its answer at
  the window's start, the others run on until a page holds a row older than it;
- intraday TRs answer one day per request (all of its pages);
- snapshots, lists and current-day answers are one request.

Rows per page are the real server's (and the simulator's) page sizes; rows per day
are a session's bars. The plan itself (which jobs) comes from the warehouse's coverage
(``flows.plans``), so a daily dry run starts each symbol where its coverage ends.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from flows.ingest import Job, current_day_only
from schemas import calendar as cal
from schemas.catalog import catalog
from warehouse import LakeConfig, Warehouse, dataset
from warehouse.tr_datasets import current_day

__all__ = ["Estimate", "estimate", "estimate_pages", "planning_warehouse"]

# rows per page (the server's) and rows per trading day, by bar interval or TR style
PAGE_ROWS = {"tick": 900, "minute": 900, "bars": 600, "series": 100, "intraday": 100}
ROWS_PER_DAY = {
    "tick": 2000.0,
    "minute": 381.0,  # 09:01 .. 15:20 and the closing auction's 15:30 bar (none 15:21-15:29)
    "daily": 1.0,
    "weekly": 0.2,
    "monthly": 1 / 21,
    "yearly": 1 / 250,
    "intraday": 381.0,
}


def _interval(name: str, style: str) -> str:
    return name.rsplit("_", 1)[-1] if style == "bars" else style


def estimate_pages(job: Job, now: datetime | None = None) -> int:
    """Requests one job makes: rows from where the server starts paging down to the window's start."""
    ds = dataset(job.dataset)
    now = now or datetime.now(cal.KST)
    if ds.style in ("snapshot", "reference") or current_day_only(ds, job.api_id):
        return 1
    names = {s["name"] for s in catalog().tr(job.api_id).request}
    interval = _interval(ds.name, ds.style)
    per_day = ROWS_PER_DAY.get(interval, 1.0)
    if interval in ("tick", "minute") and job.options.get("tic_scope"):
        per_day /= max(1, int(job.options["tic_scope"]))
    page = PAGE_ROWS.get(interval, PAGE_ROWS["bars"] if ds.style == "bars" else PAGE_ROWS["series"])
    if ds.style == "intraday":  # a day not yet in session answers one empty page
        days = cal.trading_days(job.start, job.end)
        held = sum(d <= current_day(now) for d in days)
        return held * max(1, math.ceil(per_day / page)) + len(days) - held
    dated = names & {"base_dt", "end_dt", "dt", "date"}
    top = min(job.end, current_day(now)) if dated else current_day(now)
    rows = len(cal.trading_days(job.start, top)) * per_day
    if "strt_dt" in names:  # the answer ends at the window's start
        return max(1, math.ceil(rows / page))
    return math.floor(rows / page) + 1  # the page that reaches past the start ends it


@dataclass(frozen=True)
class Estimate:
    """One line per dataset and TR, and the totals."""

    table: pl.DataFrame
    requests: int
    seconds: float


def estimate(jobs: Sequence[Job], rate: float, now: datetime | None = None) -> Estimate:
    """The dry run's table: per dataset and TR, symbols, windows, the span and the requests."""
    rows = [
        {
            "dataset": j.dataset,
            "TR": j.api_id,
            "symbol": j.symbol or "",
            "start": j.start,
            "end": j.end,
            "requests": estimate_pages(j, now),
        }
        for j in jobs
    ]
    schema = {"dataset": pl.String, "TR": pl.String, "symbol": pl.String}
    frame = pl.DataFrame(rows, schema={**schema, "start": pl.Date, "end": pl.Date, "requests": pl.Int64})
    table = (
        frame.group_by("dataset", "TR", maintain_order=True)
        .agg(
            symbols=pl.col("symbol").n_unique(),
            windows=pl.len(),
            **{"from": pl.col("start").min(), "to": pl.col("end").max()},
            est_requests=pl.col("requests").sum(),
        )
        .with_columns(est_seconds=(pl.col("est_requests") / rate).round(1))
    )
    total = int(frame["requests"].sum()) if rows else 0
    return Estimate(table, total, total / rate)


@contextmanager
def planning_warehouse(path: Path | str | None) -> Iterator[Warehouse]:
    """The warehouse a plan reads: the lake read-only when it exists, else an empty scratch lake
    (a dry run never creates the warehouse folder)."""
    config = LakeConfig.load(path)
    if config.exists():
        with Warehouse(config.planning()) as wh:
            yield wh
        return
    with (
        tempfile.TemporaryDirectory(prefix="kwh-plan-") as scratch,
        Warehouse(LakeConfig.load(scratch, env={})) as wh,
    ):
        yield wh
