"""Prefect flows: backfill, daily, refresh_universe.

Flows decide what runs; ``flows.ingest`` does the work. Tasks are coarse: one
per dataset and symbol batch, each with its own client (the rate limiter is
shared by the whole process) and retries. Every flow run leaves a summary in
the warehouse's run ledger (``meta.runs``) and as a Prefect table artifact.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed

from connectors import ClientStats, KiwoomClient, Settings
from flows.heal import heal_gaps
from flows.ingest import Job, complete_through, plan, run_job
from flows.symbols import resolve_symbols
from schemas import calendar as cal
from schemas.catalog import catalog
from warehouse import LakeConfig, Run, Warehouse, options_key
from warehouse import dataset as get_dataset
from warehouse import datasets as all_datasets

__all__ = ["Target", "backfill", "daily", "refresh_universe"]

BATCH_SYMBOLS = 10
DEFAULT_DAILY = (
    "stock_bars_daily",
    "sector_bars_daily",
    "gold_bars_daily",
    "stock_investor_institution",
    "stock_program_trading_daily",
    "short_selling",
)
UNIVERSE_MARKETS = {"stock_list": ("0", "10", "80"), "sector_list": ("0", "1")}

# Set by the command line to draw progress; called as (done, total, label).
progress_hook: Callable[[int, int, str], None] | None = None


@dataclass(frozen=True)
class Target:
    """Where to fetch from and write to; plain values so Prefect can pass them around."""

    base_url: str | None = None
    host: str | None = None
    warehouse: str | None = None

    def settings(self) -> Settings:
        return Settings.load(base_url=self.base_url, host=self.host)

    def lake(self) -> Warehouse:
        return _warehouse(str(LakeConfig.load(self.warehouse).root) if self.warehouse else None)


_WAREHOUSES: dict[str | None, Warehouse] = {}


def _warehouse(root: str | None) -> Warehouse:
    """One warehouse (one DuckDB connection, one write lock) per lake per process."""
    if root not in _WAREHOUSES:
        _WAREHOUSES[root] = Warehouse(warehouse=root)
    return _WAREHOUSES[root]


@dataclass
class Summary:
    requests: int = 0
    pages: int = 0
    rejections: int = 0
    retries: int = 0
    errors: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    jobs: int = 0
    failed: list[str] = field(default_factory=list)
    healed: dict[str, Any] | None = None  # the daily flow's heal of stream gaps (flows.heal)

    def add_stats(self, stats: ClientStats) -> None:
        self.requests += stats.requests
        self.pages += stats.pages
        self.rejections += stats.rejections
        self.retries += stats.retries
        self.errors += stats.errors

    def merge(self, other: Summary) -> None:
        for name in ("requests", "pages", "rejections", "retries", "errors", "jobs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rows.update(other.rows)
        self.failed += other.failed

    def as_dict(self, seconds: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "pages": self.pages,
            "rejections": self.rejections,
            "retries": self.retries,
            "errors": self.errors,
            "jobs": self.jobs,
            "rows": dict(self.rows),
            "failed": list(self.failed),
            "seconds": round(seconds, 2),
        } | ({"healed": self.healed} if self.healed is not None else {})


def _report(done: int, total: int, label: str) -> None:
    if progress_hook is not None:
        progress_hook(done, total, label)


async def _run_jobs(target: Target, jobs: Sequence[Job], run: Run, now: datetime | None) -> Summary:
    summary = Summary()
    wh = target.lake()
    async with KiwoomClient(target.settings()) as client:
        for job in jobs:
            result = await run_job(client, wh, job, run, now=now)
            summary.rows[job.dataset] += result.rows
            summary.jobs += 1
        summary.add_stats(client.stats)
    return summary


@task(retries=2, retry_delay_seconds=[2, 10], task_run_name="fetch {label}")
def fetch_batch(
    target: Target, jobs: list[Job], run: Run, label: str, now: datetime | None = None
) -> Summary:
    """Fetch and write a batch of jobs (one TR, a few symbols). A retry redoes only what is still missing."""
    from prefect.runtime import task_run

    wh = target.lake()
    # a retry (run_count > 1) skips what an earlier attempt already landed
    todo = [j for j in jobs if _still_missing(wh, j, now)] if task_run.run_count > 1 else list(jobs)
    return asyncio.run(_run_jobs(target, todo, run, now))


@task(retries=1, retry_delay_seconds=[10], task_run_name="heal stream gaps {day}")
def heal_stream_gaps(target: Target, run: Run, day: date, now: datetime | None = None) -> dict[str, Any]:
    """Insert the trades the stream missed in ``day``'s recorded gaps from the tick chart (flows.heal)."""

    async def go() -> dict[str, Any]:
        async with KiwoomClient(target.settings()) as client:
            return (await heal_gaps(client, target.lake(), day, run=run, now=now)).as_dict()

    return asyncio.run(go())


