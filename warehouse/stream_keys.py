"""Which streamed trades are new: appended without a delete, the rest replaced by key.

A trade's key is (symbol, venue, date, cumulative volume), and every trade raises
its symbol's cumulative volume. The stream committer commits log records after
its committed position only, so almost every trade it commits carries a key the
table has never held: anything above the highest cumulative volume stored for
its symbol, venue and day. Those are appended; only the rest (a trade the
server sent again, or one the heal stored first) go through the keyed delete,
whose cost grows with the day's rows.

``TradeKeys`` keeps that highest cumulative volume per (symbol, venue, date) for
the days it has seen, read from the lake once per day and then advanced by
what it commits. It is only trusted while no other process has committed:

- before a commit, the lake's newest snapshot is compared with the one this
  connection committed last; if another writer (the heal, a backfill) committed
  since, the highs are read again;
- after a commit, if another writer committed between that check and the commit
  (the commit's snapshot is not the next one), the appended trades are committed
  once more with their keys replaced, which leaves each of them stored once.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from warehouse.commit import Commit, Rows
from warehouse.ledger import Run
from warehouse.store import Warehouse

__all__ = ["TradeKeys"]

TRADES = "stock_trades"
_KEY = ["symbol", "venue", "date"]
_HIGHS = {"symbol": pl.String, "venue": pl.String, "date": pl.Date, "_stored_high": pl.Int64}


class TradeKeys:
    """The highest committed cumulative volume per symbol, venue and day, for splitting trades."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.highs = pl.DataFrame(schema=_HIGHS)
        self.days: set[date] = set()
        self.seen: int | None = None  # the snapshot the highs are true at (None: read them again)
        self.reloads = 0
        self.recommits = 0

    def split(self, trades: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
        """(trades above every stored key of their symbol-day: append; the rest: replace by key;
        the snapshot the split is true at, for ``commit``)."""
        now = self.wh.snapshot()
        if now != self.seen:
            self.highs, self.days, self.seen = self.highs.clear(), set(), now
            self.reloads += 1
        self._load(set(trades["date"].unique().to_list()) - self.days)
        above = trades.join(self.highs, on=_KEY, how="left", nulls_equal=True, maintain_order="left")
        fresh = pl.col("_stored_high").is_null() | (pl.col("cum_volume") > pl.col("_stored_high"))
        return above.filter(fresh).drop("_stored_high"), above.filter(~fresh).drop("_stored_high"), now

    def committed(self, run: Run, fresh: pl.DataFrame, checked: int) -> None:
        """After the commit of ``fresh`` (appended) whose check saw snapshot ``checked``: advance the
        highs, or, if another writer committed in between, commit ``fresh`` again replacing its keys."""
        own = self.wh.snapshot(own=True)
        if own != checked + 1 and fresh.height:
            self.recommits += 1
            self.wh.commit(Commit(run, rows=[Rows(TRADES, fresh, replace=True)]))
            self.seen = None  # read again before the next split
            return
        self.seen = own
        if fresh.height:
            top = fresh.group_by(_KEY).agg(pl.col("cum_volume").max().alias("_stored_high"))
            self.highs = (
                pl.concat([self.highs, top], how="vertical")
                .group_by(_KEY)
                .agg(pl.col("_stored_high").max())
                .select(list(_HIGHS))
            )

    def _load(self, days: set[date]) -> None:
        if not days:
            return
        self.days |= days
        if TRADES not in self.wh.tables():
            return
        marks = ", ".join("?" * len(days))
        stored = self.wh.sql(
            f"SELECT symbol, venue, date, max(cum_volume) AS _stored_high FROM {TRADES} "
            f"WHERE date IN ({marks}) GROUP BY ALL",
            sorted(days),
        )
        if stored.height:
            self.highs = pl.concat([self.highs, stored.cast(_HIGHS)], how="vertical")  # type: ignore[arg-type]
