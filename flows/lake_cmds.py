"""``kwh sql``, ``kwh status``, ``kwh compact``: reading and maintaining the warehouse."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import duckdb
import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from schemas.calendar import TZ_NAME
from warehouse import LakeConfig, Warehouse, WarehouseError, connect, maintenance

# piped output (`make demo | tee`) gets a wide table instead of rich's 80 columns
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse", "-w", help="lake folder (default $KWH_WAREHOUSE or ./data)", show_default=False
    ),
]
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # one line, never wrapped
    return typer.Exit(code)


def _duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def frame_table(frame: pl.DataFrame, title: str | None = None, max_rows: int | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for name in frame.columns:
        numeric = frame.schema[name].is_numeric()
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    shown = frame if max_rows is None else frame.head(max_rows)
    for row in shown.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    if max_rows is not None and frame.height > max_rows:
        table.caption = f"{max_rows} of {frame.height} rows shown (use --format csv for all)"
    return table


def print_frame(frame: pl.DataFrame, fmt: str, title: str | None = None, max_rows: int | None = None) -> None:
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        console.print(frame_table(frame, title, max_rows))


def register(app: typer.Typer) -> None:
    @app.command("sql")
    def sql_cmd(
        query: Annotated[
            str,
            typer.Argument(
                help="a SQL query; datasets are plain table names, with the views daily, symbols, "
                "<snapshot>_latest and the macro kst_date(ts) (warehouse.views)"
            ),
        ],
        warehouse: WarehouseOpt = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json")] = "table",
        max_rows: Annotated[int, typer.Option(help="rows shown in table format")] = 100,
    ) -> None:
        """Run a read-only SQL query on the warehouse (DuckDB dialect, the views of warehouse.connect())."""
        if fmt not in ("table", "csv", "json"):
            raise typer.BadParameter("use table, csv or json", param_hint="--format")
        try:
            con = connect(read_only=True, warehouse=warehouse)
        except WarehouseError as exc:
            raise fail(str(exc), exc.exit_code) from None
        try:
            frame = con.sql(query).pl() if query.strip() else pl.DataFrame()
        except duckdb.Error as exc:
            raise fail(f"query failed: {exc}") from None
        finally:
            con.close()
        print_frame(frame, fmt, max_rows=max_rows)

    @app.command("status")
    def status_cmd(
        warehouse: WarehouseOpt = None,
        gaps: Annotated[int, typer.Option(help="gaps listed (the largest first)")] = 20,
        runs: Annotated[int, typer.Option(help="recent runs listed")] = 10,
    ) -> None:
        """Datasets with row counts, time ranges and last runs; recent runs; gaps against the KRX calendar."""
        for name, value in (("--gaps", gaps), ("--runs", runs)):
            if value < 0:
                raise fail(f"{name} {value}: give a count, 0 or more", 2)
        config = LakeConfig.load(warehouse).reading()  # a status never writes (the lake may be read-only)
        if not config.exists():
            raise fail(f"no warehouse at {config.root}: run `kwh backfill` or `make demo` first", 2)
        show_status(Warehouse(config), gaps, runs)

    @app.command("compact")
    def compact_cmd(
        warehouse: WarehouseOpt = None,
        older_than: Annotated[
            str, typer.Option(help="expire snapshots and delete files older than this")
        ] = "7d",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be done")] = False,
        delete_orphans: Annotated[
            bool,
            typer.Option(
                "--delete-orphans",
                help="also delete files in the data folder that the catalog does not list (a crashed "
                "writer's); never use it on a lake whose catalog was restored or replaced",
            ),
        ] = False,
    ) -> None:
        """Sort closed months of intraday bars by symbol, merge small files, expire snapshots."""
        age = _duration(older_than)
        config = LakeConfig.load(warehouse)
        if dry_run:
            config = config.reading()
        if not config.exists():
            raise fail(f"no warehouse at {config.root}", 2)
        with Warehouse(config) as wh:
            result = maintenance.compact(wh.con, age, dry_run=dry_run, delete_orphans=delete_orphans)
        title = "compaction (dry run: nothing changed)" if dry_run else "compaction"
        print_frame(pl.DataFrame([result]), "table", title=title)
        verb = "would expire" if dry_run else "expired"
        if result["partitions_sorted"]:
            files = f"{result['partition_files_before']} files" + (
                "" if dry_run else f" -> {result['partition_files_after']}"
            )
            sorted_verb = "would sort" if dry_run else f"sorted {result['partition_rows']:,} rows in"
            parts = result["partitions_sorted"]
            console.print(f"{sorted_verb} {parts} closed partitions of intraday bars by symbol ({files})")
        else:
            console.print("closed partitions of intraday bars: all already sorted by symbol")
        console.print(
            f"data files {result['files_before']} -> {result['files_after']}; {verb} "
            f"{result['snapshots_expired']} snapshots, {result['files_deleted']} files deleted"
        )
        kept = result["orphans"] - result["orphans_deleted"]
        if kept:
            console.print(
                f"{kept} files in {config.data_path} are not in the catalog and were kept: a crashed "
                "writer's leftovers, or the data of a catalog that was replaced; `kwh compact "
                "--delete-orphans` deletes them once you are sure the catalog is the right one"
            )


def show_status(wh: Warehouse, n_gaps: int = 20, n_runs: int = 10) -> None:
    with wh:
        status = wh.status()
        if status.is_empty():
            console.print(f"warehouse at {wh.config.root}: no datasets yet")
            return
        status = status.with_columns(pl.col("last_write").dt.convert_time_zone(TZ_NAME).dt.strftime("%F %T"))
        console.print(frame_table(status, title=f"warehouse {wh.config.root}"))
        recent = wh.runs(n_runs).select(
            "run_id",
            "flow",
            "status",
            pl.col("started_at").dt.convert_time_zone(TZ_NAME).dt.strftime("%F %T"),
            "rows_written",
        )
        console.print(frame_table(recent, title="recent runs"))
        gaps = wh.gaps()
        if gaps.is_empty():
            console.print("no gaps: every covered stretch is complete on the KRX calendar")
        else:
            total = int(gaps["trading_days"].sum())
            console.print(
                frame_table(
                    gaps.sort("trading_days", descending=True).head(n_gaps),
                    title=f"{gaps.height} gaps, {total} trading days missing inside covered stretches",
                )
            )
        _show_streams(wh)


def _show_streams(wh: Warehouse) -> None:
    from flows.stream import stream_status

    streams, open_gaps = stream_status(wh)
    if streams.is_empty():
        return
    streams = streams.with_columns(pl.col("committed_at").dt.convert_time_zone(TZ_NAME).dt.strftime("%F %T"))
    console.print(frame_table(streams, title="realtime streams (kwh stream)"))
    if not open_gaps.is_empty():
        shown = open_gaps.select("stream", "symbol", "start_ts", "end_ts", "reason").head(20)
        console.print(frame_table(shown, title=f"{open_gaps.height} stream gaps not healed yet"))
