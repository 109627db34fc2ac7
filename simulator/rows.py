"""Which rows a TR returns, as semantic values, from the synthetic market.

A *row context* (``Ctx``) holds one row's meaning (close, volume, date,
investor nets ...); ``simulator.bodies`` turns contexts into wire rows with
the TR's field names. Sources, chosen from the catalog's shape of the TR:

- chart TRs: bars of the instrument, newest first, from ``base_dt`` or now;
- per-symbol series (a symbol in the request, a date in the rows): one row a
  trading day, newest first, from the end date back to the start date;
- intraday series (a symbol, a time in the rows): one row a minute of the day;
- market lists (stock or sector codes in the rows): the instruments of a market;
- market-wide flows (program trading, arbitrage balances, stock lending) and a stock's
  investor totals over a window: by TR, ``simulator.rows_market.SOURCES``;
- anything else: the rows of the reference's example, with the requested symbol.

Intraday rows of a stock carry the minute's index: their investor and program figures
are the day's through that minute (``Flows.investors_session``), not the whole day's.

Each source pages with an opaque cursor: a date, a (day, index) position, or
an offset; positions are stable while today's session grows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from schemas import calendar as cal
from schemas.catalog import TR
from schemas.kinds import Kind
from simulator.flows_market import flows
from simulator.market import Bar, Market
from simulator.units import investor_unit
from simulator.universe import Instrument

__all__ = ["CHARTS", "Ctx", "Rows", "last_day", "parse_day", "rows_for"]

# api-id -> (instrument kind, interval, today only)
CHARTS: dict[str, tuple[str, str, bool]] = {
    "ka10079": ("stock", "tick", False),
    "ka10080": ("stock", "minute", False),
    "ka10081": ("stock", "daily", False),
    "ka10082": ("stock", "weekly", False),
    "ka10083": ("stock", "monthly", False),
    "ka10094": ("stock", "yearly", False),
    "ka20004": ("index", "tick", False),
    "ka20005": ("index", "minute", False),
    "ka20006": ("index", "daily", False),
    "ka20007": ("index", "weekly", False),
    "ka20008": ("index", "monthly", False),
    "ka20019": ("index", "yearly", False),
    "ka50079": ("gold", "tick", False),
    "ka50080": ("gold", "minute", False),
    "ka50081": ("gold", "daily", False),
    "ka50082": ("gold", "weekly", False),
    "ka50083": ("gold", "monthly", False),
    "ka50091": ("gold", "tick", True),
    "ka50092": ("gold", "minute", True),
}
SYMBOL_FIELDS = ("stk_cd", "inds_cd")
END_DATE_FIELDS = ("end_dt", "base_dt", "dt", "date", "qry_dt")
MARKETS = {
    "0": "KOSPI",
    "001": "KOSPI",
    "P00101": "KOSPI",
    "10": "KOSDAQ",
    "101": "KOSDAQ",
    "P10102": "KOSDAQ",
    "1": "KOSDAQ",
    "000": "ALL",
    "": "ALL",
    "8": "ETF",
    "3": "ELW",
}
INVESTORS = (
    "individual",
    "foreign",
    "institution",
    "financial_investment",
    "insurance",
    "investment_trust",
    "private_fund",
    "bank",
    "other_financial",
    "pension_fund",
    "government",
    "other_corp",
    "domestic_foreign",
)


_MARKET_CODES = {"KOSPI": "0", "KOSDAQ": "10", "GOLD": "80"}
_MARKET_NAMES = {"KOSPI": "거래소", "KOSDAQ": "코스닥", "GOLD": "금현물", "INDEX": "업종"}


@dataclass
class Rows:
    rows: list[Ctx]
    scalars: Ctx
    next_cursor: str | None
    direction: bool = True  # prices carry the direction sign


class Ctx(dict[str, Any]):
    """One row's values; investor, program and short-selling figures computed on first use."""

    def __init__(
        self,
        market: Market,
        inst: Instrument | None,
        day: date | None,
        options: dict[str, str],
        **values: Any,
    ) -> None:
        super().__init__(values)
        self.market, self.inst, self.day, self.options = market, inst, day, options
        if inst is not None:
            self.setdefault("code", inst.code)
            self.setdefault("name", inst.name)
            self.setdefault("shares", inst.shares)
            self.setdefault("listed", inst.listed)
            if inst.shares and values.get("volume") is not None:
                self.setdefault("turnover_rate", round(values["volume"] / inst.shares * 100, 2))
            self.setdefault("market_code", _MARKET_CODES.get(inst.market, ""))
            self.setdefault("market_name", _MARKET_NAMES.get(inst.market, inst.market))
            if inst.kind == "index":  # ka10101: the sector's market (0 KOSPI, 1 KOSDAQ) and group
                self.setdefault("sector_market", "1" if inst.code.startswith("1") else "0")
                self.setdefault("sector_group", str(int(inst.code)) if inst.code.isdigit() else inst.code)

    def __missing__(self, key: str) -> Any:
        if self.inst is None or self.day is None or self.inst.kind != "stock":
            return None
        group = _GROUPS.get(key)
        if group is None:
            return None
        # no figures that day (e.g. before the balances start): empty strings, as the server sends;
        # values the row was built with stay
        for k, v in {**dict.fromkeys(_GROUP_KEYS[group], ""), **group(self)}.items():
            self.setdefault(k, v)
        return dict.get(self, key)


