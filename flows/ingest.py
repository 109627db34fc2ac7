"""What to fetch and fetching it: plain functions the Prefect flows orchestrate.

``plan`` asks the warehouse's coverage what is missing for a dataset, symbols
and window, and returns one ``Job`` per symbol and missing window. ``run_job``
pages through the TR newest first with a date stop, normalizes, and hands
each whole-day chunk (rows, coverage, cursor: a ``Rows``) to its ``write``: by
default ``Warehouse.write`` at once, in a run the grouped writer off the fetch
path (``flows.writes``). Long histories are written in chunks, so an
interrupted run resumes where it stopped. Nothing here knows Prefect.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

from connectors import InvalidRequest, KiwoomClient, Page, oldest_row, rows_before
from schemas import calendar as cal
from schemas.calendar import TZ_NAME
from schemas.catalog import catalog
from schemas.columns import OPTION_VALUES, option_column, option_wire
from schemas.normalize import normalize_pages
from warehouse import Cursor, Rows, Run, Span, Warehouse, WarehouseError, dataset, options_key
from warehouse.coverage import uncovered
from warehouse.datasets import Dataset
from warehouse.tr_datasets import current_day

__all__ = [
    "Job",
    "JobResult",
    "Write",
    "complete_through",
    "current_day_only",
    "plan",
    "run_job",
    "takes_option",
    "validate_options",
]

# A trading day's data is final this long after the close (the daily flow runs after it).
DAY_FINAL_AT = time(18, 0)

# where a job's chunks go: one ``Rows`` (whole days, their coverage and cursor) at a time
Write = Callable[[Rows], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """One symbol's missing window of one dataset: one paged TR request."""

    dataset: str
    api_id: str
    symbol: str | None
    options: Mapping[str, str]  # request options (wire names), e.g. {"upd_stkpc_tp": "1"}
    start: date
    end: date

    def describe(self) -> str:
        who = f" {self.symbol}" if self.symbol else ""
        return f"{self.dataset} ({self.api_id}){who} {self.start}..{self.end}"


@dataclass
class JobResult:
    job: Job
    rows: int = 0
    pages: int = 0
    writes: int = 0
    covered: tuple[date, date] | None = None


def complete_through(now: datetime) -> date:
    """The last trading day whose data is final at ``now`` (KST)."""
    local = cal.to_kst(now)
    day = local.date()
    if not cal.is_trading_day(day):
        return cal.last_trading_day_on_or_before(day)
    return day if local.time() >= DAY_FINAL_AT else cal.previous_trading_day(day)


def current_day_only(ds: Dataset, api_id: str) -> bool:
    """Whether a dated dataset's TR answers only the current day: no list of rows (ka10009), or an
    intraday TR that takes no date (ka10064). Its window is the latest trading day, whatever is asked."""
    if ds.style not in ("series", "intraday"):
        return False
    tr = catalog().tr(api_id)
    return tr.main is None or (ds.style == "intraday" and not _takes_date(api_id))


def _takes_date(api_id: str) -> bool:
    return bool({s["name"] for s in catalog().tr(api_id).request} & {"date", "dt", "base_dt", "end_dt"})


_EITHER = re.compile(r"\s*(\w+) or (\w+)\s*")


def allowed_values(api_id: str, spec: Mapping[str, Any]) -> dict[str, str] | None:
    """The values a request field takes: the reference's list, the readable options' codes, or
    a description such as ``0 or 1``; None when the reference does not restrict it."""
    if spec.get("allowed"):
        return dict(spec["allowed"])
    if (api_id, spec["name"]) in OPTION_VALUES:
        return dict(OPTION_VALUES[(api_id, spec["name"])])
    either = _EITHER.fullmatch(str(spec.get("description") or ""))
    return dict.fromkeys(either.groups(), "") if either else None


def takes_option(api_id: str, key: str) -> bool:
    """Whether ``api_id`` takes option ``key``: a request field or its readable spelling (``measure``)."""
    if any(s["name"] == key for s in catalog().tr(api_id).request):
        return True
    return any(tr == api_id and option_column(tr, wire) == key for tr, wire in OPTION_VALUES)


def validate_options(ds: Dataset, api_id: str, options: Mapping[str, str]) -> None:
    """Every option (a request field, or its readable spelling) must be one of the values it takes."""
    try:
        wire = option_wire(api_id, options)
    except ValueError as exc:
        raise WarehouseError(f"{ds.name}: {exc}") from None
    for spec in catalog().tr(api_id).request:
        value = wire.get(spec["name"])
        if value is None:
            continue
        allowed = allowed_values(api_id, spec)
        if allowed is not None and value not in allowed:
            choices = ", ".join(f"{k} ({v})" if v else k for k, v in allowed.items())
            raise WarehouseError(f"{ds.name} ({api_id}): {spec['name']}={value!r} is not one of {choices}")
        if str(spec.get("description") or "").startswith("YYYYMMDD"):
            try:
                datetime.strptime(value, "%Y%m%d")
            except ValueError:
                raise WarehouseError(
                    f"{ds.name} ({api_id}): {spec['name']}={value!r} is not YYYYMMDD"
                ) from None


