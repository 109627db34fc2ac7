"""``kwh stream verify DATE``: does each symbol's streamed (and healed) day add up to its daily bar?"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import polars as pl
import typer

from flows.lake_cmds import WarehouseOpt, console, fail, frame_table
from flows.verify import verify
from warehouse import LakeConfig, Warehouse, WarehouseError

__all__ = ["register"]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{text!r} is not a date (YYYY-MM-DD)", 2) from None


def verify_cmd(
    day: Annotated[
        str, typer.Argument(metavar="DATE", help="the trading day, YYYY-MM-DD", show_default=False)
    ],
    warehouse: WarehouseOpt = None,
) -> None:
    """Reconcile a day's trades per symbol: stored sizes vs the daily bar's volume, gaps healed.

    Exits 0 when every symbol reconciles, 1 when one does not (or nothing was
    streamed that day), 2 on bad input.
    """
    when = _day(day)
    try:
        config = LakeConfig.load(warehouse)
    except WarehouseError as exc:
        raise fail(str(exc), 2) from None
    if not config.exists():
        raise fail(f"no warehouse at {config.root}", 2)
    with Warehouse(config) as wh:
        table = verify(wh, when)
    if table.is_empty():
        raise fail(f"no trades or stream gaps on {when}: nothing to reconcile", 1)
    bad = table.filter(pl.col("status") != "ok")
    console.print(frame_table(table, title=f"stream reconciliation {when}"))
    if bad.height:
        counts = ", ".join(f"{n} {s}" for s, n in bad.group_by("status").len().sort("status").iter_rows())
        console.print(f"[red]{bad.height} of {table.height} symbols do not reconcile[/red]: {counts}")
        raise typer.Exit(1)
    console.print(f"[green]all {table.height} symbols reconcile[/green] with their daily bars")


def register(stream_app: typer.Typer) -> None:
    """Add ``verify`` to the ``kwh stream`` group."""
    stream_app.command("verify")(verify_cmd)