def _bar_values(bar: Bar, prev: float | None) -> dict[str, Any]:
    change = None if prev is None else bar.close - prev
    rate = None if not prev else round(change / prev * 100, 2)  # type: ignore[operator]
    return {
        "close": bar.close,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "volume": bar.volume,
        "turnover": bar.turnover,
        "acc_volume": bar.volume,
        "acc_turnover": bar.turnover,
        "date": bar.day,
        "ts": bar.ts,
        "time": bar.ts.time() if bar.ts else None,
        "prev_close": prev,
        "change": change,
        "change_rate": rate,
        "sign": None if change is None else "3" if not change else "2" if change > 0 else "5",
    }


def _investor_figures(
    trades: dict[str, tuple[int, int]], options: dict[str, str], price: float
) -> tuple[dict[str, float], int]:
    """Buys, sells or nets (``trde_tp``) per investor type in won or shares (``amt_qty_tp``),
    unrounded; and the wire unit's size (``simulator.units.investor_unit``)."""
    side = options.get("trde_tp", "0")
    unit = investor_unit(options)
    amount = unit.base == "KRW"
    out = {}
    for key in INVESTORS:
        buy, sell = trades[key]
        qty = buy if side == "1" else sell if side == "2" else buy - sell
        out[key] = qty * price if amount else float(qty)
    return out, unit.factor


def whole(value: float, factor: int) -> int:
    """``value`` rounded to a whole number of wire units (so sums of rows are sums sent)."""
    return round(value / factor) * factor


def _investors(c: Ctx) -> dict[str, Any]:
    minute = c.get("minute")
    if minute is None:
        trades = c.market.investor_trades(c.inst.code, c.day)  # type: ignore[union-attr,arg-type]
    else:  # intraday: through this minute
        session = flows(c.market).investors_session(c.inst.code, c.day)  # type: ignore[union-attr,arg-type]
        trades = session[minute] if minute < len(session) else None
    if trades is None:
        return {}
    figures, factor = _investor_figures(trades, c.options, c.get("close") or 0)
    return {k: whole(v, factor) for k, v in figures.items()}


def _program(c: Ctx) -> dict[str, Any]:
    code, day, minute = c.inst.code, c.day, c.get("minute")  # type: ignore[union-attr]
    if minute is None:
        p = c.market.program_trading(code, day)  # type: ignore[arg-type]
        prev = c.market.program_trading(code, cal.previous_trading_day(day)) or {}  # type: ignore[arg-type]
    else:  # intraday: through this minute, the change since the minute before
        session = flows(c.market).program_stock_session(code, day)  # type: ignore[arg-type]
        p = session[minute] if minute < len(session) else None
        prev = session[minute - 1] if 0 < minute <= len(session) else {}
    if p is None:
        return {}
    out = {f"prm_{k}": v for k, v in p.items()}
    out["prm_net_amount_change"] = p["net_amount"] - prev.get("net_amount", 0)
    out["prm_net_qty_change"] = p["net_qty"] - prev.get("net_qty", 0)
    return out