def plan(
    wh: Warehouse,
    name: str,
    symbols: Sequence[str | None],
    start: date,
    end: date,
    options: Mapping[str, str] | None = None,
    api_id: str | None = None,
    now: datetime | None = None,
) -> list[Job]:
    """The jobs that fetch what coverage says is missing.

    Snapshot datasets (rankings, lists) are fetched once per day: their window is
    today. A TR answering only the current day (``current_day_only``) has that day
    as its window, and no job when the window asked for is past. ``end`` past the
    last final trading day is fetched but not marked covered.
    """
    ds = dataset(name)
    api_id = api_id or ds.sources[0]
    if api_id not in ds.sources:
        raise WarehouseError(f"{api_id} does not feed {ds.name}")
    if start > end:
        raise WarehouseError(f"start {start} is after end {end}")
    options = dict(options or {})
    validate_options(ds, api_id, options)
    now = now or datetime.now(cal.KST)
    if ds.style in ("snapshot", "reference"):
        start = end = cal.to_kst(now).date()
    elif current_day_only(ds, api_id):  # the past cannot be fetched: only the current day is asked for
        day = current_day(now)
        if not start <= day <= end:
            return []
        start = end = day
    # the body a job sends: a snapshot's options include its dates (ka10058's strt_dt/end_dt), and
    # coverage is keyed by them, so the plan must look it up with the same ones
    request = ds.request(api_id, None, start, end, **options) if ds.symbol is None else None
    jobs: list[Job] = []
    stored = wh.spans(ds.name)
    for symbol in symbols:
        body = request or ds.request(api_id, symbol or "", start, end, **options)
        opts = ds.option_values(api_id, body)
        covered = stored.get(((symbol or "") if ds.symbol else "", options_key(opts)), [])
        if ds.style in ("snapshot", "reference"):
            if any(lo <= start <= hi for lo, hi in covered):
                continue
            jobs.append(Job(ds.name, api_id, symbol, options, start, end))
            continue
        for lo, hi in uncovered(covered, start, end):
            jobs.append(Job(ds.name, api_id, symbol, options, lo, hi))
    return jobs


def _day(ds: Dataset) -> pl.Expr:
    col = pl.col(ds.time)
    return col if ds.schema[ds.time] == pl.Date else col.dt.convert_time_zone(TZ_NAME).dt.date()