def _heal(target: Target, wh: Warehouse, run: Run, summary: Summary, now: datetime | None) -> None:
    """Heal today's unhealed stream gaps (ka10079 serves only the current day), if anything streams."""
    day = cal.to_kst(now or datetime.now(cal.KST)).date()
    if (
        "stock_trades" not in wh.tables()
        or wh.stream_gaps(day).filter(pl.col("healed_run").is_null()).is_empty()
    ):
        return
    try:
        summary.healed = heal_stream_gaps(target, run, day, now)
    except Exception as exc:  # a symbol the tick chart contradicts: the others are healed, the run fails
        get_run_logger().error("healing stream gaps of %s failed: %s", day, exc)
        result = getattr(exc, "result", None)
        summary.healed = result.as_dict() if result is not None else {"day": str(day), "error": str(exc)}
        summary.failed.append(f"heal stream gaps {day}")
    summary.rows["stock_trades"] += int(summary.healed.get("rows", 0))


def _still_missing(wh: Warehouse, job: Job, now: datetime | None) -> bool:
    if get_dataset(job.dataset).style == "reference":
        return True
    return bool(plan(wh, job.dataset, [job.symbol], job.start, job.end, job.options, job.api_id, now=now))


def _batches(jobs: Sequence[Job], size: int = BATCH_SYMBOLS) -> list[list[Job]]:
    by_tr: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        by_tr.setdefault((job.dataset, job.api_id), []).append(job)
    out = []
    for group in by_tr.values():
        symbols = list(dict.fromkeys(j.symbol for j in group))
        for i in range(0, len(symbols), size):
            chunk = set(symbols[i : i + size])
            out.append([j for j in group if j.symbol in chunk])
    return out


def _execute(target: Target, jobs: Sequence[Job], run: Run, now: datetime | None) -> Summary:
    logger = get_run_logger()
    summary = Summary()
    batches = _batches(jobs)
    futures = {}
    for batch in batches:
        first, last = batch[0], batch[-1]
        label = f"{first.dataset} {first.symbol or ''}..{last.symbol or ''} ({len(batch)} windows)"
        futures[fetch_batch.submit(target, batch, run, label, now)] = (label, batch)
    _report(0, len(batches), "starting")
    for done, future in enumerate(as_completed(list(futures)), start=1):
        label, batch = futures[future]
        try:
            summary.merge(future.result())
        except Exception as exc:  # a batch that failed after its retries: the run fails, the rest goes on
            logger.error("batch %s failed: %s", label, exc)
            summary.failed += [j.describe() for j in batch]
        _report(done, len(batches), label)
    return summary


def _finish(wh: Warehouse, run: Run, summary: Summary, started: float, title: str) -> dict[str, Any]:
    seconds = time.monotonic() - started
    result = summary.as_dict(seconds)
    status = "failed" if summary.failed else "ok"
    wh.record_run(run, status, result)
    table = [{"dataset": name, "rows": rows} for name, rows in sorted(summary.rows.items())]
    table.append({"dataset": "(total)", "rows": sum(summary.rows.values())})
    try:
        create_table_artifact(
            key=f"{run.flow.replace('_', '-')}-summary",
            table=[
                {
                    **row,
                    "requests": summary.requests,
                    "pages": summary.pages,
                    "rejections": summary.rejections,
                    "retries": summary.retries,
                    "seconds": round(seconds, 1),
                }
                for row in table
            ],
            description=f"{title}: run {run.id}, {status}",
        )
    except Exception as exc:
        get_run_logger().warning("could not create the summary artifact: %s", exc)
    result["status"] = status
    result["run_id"] = run.id
    return result


def _date(text: str | date | None, default: date) -> date:
    if text is None or text == "":
        return default
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_jobs(
    wh: Warehouse,
    names: Sequence[str],
    symbols: str | Sequence[str] | None,
    start: date,
    end: date,
    options: Mapping[str, str] | None,
    now: datetime | None = None,
) -> list[Job]:
    """Every job of a backfill: each dataset, each resolved symbol, each missing window."""
    jobs: list[Job] = []
    taken = {s["name"] for name in names for s in catalog().tr(get_dataset(name).sources[0]).request}
    unknown = sorted(set(options or {}) - taken)
    if unknown:
        raise ValueError(f"no dataset asked for takes the request option(s) {', '.join(unknown)}")
    for name in names:
        ds = get_dataset(name)
        resolved: Sequence[str | None] = resolve_symbols(wh, ds, symbols) if ds.symbol else [None]
        takes = {s["name"] for s in catalog().tr(ds.sources[0]).request}
        ds_options = {k: v for k, v in (options or {}).items() if k in takes}
        jobs += plan(wh, name, resolved, start, end, ds_options, now=now)
    return jobs