def _short(c: Ctx) -> dict[str, Any]:
    s = c.market.short_selling(c.inst.code, c.day)  # type: ignore[union-attr,arg-type]
    if s is None:
        return {}
    out: dict[str, Any] = dict(s)
    vol = c.get("volume") or 0
    out["short_weight"] = round(s["short_qty"] / vol * 100, 2) if vol else 0.0
    out["short_avg_price"] = round(s["short_amount"] / s["short_qty"]) if s["short_qty"] else 0
    out["lending_change"] = s["lending_new_qty"] - s["lending_repaid_qty"]
    out["lending_balance_amount"] = s["lending_balance_qty"] * (c.get("close") or 0)
    return out


def _foreign(c: Ctx) -> dict[str, Any]:
    h = c.market.foreign_holding(c.inst.code, c.day)  # type: ignore[union-attr,arg-type]
    before = c.market.foreign_holding(c.inst.code, cal.previous_trading_day(c.day)) or {}  # type: ignore[union-attr,arg-type]
    if h is None:
        return {}
    limit = h["limit_qty"] or 1
    return {
        "foreign_holding": h["holding_qty"],
        "foreign_limit": h["limit_qty"],
        "foreign_change": h["holding_qty"] - before.get("holding_qty", h["holding_qty"]),
        "foreign_available": max(0, h["limit_qty"] - h["holding_qty"]),
        "foreign_ratio": round(h["holding_qty"] / (c.get("shares") or 1) * 100, 2),
        "foreign_exhaustion": round(h["holding_qty"] / limit * 100, 2),
    }


def _window_acc(c: Ctx) -> dict[str, Any]:
    """Institution and foreign net buying cumulated from ``strt_dt`` through the row's day."""
    start = parse_day(c.options.get("strt_dt"))
    if start is None:  # no window asked: no period figures
        return {}
    end = parse_day(c.options.get("end_dt")) or c.day
    got = flows(c.market).investor_window(c.inst.code, start, end).cumulative.get(c.day)  # type: ignore[union-attr,arg-type]
    return {} if got is None else {"institution_acc": got["institution"], "foreign_acc": got["foreign"]}


def _window_price(c: Ctx) -> dict[str, Any]:
    """Institution and foreign estimated average price (buy or sell, as asked) over the
    window up to the context's day (the latest day for a summary: no later days count)."""
    start = parse_day(c.options.get("strt_dt"))
    if start is None:
        return {}
    end = min(parse_day(c.options.get("end_dt")) or c.day, c.day)  # type: ignore[type-var]
    w = flows(c.market).investor_window(c.inst.code, start, end)  # type: ignore[union-attr,arg-type]
    return {
        f"{who}_avg_price": w.avg_price.get((who, "sell" if c.options.get(option) == "2" else "buy"))
        for who, option in (("institution", "orgn_prsm_unp_tp"), ("foreign", "for_prsm_unp_tp"))
    }


_GROUPS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    **dict.fromkeys(INVESTORS, _investors),
    **{
        f"prm_{k}": _program
        for k in (
            "sell_qty",
            "buy_qty",
            "net_qty",
            "sell_amount",
            "buy_amount",
            "net_amount",
            "net_amount_change",
            "net_qty_change",
        )
    },
    **{
        k: _short
        for k in (
            "short_qty",
            "short_amount",
            "short_balance_qty",
            "short_weight",
            "short_avg_price",
            "lending_new_qty",
            "lending_repaid_qty",
            "lending_balance_qty",
            "lending_change",
            "lending_balance_amount",
        )
    },
    **dict.fromkeys(("institution_acc", "foreign_acc"), _window_acc),
    **dict.fromkeys(("institution_avg_price", "foreign_avg_price"), _window_price),
    **{
        k: _foreign
        for k in (
            "foreign_holding",
            "foreign_limit",
            "foreign_change",
            "foreign_available",
            "foreign_ratio",
            "foreign_exhaustion",
        )
    },
}


_GROUP_KEYS: dict[Callable[[Ctx], dict[str, Any]], list[str]] = {}
for _key, _group in _GROUPS.items():
    _GROUP_KEYS.setdefault(_group, []).append(_key)