async def run_job(
    client: KiwoomClient,
    wh: Warehouse,
    job: Job,
    run: Run,
    now: datetime | None = None,
    commit_pages: int = 40,
    write: Write | None = None,
    cursors: Mapping[tuple[str, str, str, str], Cursor] | None = None,
) -> JobResult:
    """Fetch one job's window and write it; long histories are committed every ``commit_pages`` pages.

    ``write`` takes each chunk; by default it is written at once (``Warehouse.write``).
    ``cursors``: the saved positions by (dataset, symbol, options, TR), kept by the caller's
    writer (``flows.writes``); by default read from the warehouse.

    Pages come newest first. A chunk commit writes the days it holds completely
    (the oldest day on the pages so far may continue on the next page: its pages
    are kept for the next commit), covers them, and saves the ``next-key`` that
    re-reads that oldest day. A rerun of the remaining window resumes from that key
    instead of paging down from the newest row again (TRs such as the minute chart
    take no date to start from). A key the server no longer accepts means a fresh start.
    """
    ds = dataset(job.dataset)
    now = now or datetime.now(cal.KST)
    put = write or _direct(wh, run)
    body = ds.request(job.api_id, symbol=job.symbol, start=job.start, end=job.end, **job.options)
    opts = options_key(ds.option_values(job.api_id, body))
    key_symbol = (job.symbol or "") if ds.symbol else ""
    final = complete_through(now)
    result = JobResult(job)
    tr = catalog().tr(job.api_id)
    snapshot = ds.style in ("snapshot", "reference")
    empty = pl.DataFrame(schema={c: t for c, t in ds.schema.items() if c != "run_id"})
    if snapshot or tr.main is None:
        # rankings and lists: every page of the answer (a market's stock list runs to many pages);
        # a dated answer without a list (ka10009) is the current day's, covered once it is final
        raws = [page.raw async for page in client.pages(job.api_id, body)]
        result.pages = len(raws)
        rows = ds.rows(job.api_id, normalize_pages(job.api_id, raws), body, now)
        lo, hi = job.start, job.end if snapshot else min(job.end, final)
        await put(Rows(ds.name, rows, coverage=[Span(key_symbol, opts, lo, hi)] if lo <= hi else []))
        result.rows, result.writes = rows.height, 1
        result.covered = (lo, hi) if lo <= hi else None
        return result
    if ds.style == "intraday":
        return await _run_days(client, job, now, result, put)

    if cursors is None:
        saved = wh.cursor(ds.name, key_symbol, opts, job.api_id)
    else:
        saved = cursors.get((ds.name, key_symbol, opts, job.api_id))
    resume = saved.next_key if saved and saved.below == job.end + timedelta(days=1) else None
    oldest = oldest_row(job.api_id)
    pending: list[Page] = []
    ceiling = [job.end + timedelta(days=1)]  # days from here on are written already

    def window_rows(pages: list[Page]) -> pl.DataFrame:
        if not pages:
            return empty
        rows = ds.rows(job.api_id, normalize_pages(job.api_id, [p.raw for p in pages]), body, now)
        return rows.filter(_day(ds).is_between(job.start, job.end) & (_day(ds) < ceiling[0]))

    async def commit(rows: pl.DataFrame, lo: date, cursor: Cursor) -> None:
        hi = min(job.end, final)
        spans = [Span(key_symbol, opts, lo, hi)] if lo <= hi else []
        await put(Rows(ds.name, rows, coverage=spans, cursor=cursor))
        result.rows += rows.height
        result.writes += 1
        if spans:
            result.covered = (lo, hi)

    async def chunk() -> None:
        rows = window_rows(pending)
        if rows.is_empty():  # every row newer than the window: nothing to keep but the way down
            await commit(
                rows,
                job.end + timedelta(days=1),
                Cursor(job.api_id, key_symbol, opts, pending[-1].next_key, job.end + timedelta(days=1)),
            )
            pending.clear()
            return
        day = _day(ds)
        partial = rows.select(day.min()).item()
        first_kept = next(
            (
                i
                for i, p in enumerate(pending)
                if (o := oldest(p)) is not None and o[:8] <= f"{partial:%Y%m%d}"
            ),
            len(pending) - 1,
        )
        keep = pending[first_kept:]
        await commit(
            rows.filter(day > partial),
            partial + timedelta(days=1),
            Cursor(job.api_id, key_symbol, opts, keep[0].key, partial + timedelta(days=1)),
        )
        pending[:] = keep
        ceiling[0] = partial + timedelta(days=1)

    async def fetch(key: str | None) -> None:
        async for page in client.pages(
            job.api_id, body, stop=rows_before(job.api_id, job.start), resume_key=key
        ):
            pending.append(page)
            result.pages += 1
            if len(pending) >= commit_pages:
                await chunk()

    try:
        await fetch(resume)
    except InvalidRequest:
        if resume is None:
            raise
        pending.clear()  # the saved key is stale: start from the newest row
        await fetch(None)
    await commit(window_rows(pending), job.start, Cursor(job.api_id, key_symbol, opts, None))
    return result


def _direct(wh: Warehouse, run: Run) -> Write:
    """Write each chunk at once, in its own transaction."""

    async def write(rows: Rows) -> None:
        wh.write(rows.dataset, rows.frame, run, coverage=rows.coverage, cursor=rows.cursor)

    return write


async def _run_days(
    client: KiwoomClient, job: Job, now: datetime, result: JobResult, put: Write
) -> JobResult:
    """An intraday TR answers one day (its ``date``, else the current day) in full: one request
    (and its pages) per trading day, each day written and covered on its own, so a rerun resumes."""
    ds = dataset(job.dataset)
    final = complete_through(now)
    key_symbol = (job.symbol or "") if ds.symbol else ""
    days = cal.trading_days(job.start, job.end) if _takes_date(job.api_id) else [current_day(now)]
    lo = job.start
    for i, day in enumerate(days):
        body = ds.request(job.api_id, symbol=job.symbol, start=day, end=day, **job.options)
        opts = options_key(ds.option_values(job.api_id, body))
        raws = [page.raw async for page in client.pages(job.api_id, body)]
        result.pages += len(raws)
        rows = ds.rows(job.api_id, normalize_pages(job.api_id, raws), body, now)
        hi = min(job.end if i == len(days) - 1 else day, final)
        spans = [Span(key_symbol, opts, lo, hi)] if lo <= hi else []
        await put(Rows(ds.name, rows, coverage=spans))
        result.rows += rows.height
        result.writes += 1
        if spans:
            result.covered = (job.start, hi)
        lo = max(lo, hi + timedelta(days=1))
    return result
