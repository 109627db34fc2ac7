"""What each batch flow fetches: its run's parameters, then its jobs from coverage.

``plan_run`` checks a flow's parameters (dataset names, symbols, options, dates)
and returns the run to record with a function that makes the jobs. The jobs are
made later, under the warehouse's batch lease, so they see what a previous run
committed. Bad input raises ``ValueError``/``KeyError`` before anything is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from flows.ingest import Job, complete_through, plan, takes_option
from flows.symbols import resolve_symbols
from schemas import calendar as cal
from schemas.errors import InputError
from warehouse import Run, Warehouse, options_key
from warehouse import dataset as get_dataset
from warehouse import datasets as all_datasets

__all__ = ["DEFAULT_DAILY", "UNIVERSE_MARKETS", "build_jobs", "expand_datasets", "plan_run"]

DEFAULT_DAILY = (
    "stock_bars_daily",
    "sector_bars_daily",
    "gold_bars_daily",
    "stock_investor_institution",
    "stock_program_trading_daily",
    "short_selling",
)
UNIVERSE_MARKETS = {"stock_list": ("0", "10", "80"), "sector_list": ("0", "1")}

JobMaker = Callable[[Warehouse], list[Job]]


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


def _date(text: str | date | None, default: date) -> date:
    if text is None or text == "":
        return default
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _symbols(wh: Warehouse, names: Sequence[str], symbols: Any) -> dict[str, Sequence[str | None]]:
    out: dict[str, Sequence[str | None]] = {}
    for name in names:
        ds = get_dataset(name)
        out[name] = resolve_symbols(wh, ds, symbols) if ds.symbol else [None]
    return out


def _check_options(names: Sequence[str], options: Mapping[str, str] | None) -> None:
    sources = [get_dataset(name).sources[0] for name in names]
    unknown = sorted(k for k in options or {} if not any(takes_option(api, k) for api in sources))
    if unknown:
        raise InputError(f"no dataset asked for takes the request option(s) {', '.join(unknown)}")


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
    _check_options(names, options)
    return _backfill_jobs(wh, _symbols(wh, names, symbols), start, end, options, now)


def _backfill_jobs(
    wh: Warehouse,
    resolved: Mapping[str, Sequence[str | None]],
    start: date,
    end: date,
    options: Mapping[str, str] | None,
    now: datetime | None,
) -> list[Job]:
    jobs: list[Job] = []
    for name, symbols in resolved.items():
        api = get_dataset(name).sources[0]
        ds_options = {k: v for k, v in (options or {}).items() if takes_option(api, k)}
        jobs += plan(wh, name, symbols, start, end, ds_options, now=now)
    return jobs


def _daily_jobs(
    wh: Warehouse,
    resolved: Mapping[str, Sequence[str | None]],
    last: date,
    lookback_days: int,
    now: datetime | None,
) -> list[Job]:
    """Each dataset from its coverage (default options) up to ``last``; new symbols from the lookback."""
    jobs: list[Job] = []
    for name, symbols in resolved.items():
        ds = get_dataset(name)
        default = options_key(ds.option_values(ds.sources[0], ds.defaults[ds.sources[0]]))
        cov = wh.coverage(name).filter(pl.col("options") == default)
        ends: dict[str, date] = dict(cov.group_by("symbol").agg(pl.col("end_date").max()).iter_rows())
        for symbol in symbols:
            since = ends.get(symbol or "")
            first = since + timedelta(days=1) if since else last - timedelta(days=lookback_days)
            if first <= last:
                jobs += plan(wh, name, [symbol], first, last, None, now=now)
    return jobs


def _universe_jobs(wh: Warehouse, today: date, force: bool) -> list[Job]:
    jobs = []
    for name, markets in UNIVERSE_MARKETS.items():
        ds = get_dataset(name)
        for market in markets:
            spans = wh.covered(name, "", {"mrkt_tp": market})
            if force or not any(lo <= today <= hi for lo, hi in spans):
                jobs.append(Job(name, ds.sources[0], None, {"mrkt_tp": market}, today, today))
    return jobs


def plan_run(flow: str, params: Mapping[str, Any], wh: Warehouse) -> tuple[Run, JobMaker]:
    """The run of ``flow`` with ``params`` (the flow's parameters, checked now) and its job maker."""
    now: datetime | None = params.get("now")
    today = cal.to_kst(now or datetime.now(cal.KST)).date()
    if flow == "backfill":
        names = expand_datasets(params.get("datasets") or "stock_bars_daily")
        first = _date(params.get("start"), today - timedelta(days=365))
        last = _date(params.get("end"), today)
        options = dict(params.get("options") or {})
        symbols = params.get("symbols") or "all"
        _check_options(names, options)
        resolved = _symbols(wh, names, symbols)
        if first > last:
            raise InputError(f"start {first} is after end {last}")
        record = {
            "datasets": names,
            "symbols": symbols,
            "start": str(first),
            "end": str(last),
            "options": options,
        }
        return Run.new("backfill", record), lambda w: _backfill_jobs(w, resolved, first, last, options, now)
    if flow == "daily":
        names = expand_datasets(params.get("datasets") or list(DEFAULT_DAILY))
        symbols = params.get("symbols") or "all"
        end = complete_through(now or datetime.now(cal.KST))
        lookback = int(params.get("lookback_days", 30))
        resolved = _symbols(wh, names, symbols)
        run = Run.new("daily", {"datasets": names, "symbols": symbols, "end": str(end)})
        return run, lambda w: _daily_jobs(w, resolved, end, lookback, now)
    if flow == "refresh_universe":
        force = bool(params.get("force", False))
        return Run.new("refresh_universe"), lambda w: _universe_jobs(w, today, force)
    raise InputError(f"unknown flow {flow!r}: backfill, daily or refresh_universe")
