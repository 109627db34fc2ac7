"""Rows of the TRs about a whole market or a window, from ``simulator.flows_market``.

``SOURCES`` maps a TR to its row source (``simulator.rows.rows_for`` dispatches to it):

- ka90005: a market's program trading through the session (each minute, or each trade of
  the market index), cumulative, newest first; the last row is the day of ka90010;
- ka90010: a market's program trading a day, newest first, back from ``date``;
- ka90007: a market's net program buying a day and since the year's first trading day,
  with the KOSPI200 level and basis, a year back from ``date``;
- ka90006: KOSPI's buy- and sell-arbitrage balances a day and their changes;
- ka10068: the whole market's stock lending a day, ``strt_dt`` .. ``end_dt``;
- ka10069: the ten stocks of a market with the most new lending over the window;
- ka90009: the stocks with the largest foreign and institution net selling and buying a day;
- ka10061: a stock's investors summed over ``strt_dt`` .. ``end_dt``.

Day series page like the per-symbol series (the cursor is the next row's date), the
session like the intraday series (its index in the day). Market-wide figures are sent
in millions of won and thousands of shares.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from schemas import calendar as cal
from schemas.kinds import Unit
from simulator.flows_market import flows
from simulator.market import FLOWS_FROM, INVESTORS, Market
from simulator.rows import (
    END_DATE_FIELDS,
    MARKETS,
    Ctx,
    Rows,
    _investor_figures,
    _latest,
    _page,
    last_day,
    parse_day,
    whole,
)
from simulator.rows_stock import basic_info, short_selling_trend
from simulator.units import program_unit
from simulator.universe import Instrument

__all__ = ["SOURCES"]

_TOP = 100  # rows of a ranking
_Opts = dict[str, str]
_Source = Callable[[Market, Instrument | None, _Opts, datetime, int, str | None], Rows]


def _program_market(value: str) -> str | None:
    """KOSPI or KOSDAQ from a program-trading ``mrkt_tp``: 0/1, or P00101, P001_NX01, P10102 ..."""
    if value == "0" or value.startswith("P001"):
        return "KOSPI"
    if value == "1" or value.startswith("P101"):
        return "KOSDAQ"
    return None


def _program_wire(fig: dict[str, int], amount: bool) -> dict[str, int]:
    """Program figures in won and shares, each side a whole number of the market-wide TRs'
    units (millions of won, thousands of shares: ``simulator.units``), nets and totals from
    the rounded sides; the columns without a unit show amounts or quantities as
    ``amt_qty_tp`` asks."""
    out: dict[str, int] = {}
    for unit, div in (("qty", Unit.THOUSAND_SHARES.factor), ("amount", Unit.MILLION_WON.factor)):
        for side in ("buy", "sell"):
            for kind in ("arb", "nonarb"):
                out[f"{kind}_{side}_{unit}"] = whole(fig[f"{kind}_{side}_{unit}"], div)
            out[f"all_{side}_{unit}"] = out[f"arb_{side}_{unit}"] + out[f"nonarb_{side}_{unit}"]
        for kind in ("arb", "nonarb", "all"):
            out[f"{kind}_net_{unit}"] = out[f"{kind}_buy_{unit}"] - out[f"{kind}_sell_{unit}"]
    pick = "amount" if amount else "qty"
    for kind in ("arb", "nonarb", "all"):
        for x in ("buy", "sell", "net"):
            out[f"{kind}_{x}"] = out[f"{kind}_{x}_{pick}"]
    return out


def _request_end(opts: dict[str, str], now: datetime) -> date:
    end = next((d for f in END_DATE_FIELDS if (d := parse_day(opts.get(f)))), None) or now.date()
    return min(end, last_day(now))


def _daily_market(
    market: Market,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
    start: date,
    values: Callable[[date], dict[str, Any] | None],
) -> Rows:
    """One row a trading day with figures, newest first, from the request's date back to ``start``."""
    end = _request_end(opts, now)
    if cursor:
        end = min(end, parse_day(cursor) or end)
    days = cal.trading_days(start, end)

    def items() -> Iterator[tuple[str, Ctx]]:
        for day in reversed(days):
            got = values(day)
            if got is not None:
                yield f"{day:%Y%m%d}", Ctx(market, None, day, opts, date=day, **got)

    rows, nxt = _page(items(), size)
    return Rows(rows, Ctx(market, None, last_day(now), opts), nxt)


