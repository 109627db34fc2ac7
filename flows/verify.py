"""Reconciling a streamed day: per symbol, do the stored trades add up to the day's volume?

After the stream and the heal, each symbol-day's trades in ``stock_trades``
should sum to the volume of the day's bar in ``stock_bars_daily``, the last
cumulative volume should equal that sum (every trade raises it by its size), no
key should be there twice, and every recorded gap should be healed.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from flows.heal import VENUE_SUFFIX
from warehouse import Warehouse

__all__ = ["STATUSES", "VERIFY_SCHEMA", "verify"]

VERIFY_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "venue": pl.String(),
        "streamed": pl.Int64(),  # trades with source 'stream'
        "healed": pl.Int64(),  # trades with source 'heal'
        "volume": pl.Int64(),  # sum of the trades' sizes
        "last_cum_volume": pl.Int64(),
        "daily_volume": pl.Int64(),
        "difference": pl.Int64(),  # daily_volume - volume
        "duplicates": pl.Int64(),  # trades sharing a key with another
        "gaps": pl.Int64(),
        "unhealed": pl.Int64(),
        "status": pl.String(),
    }
)
STATUSES = ("ok", "duplicate keys", "no daily bar", "missing trades", "excess trades", "unhealed gaps")
_COUNTS = ("streamed", "healed", "volume", "duplicates", "gaps", "unhealed")


def _trades(wh: Warehouse, day: date) -> pl.DataFrame:
    if "stock_trades" not in wh.tables():
        return pl.DataFrame(schema={c: VERIFY_SCHEMA[c] for c in ("symbol", "venue", *_COUNTS[:4])})
    return wh.sql(
        "SELECT symbol, venue, count(*) FILTER (WHERE source = 'stream') AS streamed, "
        "count(*) FILTER (WHERE source = 'heal') AS healed, sum(size) AS volume, "
        "max(cum_volume) AS last_cum_volume, count(*) - count(DISTINCT cum_volume) AS duplicates "
        "FROM stock_trades WHERE date = ? GROUP BY symbol, venue",
        [day],
    )


def _bars(wh: Warehouse, day: date) -> pl.DataFrame:
    """The day's volume per request code; the adjusted bar when there are both (the volume is the same)."""
    if "stock_bars_daily" not in wh.tables():
        return pl.DataFrame(schema={"code": pl.String, "daily_volume": pl.Int64})
    return wh.sql(
        "SELECT symbol AS code, arg_max(volume, adjusted) AS daily_volume "
        "FROM stock_bars_daily WHERE date = ? GROUP BY symbol",
        [day],
    )


def _gaps(wh: Warehouse, day: date) -> pl.DataFrame:
    code = pl.col("symbol")
    venue = pl.lit("KRX")
    for venue_name, suffix in VENUE_SUFFIX.items():
        venue = pl.when(code.str.ends_with(suffix)).then(pl.lit(venue_name)).otherwise(venue)
    return (
        wh.stream_gaps(day)
        .with_columns(symbol=code.str.replace(r"_(NX|AL)$", ""), venue=venue)
        .group_by("symbol", "venue")
        .agg(gaps=pl.len(), unhealed=pl.col("healed_run").is_null().sum())
    )


def verify(warehouse: Warehouse, day: date) -> pl.DataFrame:
    """Per symbol and venue with trades or gaps on ``day``: the reconciliation, one row each.

    Columns as ``VERIFY_SCHEMA``. ``status``, first that applies: ``duplicate keys``;
    ``no daily bar``; ``missing trades`` (short of the bar's volume, or of the last
    cumulative volume); ``excess trades`` (over either); ``unhealed gaps``; ``ok``.
    """
    suffix = pl.col("venue").replace_strict(VENUE_SUFFIX, default="")
    out = (
        _trades(warehouse, day)
        .join(_gaps(warehouse, day), on=["symbol", "venue"], how="full", coalesce=True)
        .with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in _COUNTS)
        .with_columns(code=pl.col("symbol") + suffix)
        .join(_bars(warehouse, day), on="code", how="left")
        .with_columns(difference=pl.col("daily_volume") - pl.col("volume"))
    )
    last, diff = pl.col("last_cum_volume").fill_null(0), pl.col("difference")
    status = (
        pl.when(pl.col("duplicates") > 0).then(pl.lit("duplicate keys"))
        .when(pl.col("daily_volume").is_null()).then(pl.lit("no daily bar"))
        .when((diff > 0) | (last > pl.col("volume"))).then(pl.lit("missing trades"))
        .when((diff < 0) | (last < pl.col("volume"))).then(pl.lit("excess trades"))
        .when(pl.col("unhealed") > 0).then(pl.lit("unhealed gaps"))
        .otherwise(pl.lit("ok"))
    )  # fmt: skip
    return (
        out.with_columns(status=status)
        .select(VERIFY_SCHEMA.names())
        .cast(VERIFY_SCHEMA)
        .sort("symbol", "venue")
    )
