"""Rows of single-stock TRs whose figures span more than the row's own day.

- ka10001 (basic information): the latest day's quote with the price limits (the
  previous close +-30 % on the tick grid), the year's and the last 250 trading days'
  extremes and their dates, listed shares and market capitalisation;
- ka10014 (short selling): the per-symbol day series, with ``ovr_shrts_qty`` the running
  sum of the day's short sales from the start of the requested period, as the live server
  sends it (the reference's example: 6,424,755 = 5,583,348 + 841,407).

``simulator.rows_market.SOURCES`` registers them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from schemas import calendar as cal
from simulator.market import FLOWS_FROM, Market, tick_size
from simulator.rows import Ctx, Rows, _latest, _series, last_day, parse_day
from simulator.universe import Instrument

__all__ = ["basic_info", "limits", "short_selling_trend"]

_LIMIT = 0.30  # KRX daily price limit
_WINDOW = 250  # trading days of the 250-day extremes


def limits(prev_close: float) -> tuple[int, int]:
    """(upper, lower) price limits: the previous close +-30 %, cut to the tick grid toward it."""
    up, down = prev_close * (1 + _LIMIT), prev_close * (1 - _LIMIT)
    upper = int(up // tick_size(up) * tick_size(up))
    lower = int(-(-down // tick_size(down)) * tick_size(down))
    return upper, max(lower, 1)


def _extremes(bars: list[Any], prefix: str) -> dict[str, Any]:
    if not bars:
        return {}
    hi = max(bars, key=lambda b: (b.high, b.day))
    lo = min(bars, key=lambda b: (b.low, -b.day.toordinal()))
    close = bars[-1].close
    return {
        f"{prefix}_high": hi.high,
        f"{prefix}_low": lo.low,
        f"{prefix}_high_day": hi.day,
        f"{prefix}_low_day": lo.day,
        f"{prefix}_high_rate": round((close - hi.high) / hi.high * 100, 2),
        f"{prefix}_low_rate": round((close - lo.low) / lo.low * 100, 2),
    }


def basic_info(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka10001: one body of scalars about the stock on the latest trading day."""
    if inst is None:
        return Rows([], Ctx(market, None, last_day(now), opts), None)
    latest = _latest(market, inst, opts, now)
    day = latest.day
    assert day is not None
    bars = market.daily(inst.code, day - timedelta(days=400), day, now)[-_WINDOW:]
    year = [b for b in bars if b.day.year == day.year] or market.daily(
        inst.code, date(day.year, 1, 1), day, now
    )
    values: dict[str, Any] = {**_extremes(bars, "d250"), **_extremes(year, "year")}
    prev = latest.get("prev_close")
    if prev:
        values["upper_limit"], values["lower_limit"] = limits(prev)
        values["base_price"] = prev
    if latest.get("close") is not None:
        values["market_cap"] = latest["close"] * inst.shares
    values["expected_price"] = values["expected_qty"] = None  # only during the auctions
    ctx = Ctx(market, inst, day, opts, **{**latest, **values})
    return Rows([], ctx, None)


def short_selling_trend(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka10014: the day series of ``simulator.rows``, ``short_balance_qty`` the running sum
    of ``short_qty`` from the period's first day through the row's day."""
    if inst is None:
        return Rows([], Ctx(market, None, last_day(now), opts), None)
    rows = _series(market, inst, opts, now, size, cursor)
    if not rows.rows:
        return rows
    first = max(parse_day(opts.get("strt_dt")) or market.epoch, market.epoch, inst.listed, FLOWS_FROM)
    last = max(c.day for c in rows.rows if c.day is not None)
    running, total = {}, 0
    for d in cal.trading_days(first, last):
        s = market.short_selling(inst.code, d)
        total += s["short_qty"] if s else 0
        running[d] = total
    for c in rows.rows:
        if c.day in running:
            c["short_balance_qty"] = running[c.day]
    return rows