def last_day(now: datetime) -> date:
    """The latest trading day with data at ``now`` (today once the session opened)."""
    today = now.date()
    if cal.is_trading_day(today) and now.time() > cal.SESSION_OPEN:
        return today
    return cal.previous_trading_day(today)


def parse_day(value: str | None) -> date | None:
    if not value or len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _page(items: Iterator[tuple[str, Ctx]], size: int) -> tuple[list[Ctx], str | None]:
    """Up to ``size`` rows; the cursor of the first row left over, if any."""
    out: list[Ctx] = []
    for cursor, ctx in items:
        if len(out) == size:
            return out, cursor
        out.append(ctx)
    return out, None


def _chart(
    tr: TR,
    market: Market,
    inst: Instrument,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    _, interval, today_only = CHARTS[tr.id]
    code = inst.code
    if interval in ("tick", "minute"):
        n = int(opts.get("tic_scope") or 1)
        start_day = parse_day(opts.get("base_dt")) or now.date()
        start_day = min(start_day, now.date())
        if cursor:
            d, _, idx = cursor.partition(":")
            start_day, start_idx = parse_day(d) or start_day, int(idx)
        else:
            start_idx = None

        def intraday() -> Iterator[tuple[str, Ctx]]:
            day = start_day if cal.is_trading_day(start_day) else cal.previous_trading_day(start_day)
            first = True
            while day >= max(market.epoch, inst.listed):
                raw = market.ticks(code, day, now) if interval == "tick" else market.minutes(code, day, now)
                bars = (market.resample_ticks if interval == "tick" else market.resample_minutes)(raw, n)
                prev = market.prev_close(code, day)
                acc_v = acc_t = 0
                accs = []
                for b in bars:
                    acc_v, acc_t = acc_v + b.volume, acc_t + b.turnover
                    accs.append((acc_v, acc_t))
                top = (
                    len(bars) - 1 if not (first and start_idx is not None) else min(start_idx, len(bars) - 1)
                )
                for i in range(top, -1, -1):
                    values = _bar_values(bars[i], prev)
                    values["acc_volume"], values["acc_turnover"] = accs[i]
                    yield f"{day:%Y%m%d}:{i}", Ctx(market, inst, day, opts, **values)
                first = False
                if today_only:
                    return
                day = cal.previous_trading_day(day)

        rows, nxt = _page(intraday(), size)
        return Rows(rows, Ctx(market, inst, None, opts), nxt, direction=interval == "minute")

    # the whole series up to the base date (today's period partial, as the session stands),
    # then the part older than the cursor: a period is never cut at a page boundary
    base = min(parse_day(opts.get("base_dt")) or now.date(), now.date())
    bars = getattr(market, interval)(code, market.epoch, base, now)
    if cursor and (at := parse_day(cursor)):
        bars = bars[: bisect_right([b.day for b in bars], at)]

    def periods() -> Iterator[tuple[str, Ctx]]:
        for i in range(len(bars) - 1, -1, -1):
            prev = bars[i - 1].close if i else market.prev_close(code, bars[0].day)
            yield f"{bars[i].day:%Y%m%d}", Ctx(market, inst, bars[i].day, opts, **_bar_values(bars[i], prev))

    rows, nxt = _page(periods(), size)
    return Rows(rows, Ctx(market, inst, None, opts), nxt, direction=False)


def _series(
    market: Market, inst: Instrument, opts: dict[str, str], now: datetime, size: int, cursor: str | None
) -> Rows:
    end = next((d for f in END_DATE_FIELDS if (d := parse_day(opts.get(f)))), None) or now.date()
    end = min(end, last_day(now))
    if cursor:
        end = min(end, parse_day(cursor) or end)
    start = max(parse_day(opts.get("strt_dt")) or market.epoch, market.epoch, inst.listed)
    days = cal.trading_days(start, end)

    def items() -> Iterator[tuple[str, Ctx]]:
        for day in reversed(days):
            bar = market.daily_bar(inst.code, day, now)
            if bar is None:
                continue
            values = _bar_values(bar, market.prev_close(inst.code, day))
            yield f"{day:%Y%m%d}", Ctx(market, inst, day, opts, **values)

    rows, nxt = _page(items(), size)
    return Rows(rows, _latest(market, inst, opts, now), nxt)


def _intraday(
    market: Market, inst: Instrument, opts: dict[str, str], now: datetime, size: int, cursor: str | None
) -> Rows:
    day = next((d for f in END_DATE_FIELDS if (d := parse_day(opts.get(f)))), None) or last_day(now)
    bars = market.minutes(inst.code, day, now)
    prev = market.prev_close(inst.code, day)
    start = int(cursor) if cursor and cursor.isdigit() else len(bars) - 1
    acc = 0
    accs = []
    for b in bars:
        acc += b.volume
        accs.append(acc)

    def items() -> Iterator[tuple[str, Ctx]]:
        for i in range(min(start, len(bars) - 1), -1, -1):
            values = _bar_values(bars[i], prev)
            values["acc_volume"] = accs[i]
            yield str(i), Ctx(market, inst, day, opts, minute=i, **values)

    rows, nxt = _page(items(), size)
    return Rows(rows, _latest(market, inst, opts, now), nxt)


def _latest(market: Market, inst: Instrument, opts: dict[str, str], now: datetime) -> Ctx:
    day = last_day(now)
    bar = market.daily_bar(inst.code, day, now)
    values = _bar_values(bar, market.prev_close(inst.code, day)) if bar else {}
    return Ctx(market, inst, day, opts, **values)


def _market_list(
    instruments: list[Instrument],
    market: Market,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    offset = int(cursor) if cursor and cursor.isdigit() else 0
    day = next((d for f in END_DATE_FIELDS if (d := parse_day(opts.get(f)))), None) or last_day(now)
    day = min(day, last_day(now))

    def items() -> Iterator[tuple[str, Ctx]]:
        for i in range(offset, len(instruments)):
            inst = instruments[i]
            bar = market.daily_bar(inst.code, day, now)
            values = _bar_values(bar, market.prev_close(inst.code, day)) if bar else {}
            yield str(i), Ctx(market, inst, day, opts, **values)

    rows, nxt = _page(items(), size)
    return Rows(rows, Ctx(market, None, day, opts), nxt)


def _has(tr: TR, kinds: tuple[Kind, ...], names: tuple[str, ...] = ()) -> bool:
    items = tr.main.items if tr.main else ()
    return any(f.kind in kinds and (not names or f.name in names) for f in items)


def rows_for(
    tr: TR,
    market: Market,
    inst: Instrument | None,
    opts: dict[str, str],
    now: datetime,
    size: int,
    cursor: str | None,
) -> Rows:
    """The rows of one page of ``tr`` for the request options ``opts``."""
    from simulator.rows_market import SOURCES  # built on this module's contexts and pages

    if tr.id in SOURCES:
        return SOURCES[tr.id](market, inst, opts, now, size, cursor)
    if tr.id in CHARTS and inst is not None:
        return _chart(tr, market, inst, opts, now, size, cursor)
    main = tr.main
    if main is not None and inst is not None and _has(tr, (Kind.DATE,)):
        return _series(market, inst, opts, now, size, cursor)
    if main is not None and inst is not None and _has(tr, (Kind.TIME,)):
        return _intraday(market, inst, opts, now, size, cursor)
    item_names = {f.name for f in main.items} if main else set()
    if main is not None and ({"stk_cd", "code"} & item_names or "inds_cd" in item_names):
        which = MARKETS.get(opts.get("mrkt_tp", ""), "NONE")
        u = market.universe
        if "inds_cd" in item_names or tr.id == "ka10101":
            pool = [i for i in u.indices if which == "ALL" or (i.code.startswith("1") == (which == "KOSDAQ"))]
        else:
            pool = list(u.stocks) if which == "ALL" else u.by_market(which) if which != "NONE" else []
        return _market_list(pool, market, opts, now, size, cursor)
    latest = _latest(market, inst, opts, now) if inst is not None else Ctx(market, None, last_day(now), opts)
    n = len(tr.example.get(main.key) or []) if (main and tr.example and not tr.example_broken) else 0
    offset = int(cursor) if cursor and cursor.isdigit() else 0
    count = max(0, min(n - offset, size))
    rows = [
        Ctx(market, latest.inst, latest.day, opts, example_row=offset + i, **latest) for i in range(count)
    ]
    return Rows(rows, latest, str(offset + count) if offset + count < n else None)
