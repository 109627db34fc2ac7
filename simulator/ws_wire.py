"""What the simulator's REAL frames say, FID by FID, and how it writes them (0B, 0C, 0D).

DESIGN.md decision 11: these tables are the simulator's own, reviewed against
the reference (``kiwoom_rest_api.txt``, 주식체결 0B and 주식호가잔량 0D, and
their example frames) and WIRE_NOTES.md, and never derived from the client's
catalog, so a wrong catalog kind cannot pass the tests by agreeing with itself.

Ways of writing a value (``how``):

- ``hhmmss``: a time of day, ``"090105"``.
- ``dir``: a price with a direction marker against the previous close:
  ``"+21150"`` above, ``"-20450"`` below, ``"20850"`` equal (not arithmetic).
- ``signed``: an arithmetic number, ``"+50"``, ``"-50"``, ``"0"``.
- ``side``: a trade size signed by who initiated it: ``+`` buyer, ``-`` seller.
- ``plain``: an unsigned integer.
- ``rate``/``rate_signed``: a percentage with two decimals (``"98.92"``,
  ``"-0.24"``; the signed form writes ``+`` too).
- ``const``: a value the simulator does not model, written as the example
  frames show it (``""``, ``"0"``, ``"000000"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["BOOK", "NAMES", "QUOTE", "TABLES", "TRADE", "WireField", "render"]


@dataclass(frozen=True)
class WireField:
    fid: str
    meaning: str
    how: str
    source: str  # the column of the tick table, or the constant itself for "const"


def _f(fid: str, meaning: str, how: str, source: str) -> WireField:
    return WireField(fid, meaning, how, source)


TRADE: tuple[WireField, ...] = (
    _f("20", "trade time", "hhmmss", "time"),
    _f("10", "trade price", "dir", "price"),
    _f("11", "change against the previous close, won", "signed", "change"),
    _f("12", "change rate against the previous close, %", "rate_signed", "change_rate"),
    _f("27", "best ask after the trade", "dir", "ask_1"),
    _f("28", "best bid after the trade", "dir", "bid_1"),
    _f("15", "trade size, shares; + buyer-initiated, - seller-initiated", "side", "size"),
    _f("13", "cumulative volume, shares", "plain", "cum_volume"),
    _f("14", "cumulative turnover, million won (백만원)", "plain", "cum_turnover_mil"),
    _f("16", "open", "dir", "open"),
    _f("17", "high so far", "dir", "high"),
    _f("18", "low so far", "dir", "low"),
    _f("25", "change sign: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down", "plain", "sign"),
    _f("26", "cumulative volume minus the previous day's volume, shares", "signed", "vol_vs_prev"),
    _f("29", "cumulative turnover minus the previous day's, won", "signed", "turnover_vs_prev"),
    _f("30", "cumulative volume over the previous day's, %, signed like FID 26", "rate_signed", "vol_ratio"),
    _f("31", "turnover rate: cumulative volume over listed shares, %", "rate", "turnover_rate"),
    _f("32", "trade cost", "const", ""),
    _f("228", "strength: buyer- over seller-initiated volume x 100 (capped at 500)", "rate", "strength"),
    _f("311", "market cap, 억원", "plain", "market_cap"),
    _f("290", "session: 1 pre-market, 2 regular, 3 after-hours", "const", "2"),
    _f("691", "K.O access", "const", "0"),
    _f("567", "upper-limit time", "const", "000000"),
    _f("568", "lower-limit time", "const", "000000"),
    _f("851", "volume against the previous day at the same time, %", "const", ""),
    _f("1890", "open time", "const", ""),
    _f("1891", "high time", "const", ""),
    _f("1892", "low time", "const", ""),
    _f("1030", "seller-initiated volume so far, shares", "plain", "sell_volume"),
    _f("1031", "buyer-initiated volume so far, shares", "plain", "buy_volume"),
    _f("1032", "buyer-initiated share of the volume, %", "rate", "buy_ratio"),
    _f("1071", "seller-initiated trades so far", "plain", "sell_count"),
    _f("1072", "buyer-initiated trades so far", "plain", "buy_count"),
    _f("1313", "this trade's turnover, won", "plain", "amount"),
    _f("1315", "this trade's size if seller-initiated, else 0", "plain", "sell_single"),
    _f("1316", "this trade's size if buyer-initiated, else 0", "plain", "buy_single"),
    _f("1314", "buyer- minus seller-initiated volume so far", "signed", "net_buy"),
    _f("1497", "CFD margin", "const", ""),
    _f("1498", "maintenance margin", "const", ""),
    _f("620", "average trade price of the day", "const", ""),
    _f("732", "CFD cost", "const", ""),
    _f("852", "short-selling cost", "const", ""),
    _f("9081", "exchange: 1 KRX", "const", "1"),
)


def _book() -> tuple[WireField, ...]:
    out = [_f("21", "quote time", "hhmmss", "time")]
    for k in range(1, 11):
        # FIDs by level: ask 41-50, ask qty 61-70, ask qty change 81-90; bid 51-60, 71-80, 91-100
        out += [
            _f(str(40 + k), f"ask price {k}", "dir", f"ask_{k}"),
            _f(str(60 + k), f"ask quantity {k}", "plain", f"ask_qty_{k}"),
            _f(str(80 + k), f"ask quantity {k} change since the last snapshot", "signed", f"ask_chg_{k}"),
            _f(str(50 + k), f"bid price {k}", "dir", f"bid_{k}"),
            _f(str(70 + k), f"bid quantity {k}", "plain", f"bid_qty_{k}"),
            _f(str(90 + k), f"bid quantity {k} change since the last snapshot", "signed", f"bid_chg_{k}"),
        ]
    out += [
        _f("121", "total ask quantity", "plain", "ask_total"),
        _f("122", "total ask quantity change", "signed", "ask_total_chg"),
        _f("125", "total bid quantity", "plain", "bid_total"),
        _f("126", "total bid quantity change", "signed", "bid_total_chg"),
        _f("23", "expected price (auction only)", "const", "0"),
        _f("24", "expected quantity (auction only)", "const", "0"),
        _f("128", "net bid quantity: bid total minus ask total", "signed", "net_bid"),
        _f("129", "bid total over ask total, %", "rate", "bid_ratio"),
        _f("138", "net ask quantity: ask total minus bid total", "signed", "net_ask"),
        _f("139", "ask total over bid total, %", "rate", "ask_ratio"),
        *(_f(fid, "expected-price figure (auction only)", "const", v) for fid, v in _EXPECTED),
        *(_f(str(fid), "LP quantity (no LP here)", "const", "0") for fid in range(621, 641)),
        _f("13", "cumulative volume, shares", "plain", "cum_volume"),
        _f("299", "expected volume against the previous day, %", "const", "0.00"),
        _f("215", "market operation code", "const", ""),
        _f("216", "investor ticker", "const", ""),
        *(
            _f(str(fid), "KRX/NXT split of the book (KRX only here)", "const", "0")
            for fid in range(6044, 6088)
        ),
        *(_f(str(fid), "mid-price figures (none here)", "const", "0") for fid in range(6100, 6116)),
    ]
    return tuple(out)


_EXPECTED: tuple[tuple[str, str], ...] = (
    ("200", "0"), ("201", "0.00"), ("238", "3"), ("291", "0"),
    ("292", "0"), ("293", "3"), ("294", "0"), ("295", "0.00"),
)  # fmt: skip
BOOK: tuple[WireField, ...] = _book()
QUOTE: tuple[WireField, ...] = (  # 0C 주식우선호가: the best quotes after each trade
    _f("27", "best ask", "dir", "ask_1"),
    _f("28", "best bid", "dir", "bid_1"),
)
NAMES = {"0B": "주식체결", "0C": "주식우선호가", "0D": "주식호가잔량"}
TABLES = {"0B": TRADE, "0C": QUOTE, "0D": BOOK}


def _sign_prefix(positive: pl.Expr, negative: pl.Expr) -> pl.Expr:
    return pl.when(positive).then(pl.lit("+")).when(negative).then(pl.lit("-")).otherwise(pl.lit(""))


def _two_decimals(x: pl.Expr, plus: bool) -> pl.Expr:
    hundredths = (x * 100).round(0).cast(pl.Int64)
    mag = hundredths.abs()
    sign = _sign_prefix(hundredths > 0 if plus else pl.lit(False), hundredths < 0)
    frac = (mag % 100).cast(pl.String).str.zfill(2)
    return pl.concat_str(sign, (mag // 100).cast(pl.String), pl.lit("."), frac)


def _value(f: WireField) -> pl.Expr:
    c = pl.col(f.source)
    if f.how == "hhmmss":
        return c
    if f.how == "dir":
        prev = pl.col("prev_close")
        return pl.concat_str(_sign_prefix(c > prev, c < prev), c.cast(pl.String))
    if f.how == "signed":
        return pl.concat_str(_sign_prefix(c > 0, pl.lit(False)), c.cast(pl.String))
    if f.how == "side":
        return pl.concat_str(_sign_prefix(pl.col("side") > 0, pl.col("side") < 0), c.cast(pl.String))
    if f.how == "plain":
        return c.cast(pl.String)
    if f.how in ("rate", "rate_signed"):
        return _two_decimals(c, f.how == "rate_signed")
    raise AssertionError(f"unknown way of writing {f.how!r}")


def render(ticks: pl.DataFrame, code: str, kind: str) -> list[str]:
    """One REAL entry (a JSON object, as text) per row of the tick table.

    Constant runs are merged into literals, so a row costs a handful of string
    concatenations inside Polars and no Python at all.
    """
    table = TABLES[kind]
    pieces: list[pl.Expr] = []
    text = f'{{"type":"{kind}","name":"{NAMES[kind]}","item":"{code}","values":{{'
    for i, f in enumerate(table):
        text += ("," if i else "") + f'"{f.fid}":"'
        if f.how == "const":
            text += f.source + '"'
            continue
        pieces += [pl.lit(text), _value(f)]
        text = '"'
    pieces.append(pl.lit(text + "}}"))
    return ticks.select(pl.concat_str(pieces).alias("entry")).to_series().to_list()