def _program_daily(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka90010: a market's program trading a day, ``cntr_tm`` the day at midnight."""
    which, amount, fl = _program_market(opts.get("mrkt_tp", "")), opts.get("amt_qty_tp") == "1", flows(market)

    def values(day: date) -> dict[str, Any] | None:
        fig = fl.program_until(which, day, now) if which else None
        if fig is None:
            return None
        out: dict[str, Any] = {
            "ts": datetime.combine(day, time(0), tzinfo=cal.KST),
            **_program_wire(fig, amount),
        }
        if k200 := fl.kospi200(day, now):
            out |= {"kospi200_text": f"{k200[0]:+.2f}", "basis": k200[1]}
        return out

    return _daily_market(market, opts, now, size, cursor, market.epoch, values)


def _program_cumulative(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka90007: a market's net program buying a day and since the start of the year, a year back."""
    which, amount, fl = _program_market(opts.get("mrkt_tp", "")), opts.get("amt_qty_tp") == "1", flows(market)
    factor = program_unit(opts).factor

    def values(day: date) -> dict[str, Any] | None:
        got = fl.program_year_to_date(which, day, now, amount) if which else {}
        if "arb_net" not in got:
            return None
        k200 = fl.kospi200(day, now)
        in_base = {k: v * factor for k, v in got.items()}  # whole millions of won or thousands of shares
        return {**in_base, "kospi200": k200[0] if k200 else None, "basis": k200[1] if k200 else None}

    start = _request_end(opts, now) - timedelta(days=365)  # "종료일기준 1년간 데이터만 조회가능"
    return _daily_market(market, opts, now, size, cursor, start, values)


def _arbitrage_balances(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka90006: KOSPI's arbitrage balances a day (quantities in thousands of shares)."""
    fl = flows(market)

    def values(day: date) -> dict[str, Any] | None:
        bal = fl.arbitrage_balance(day, now)
        if bal is None:
            return None
        prev = fl.arbitrage_balance(cal.previous_trading_day(day)) or dict.fromkeys(bal, 0)
        out: dict[str, Any] = {}
        for side in ("buy", "sell"):
            out[f"{side}_arb_balance_qty"] = whole(bal[f"{side}_qty"], Unit.THOUSAND_SHARES.factor)
            out[f"{side}_arb_balance_amount"] = bal[f"{side}_amount"]
            out[f"{side}_arb_balance_change"] = bal[f"{side}_amount"] - prev[f"{side}_amount"]
        return out

    return _daily_market(market, opts, now, size, cursor, market.epoch, values)


def _lending_trend(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka10068: the whole market's stock lending a day, ``strt_dt`` .. ``end_dt``."""
    fl = flows(market)

    def values(day: date) -> dict[str, Any] | None:
        got = fl.lending_day(day)
        if got is None:
            return None
        return {
            "lending_new_qty": got["new_qty"],
            "lending_repaid_qty": got["repaid_qty"],
            "lending_change": got["new_qty"] - got["repaid_qty"],
            "lending_balance_qty": got["balance_qty"],
            "lending_balance_amount": got["balance_amount"],
        }

    start = max(parse_day(opts.get("strt_dt")) or FLOWS_FROM, FLOWS_FROM)
    return _daily_market(market, opts, now, size, cursor, start, values)


def _program_session(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka90005: a market's program trading through each minute (or index trade) of ``date``,
    cumulative, newest first; the last one is the day of ka90010."""
    which, fl = _program_market(opts.get("mrkt_tp", "")), flows(market)
    day = parse_day(opts.get("date")) or last_day(now)
    ticks, amount = opts.get("min_tic_tp") == "0", opts.get("amt_qty_tp") == "1"
    session = fl.program_session(which, day, ticks) if which and day <= now.date() else []
    done = bisect_right([ts for ts, _, _ in session], cal.to_kst(now))
    levels = fl.kospi200_session(day) if session else []
    top = min(int(cursor), done - 1) if cursor and cursor.isdigit() else done - 1

    def items() -> Iterator[tuple[str, Ctx]]:
        for i in range(top, -1, -1):
            ts, minute, fig = session[i]
            values: dict[str, Any] = {"ts": ts, "time": ts.time(), **_program_wire(fig, amount)}
            if minute < len(levels):
                level, basis = levels[minute]
                values |= {"kospi200_text": f"+{round(level * 100)}", "basis": basis}
            yield str(i), Ctx(market, None, day, opts, date=day, **values)

    rows, nxt = _page(items(), size)
    return Rows(rows, Ctx(market, None, day, opts), nxt)


def _foreign_institution_top(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka90009: a market's stocks with the largest foreign and institution net selling and
    buying on ``date``, ranked by amount (``amt_qty_tp`` 1) or quantity; row i holds the
    i-th of each of the four rankings (an empty cell where a ranking is shorter)."""
    day = min(parse_day(opts.get("date")) or last_day(now), last_day(now))
    which = {"001": "KOSPI", "101": "KOSDAQ"}.get(opts.get("mrkt_tp", ""), "ALL")
    by_amount = opts.get("amt_qty_tp") == "1"
    nets: list[tuple[Instrument, str, int, float]] = []  # (stock, who, net shares, net won)
    for code in flows(market).stock_codes(which):
        got, bar = market.investor_flows(code, day), market.daily_bar(code, day, now)
        if got is not None and bar is not None:
            for who in ("foreign", "institution"):
                nets.append((market.universe.get(code), who, got[who], got[who] * bar.close))
    columns: dict[str, list[tuple[Instrument, int, float]]] = {}
    for who in ("foreign", "institution"):
        mine = [(i, q, a) for i, w, q, a in nets if w == who]
        key = (lambda x: x[2]) if by_amount else (lambda x: x[1])
        columns[f"{who}_sell"] = sorted((x for x in mine if x[1] < 0), key=key)
        columns[f"{who}_buy"] = sorted((x for x in mine if x[1] > 0), key=key, reverse=True)
    n = min(max(map(len, columns.values()), default=0), _TOP)
    out = []
    for i in range(n):
        values: dict[str, Any] = {}
        for col, ranked in columns.items():
            stock, qty, won = ranked[i] if i < len(ranked) else (None, None, None)
            values |= {
                f"{col}_code": stock.code if stock else None,
                f"{col}_name": stock.name if stock else None,
                f"{col}_qty": qty,
                f"{col}_amount": won,
            }
        out.append(Ctx(market, None, day, opts, **values))
    return Rows(out, Ctx(market, None, day, opts), None)


def _lending_top(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka10069: the ten stocks of a market with the most new lending over the window; the
    sums are the ten rows' and the rates their share of the market's total (%)."""
    end = min(parse_day(opts.get("end_dt")) or last_day(now), last_day(now))
    start = parse_day(opts.get("strt_dt")) or end
    which = MARKETS.get(opts.get("mrkt_tp", ""), "NONE")
    stocks = flows(market).lending_window(which, start, end) if which in ("KOSPI", "KOSDAQ") else []
    for _, v in stocks:  # whole millions, so the sum of the rows is the sum sent
        v["balance_amount"] = round(v["balance_amount"] / 1_000_000) * 1_000_000
    top = sorted(stocks, key=lambda cv: (-cv[1]["new_qty"], cv[0]))[:10]
    rows = [
        Ctx(market, market.universe.get(code), end, opts, **{f"lending_{k}": n for k, n in v.items()})
        for code, v in top
    ]
    scalars = Ctx(market, None, end, opts)
    for k in ("new_qty", "repaid_qty", "balance_qty", "balance_amount"):
        part, whole = sum(v[k] for _, v in top), sum(v[k] for _, v in stocks)
        scalars[f"lending_{k}_sum"] = part
        scalars[f"lending_{k}_share"] = round(part / whole * 100, 2) if whole else 0.0
    return Rows(rows, scalars, None)


def _investor_total(
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """ka10061: a stock's investors summed over ``strt_dt`` .. ``end_dt`` (one row): the sum
    of ka10059's days, each day's amount at its close, rounded once."""
    if inst is None:
        return Rows([], Ctx(market, None, last_day(now), opts), None)
    end = min(parse_day(opts.get("end_dt")) or last_day(now), last_day(now))
    start = parse_day(opts.get("strt_dt")) or end
    totals, unit = dict.fromkeys(INVESTORS, 0.0), 1
    for day in cal.trading_days(start, end):
        trades, bar = market.investor_trades(inst.code, day), market.daily_bar(inst.code, day, now)
        if trades is not None and bar is not None:
            figures, unit = _investor_figures(trades, opts, bar.close)
            totals = {k: totals[k] + figures[k] for k in INVESTORS}
    row = Ctx(market, inst, end, opts, **{k: whole(v, unit) for k, v in totals.items()})
    return Rows([row], _latest(market, inst, opts, now), None)


SOURCES: dict[str, _Source] = {
    "ka90005": _program_session,
    "ka90006": _arbitrage_balances,
    "ka90007": _program_cumulative,
    "ka90010": _program_daily,
    "ka10068": _lending_trend,
    "ka10069": _lending_top,
    "ka10061": _investor_total,
    "ka90009": _foreign_institution_top,
    "ka10001": basic_info,
    "ka10014": short_selling_trend,
}
