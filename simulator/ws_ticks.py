"""A day's trades of one symbol as a table for the realtime feed, with the order book around each.

The trades are exactly ``Market.ticks(code, day)``, the rows the tick chart
(ka10079) serves: same times, prices and sizes. Everything else is derived
column-wise: cumulative volume is the running sum of the sizes, the side of a
trade follows the tick rule (an uptick is buyer-initiated, a downtick
seller-initiated, an unchanged price keeps the last side), and the book has
the trade at its best ask (a buy) or best bid (a sell), the other side one
tick away, then ten levels a tick apart with seeded quantities.
"""

from __future__ import annotations

import zlib
from datetime import date

import polars as pl

from schemas.calendar import previous_trading_day
from simulator.market import Market, tick_size

__all__ = ["LEVELS", "tick_table"]

LEVELS = 10
_QTY_MOD = 20_000


def _ticks_frame(market: Market, code: str, day: date) -> pl.DataFrame:
    ticks = market.ticks(code, day)
    return pl.DataFrame(
        {
            "sec": [t.ts.hour * 3600 + t.ts.minute * 60 + t.ts.second if t.ts else 0 for t in ticks],
            "price": [round(t.close) for t in ticks],
            "size": [t.volume for t in ticks],
            "amount": [t.turnover for t in ticks],
        },
        schema={"sec": pl.Int32, "price": pl.Int64, "size": pl.Int64, "amount": pl.Int64},
    )


def _step(prices: pl.Series, up: bool) -> pl.Series:
    """The next price on the grid above (or below) each price: the model's own tick sizes."""
    uniq = prices.unique().to_list()
    table = {p: p + tick_size(p) if up else max(p - tick_size(p - 1), 1) for p in uniq}
    return prices.replace_strict(table, return_dtype=pl.Int64)


def tick_table(market: Market, code: str, day: date, seed: int) -> pl.DataFrame:
    """One row per trade of ``day``: the columns ``ws_wire``'s tables name. Empty off days."""
    df = _ticks_frame(market, code, day)
    if df.is_empty():
        return df
    inst = market.universe.get(code)
    prev_close = market.prev_close(code, day) or float(df["price"][0])
    prev = market.daily_bar(code, previous_trading_day(day))
    prev_volume, prev_turnover = (prev.volume, prev.turnover) if prev else (0, 0)
    price, size = pl.col("price"), pl.col("size")
    first_side = 1 if (seed + int(day.strftime("%Y%m%d"))) % 2 else -1
    diff = price - price.shift(1)
    side = (
        pl.when(diff > 0).then(1).when(diff < 0).then(-1).otherwise(None).forward_fill().fill_null(first_side)
    )
    df = df.with_columns(
        pl.lit(round(prev_close), pl.Int64).alias("prev_close"),
        side.cast(pl.Int8).alias("side"),
        pl.concat_str(
            (pl.col("sec") // 3600).cast(pl.String).str.zfill(2),
            (pl.col("sec") % 3600 // 60).cast(pl.String).str.zfill(2),
            (pl.col("sec") % 60).cast(pl.String).str.zfill(2),
        ).alias("time"),
        size.cum_sum().alias("cum_volume"),
        pl.col("amount").cum_sum().alias("cum_turnover"),
        price.first().alias("open"),
        price.cum_max().alias("high"),
        price.cum_min().alias("low"),
    )
    buy = pl.col("side") > 0
    df = df.with_columns(
        (price - pl.col("prev_close")).alias("change"),
        ((price - pl.col("prev_close")) / pl.col("prev_close") * 100).alias("change_rate"),
        pl.when(price > pl.col("prev_close"))
        .then(2)
        .when(price < pl.col("prev_close"))
        .then(5)
        .otherwise(3)
        .alias("sign"),
        (pl.col("cum_turnover") // 1_000_000).alias("cum_turnover_mil"),
        (pl.col("cum_volume") - prev_volume).alias("vol_vs_prev"),
        (pl.col("cum_turnover") - prev_turnover).alias("turnover_vs_prev"),
        (
            pl.col("cum_volume") / max(prev_volume, 1) * 100 * (pl.col("cum_volume") - prev_volume).sign()
        ).alias("vol_ratio"),
        (pl.col("cum_volume") / max(inst.shares, 1) * 100).alias("turnover_rate"),
        (price * inst.shares // 100_000_000).alias("market_cap"),
        pl.when(buy).then(size).otherwise(0).cum_sum().alias("buy_volume"),
        pl.when(buy).then(0).otherwise(size).cum_sum().alias("sell_volume"),
        buy.cast(pl.Int64).cum_sum().alias("buy_count"),
        (~buy).cast(pl.Int64).cum_sum().alias("sell_count"),
        pl.when(buy).then(size).otherwise(0).alias("buy_single"),
        pl.when(buy).then(0).otherwise(size).alias("sell_single"),
    )
    df = df.with_columns(
        (pl.col("buy_volume") - pl.col("sell_volume")).alias("net_buy"),
        (pl.col("buy_volume") / pl.col("cum_volume") * 100).alias("buy_ratio"),
        pl.when(pl.col("sell_volume") > 0)
        .then((pl.col("buy_volume") / pl.col("sell_volume") * 100).clip(upper_bound=500.0))
        .otherwise(500.0)
        .alias("strength"),
    )
    return _with_book(df, zlib.crc32(f"{seed}:{code}:{day}".encode()))


def _with_book(df: pl.DataFrame, seed: int) -> pl.DataFrame:
    prices = df["price"]
    buy = df["side"] > 0
    # a buy lifts the ask (the trade is the best ask), a sell hits the bid; the other side a tick away
    ask = prices.zip_with(buy, _step(prices, up=True)).alias("ask_1")
    bid = prices.zip_with(~buy, _step(prices, up=False)).alias("bid_1")
    cols = [ask, bid]
    for k in range(2, LEVELS + 1):
        ask, bid = _step(ask, up=True).alias(f"ask_{k}"), _step(bid, up=False).alias(f"bid_{k}")
        cols += [ask, bid]
    df = df.with_columns(cols)
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    qty = []
    for k in range(1, LEVELS + 1):
        for j, side in enumerate(("ask", "bid")):
            draw = (row * 64 + k * 2 + j).hash(seed) % _QTY_MOD + 1 + 50 * k
            qty.append(draw.cast(pl.Int64).alias(f"{side}_qty_{k}"))
    df = df.with_columns(qty)
    totals = [
        pl.sum_horizontal(f"ask_qty_{k}" for k in range(1, LEVELS + 1)).alias("ask_total"),
        pl.sum_horizontal(f"bid_qty_{k}" for k in range(1, LEVELS + 1)).alias("bid_total"),
    ]
    df = df.with_columns(totals)
    changes = [
        (pl.col(c) - pl.col(c).shift(1)).fill_null(0).alias(out)
        for side in ("ask", "bid")
        for c, out in [
            *((f"{side}_qty_{k}", f"{side}_chg_{k}") for k in range(1, LEVELS + 1)),
            (f"{side}_total", f"{side}_total_chg"),
        ]
    ]
    return df.with_columns(
        *changes,
        (pl.col("bid_total") - pl.col("ask_total")).alias("net_bid"),
        (pl.col("ask_total") - pl.col("bid_total")).alias("net_ask"),
        (pl.col("bid_total") / pl.col("ask_total") * 100).alias("bid_ratio"),
        (pl.col("ask_total") / pl.col("bid_total") * 100).alias("ask_ratio"),
    )
