"""What a stream committer may take for granted between its commits, and which trades are new.

The stream committer commits log records after its committed position only, so it
could skip two look-ups a commit if nothing else wrote to the lake meanwhile: the
check that its log position is the one stored (``record_position``), and the
keyed delete of its trades. A trade's key is (symbol, venue, date, cumulative
volume), and every trade raises its symbol's cumulative volume: a trade above the
highest stored for its symbol, venue and day cannot be in the table, and is
appended; only the rest (a trade the server sent again, or one the heal stored
first) go through the keyed delete, whose cost grows with the day's rows.

``TradeKeys`` keeps that highest cumulative volume per (symbol, venue, date) for
the days it has seen, read from the lake once per day and then advanced by what
it commits; both it and the position are trusted only while no other process has
committed:

- ``check`` before a commit compares the lake's newest snapshot with the one this
  committer's last commit made; if another writer (the heal, a backfill, a second
  worker) committed since, the highs are read again and the position is looked up.
  Snapshots that only merged files or pruned old positions (the worker's own merges
  every few seconds) change no row, and are let through (``snapshots.upkeep_only``);
- ``committed`` after it: if the commit's snapshot is not the next one (another
  writer committed between the check and the commit), the appended trades are
  committed once more with their keys replaced, which leaves each of them stored once.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from warehouse.commit import Commit, Rows
from warehouse.ledger import Run
from warehouse.store import Warehouse

__all__ = ["TRADES", "TradeKeys"]

TRADES = "stock_trades"
_KEY = ["symbol", "venue", "date"]
_HIGHS = {"symbol": pl.String, "venue": pl.String, "date": pl.Date, "_stored_high": pl.Int64}


class TradeKeys:
    """The highest committed cumulative volume per symbol, venue and day, and whether it is current."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.highs = pl.DataFrame(schema=_HIGHS)
        self.days: set[date] = set()
        self.own: int | None = None  # the snapshot this committer's last commit made, if nobody came after
        self.checked = -1  # the snapshot ``check`` saw
        self.reloads = 0
        self.upkeep = 0  # checks that found only merges of files since the last commit
        self.recommits = 0

    def check(self) -> bool:
        """Before a commit: whether the lake is as this committer's last commit left it. If not, what
        was known of the stored keys is dropped (read again as needed)."""
        self.checked = self.wh.snapshot()
        if self.checked == self.own:
            return True
        if self.own is not None and self.wh.upkeep_only(self.own, self.checked):
            self.own = self.checked  # only merges of files since (ours every few seconds): no row changed
            self.upkeep += 1
            return True
        self.highs, self.days = self.highs.clear(), set()
        self.reloads += 1
        return False

    def split(self, trades: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(trades above every stored key of their symbol-day: append; the rest: replace by key)."""
        self._load(set(trades["date"].unique().to_list()) - self.days)
        above = trades.join(self.highs, on=_KEY, how="left", nulls_equal=True, maintain_order="left")
        high = pl.col("_stored_high")
        fresh = high.is_null() | (pl.col("cum_volume") > high)
        return above.filter(fresh).drop("_stored_high"), above.filter(~fresh).drop("_stored_high")

    def committed(self, run: Run, fresh: pl.DataFrame | None) -> None:
        """After the commit that followed ``check`` and appended ``fresh``: advance the highs, or,
        if another writer committed in between, commit ``fresh`` again replacing its keys."""
        after = self.wh.snapshot()
        if after != self.checked + 1:
            self.own = None  # check again before the next commit
            if fresh is not None and fresh.height:
                self.recommits += 1
                self.wh.commit(Commit(run, rows=[Rows(TRADES, fresh, replace=True)]))
            return
        self.own = after
        if fresh is not None and fresh.height:
            top = fresh.group_by(_KEY).agg(pl.col("cum_volume").max().alias("_stored_high"))
            merged = pl.concat([self.highs, top], how="vertical")
            self.highs = merged.group_by(_KEY).agg(pl.col("_stored_high").max()).select(list(_HIGHS))

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