def expand_datasets(names: str | Sequence[str]) -> list[str]:
    """Dataset names; a family name (``stock_bars``, ``investor`` ...) means all of its datasets."""
    items = [names] if isinstance(names, str) else list(names)
    wanted = [n.strip() for item in items for n in item.split(",") if n.strip()]
    out: list[str] = []
    registry = all_datasets()
    for name in wanted:
        if name in registry:
            out.append(name)
            continue
        family = [n for n, ds in registry.items() if ds.family == name]
        if not family:
            get_dataset(name)  # raises with the list of known names
        out += family
    return list(dict.fromkeys(out))


@flow(name="backfill", log_prints=True)
def backfill(
    datasets: list[str] | str = "stock_bars_daily",
    symbols: list[str] | str = "all",
    start: str | None = None,
    end: str | None = None,
    options: dict[str, str] | None = None,
    base_url: str | None = None,
    host: str | None = None,
    warehouse: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Fetch what coverage says is missing for datasets x symbols x [start, end], and write it."""
    started = time.monotonic()
    target = Target(base_url, host, warehouse)
    wh = target.lake()
    today = cal.to_kst(now or datetime.now(cal.KST)).date()
    first, last = _date(start, today - timedelta(days=365)), _date(end, today)
    names = expand_datasets(datasets)
    run = Run.new(
        "backfill",
        {
            "datasets": names,
            "symbols": symbols,
            "start": str(first),
            "end": str(last),
            "options": options or {},
        },
    )
    wh.record_run(run, "running")
    jobs = build_jobs(wh, names, symbols, first, last, options, now)
    summary = _execute(target, jobs, run, now)
    return _finish(wh, run, summary, started, f"backfill {', '.join(names)}")


@flow(name="daily", log_prints=True)
def daily(
    datasets: list[str] | str = list(DEFAULT_DAILY),  # noqa: B006 - Prefect parameters are values
    symbols: list[str] | str = "all",
    lookback_days: int = 30,
    base_url: str | None = None,
    host: str | None = None,
    warehouse: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The incremental load after the close: each dataset from its coverage up to the last final day.

    Symbols with no coverage yet start ``lookback_days`` back. Running it twice does no extra work.
    Then today's unhealed stream gaps are healed from the tick chart (when ``stock_trades`` exists).
    """
    started = time.monotonic()
    target = Target(base_url, host, warehouse)
    wh = target.lake()
    last = complete_through(now or datetime.now(cal.KST))
    names = expand_datasets(datasets)
    run = Run.new("daily", {"datasets": names, "symbols": symbols, "end": str(last)})
    wh.record_run(run, "running")
    jobs: list[Job] = []
    for name in names:
        ds = get_dataset(name)
        resolved: Sequence[str | None] = resolve_symbols(wh, ds, symbols) if ds.symbol else [None]
        # the default options are what the daily load fetches: their coverage says where to go on
        default = options_key(ds.option_values(ds.sources[0], ds.defaults[ds.sources[0]]))
        cov = wh.coverage(name).filter(pl.col("options") == default)
        ends: dict[str, date] = dict(cov.group_by("symbol").agg(pl.col("end_date").max()).iter_rows())
        for symbol in resolved:
            since = ends.get(symbol or "")
            first = since + timedelta(days=1) if since else last - timedelta(days=lookback_days)
            if first <= last:
                jobs += plan(wh, name, [symbol], first, last, None, now=now)
    summary = _execute(target, jobs, run, now)
    _heal(target, wh, run, summary, now)
    return _finish(wh, run, summary, started, "daily")


@flow(name="refresh_universe", log_prints=True)
def refresh_universe(
    base_url: str | None = None,
    host: str | None = None,
    warehouse: str | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The stock list (ka10099: KOSPI, KOSDAQ, gold) and sector codes (ka10101) into reference datasets.

    A market already refreshed today is skipped unless ``force``.
    """
    started = time.monotonic()
    target = Target(base_url, host, warehouse)
    wh = target.lake()
    run = Run.new("refresh_universe")
    wh.record_run(run, "running")
    jobs = []
    today = cal.to_kst(now or datetime.now(cal.KST)).date()
    for name, markets in UNIVERSE_MARKETS.items():
        ds = get_dataset(name)
        for market in markets:
            spans = wh.covered(name, "", {"mrkt_tp": market})
            if force or not any(lo <= today <= hi for lo, hi in spans):
                jobs.append(Job(name, ds.sources[0], None, {"mrkt_tp": market}, today, today))
    summary = _execute(target, jobs, run, now)
    return _finish(wh, run, summary, started, "universe")
