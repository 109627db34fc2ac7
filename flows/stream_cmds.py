"""``kwh stream``: record realtime trades and order book into the warehouse until a time or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import warnings
from datetime import date, datetime, time
from typing import Annotated

import typer
from rich.live import Live
from rich.text import Text

from connectors import KiwoomError, RealtimeSession, RetryPolicy, Settings
from flows import heal_cmds
from flows.lake_cmds import WarehouseOpt, console, fail
from flows.run_cmds import BaseUrlOpt, HostOpt, _settings
from flows.stream import StreamConfig, StreamSummary, log_folder, run_stream, write_status
from schemas.calendar import KST
from schemas.errors import InputError
from warehouse import Warehouse, WarehouseError, dataset
from warehouse.ticklog import TickLogError

stream_app = typer.Typer()
heal_cmds.register(stream_app)  # kwh stream verify DATE
_TYPES = ("0B", "0D")


def _until(text: str | None, now: datetime) -> datetime | None:
    """``15:40`` (today, Korea; tomorrow if past) or an ISO time stamp."""
    if text is None:
        return None
    try:
        if len(text) <= 5:
            at = datetime.combine(now.date(), time.fromisoformat(text), KST)
        else:
            at = datetime.fromisoformat(text)
            at = at if at.tzinfo else at.replace(tzinfo=KST)
    except ValueError:
        raise fail(f"--until {text!r} is neither HH:MM nor an ISO time stamp", 2) from None
    if at <= now:
        raise fail(f"--until {text} is already past ({now:%H:%M} in Korea)", 2)
    return at


def _symbols(wh: Warehouse, text: str) -> list[str]:
    from flows.symbols import resolve_symbols

    try:
        return resolve_symbols(wh, dataset("stock_trades"), text)
    except InputError as exc:
        raise fail(str(exc), 2) from None


def _line(s: StreamSummary) -> str:
    """The progress line: what arrived, what is committed, how far behind."""
    sess, com = s.session, s.committer
    rows = ", ".join(f"{k} {v}" for k, v in com.get("rows", {}).items()) or "no rows yet"
    return (
        f"{sess.get('frames', 0)} frames, {sess.get('entries', 0)} entries | committed: {rows} | "
        f"log lag {s.log_lag} records, commit lag {com.get('commit_lag_s', 0):.2f}s | "
        f"reconnects {sess.get('reconnects', 0)}, gaps {com.get('gaps', 0)}, "
        f"rejected {com.get('rejected', 0)}"
    )


def _show(summary: StreamSummary) -> None:
    s, c = summary.session, summary.committer
    console.print(
        f"[bold]stream {summary.status}[/bold] in {summary.seconds:.1f}s: "
        f"{s.get('frames', 0)} frames, {s.get('entries', 0)} entries, {s.get('bytes', 0)} bytes received; "
        f"{c.get('records', 0) + summary.replayed} log records committed ({summary.replayed} replayed), "
        f"rows {c.get('rows', {})}; {s.get('reconnects', 0)} reconnects, {c.get('gaps', 0)} gap rows, "
        f"{c.get('rejected', 0)} rejected, {c.get('duplicates', 0)} duplicate trades"
    )
    m = summary.merges
    if m.get("merges") or m.get("failures"):
        console.print(
            f"small files: {m.get('merges', 0)} merges between the commits ({m.get('files_merged', 0)} files "
            f"merged, {m.get('seconds', 0):.1f}s in all, the longest {m.get('longest_s', 0):.2f}s; "
            f"{m.get('snapshots_expired', 0)} of the session's snapshots expired)"
            + (
                f", [yellow]{m['failures']} failed[/yellow]: {m.get('last_error')}"
                if m.get("failures")
                else ""
            )
        )
    if summary.torn_tail:
        console.print(f"[yellow]the log's torn tail was cut:[/yellow] {summary.torn_tail}")
    if summary.error:
        console.print(f"[red]error:[/red] {summary.error}")


@stream_app.callback(invoke_without_command=True)
def stream_cmd(
    ctx: typer.Context,
    symbols: Annotated[
        str | None, typer.Option("--symbols", "-s", help="codes, kospi, kosdaq or all")
    ] = None,
    types: Annotated[str, typer.Option("--types", help="realtime types, comma-separated")] = "0B,0D",
    until: Annotated[str | None, typer.Option("--until", help="stop at HH:MM (Korea) or an ISO time")] = None,
    day: Annotated[
        str | None,
        typer.Option("--day", help="the session date of a replayed session (simulator replay mode)"),
    ] = None,
    stream: Annotated[
        str, typer.Option("--stream", help="the stream's name (its log and position)")
    ] = "realtime",
    warehouse: WarehouseOpt = None,
    base_url: BaseUrlOpt = None,
    host: HostOpt = None,
    max_reconnects: Annotated[
        int, typer.Option(help="reconnect attempts in a row before giving up (10 s apart at most)")
    ] = 30,
) -> None:
    """Record realtime trades (0B) and order book (0D): log first, then commit; Ctrl-C stops cleanly.

    Every frame is appended to a durable log beside the lake before it is parsed;
    a committer stores micro-batches with the log position in one transaction, so
    a crash neither loses nor duplicates a row (a restart replays the log).
    """
    if ctx.invoked_subcommand is not None:
        return
    if not symbols:
        raise fail("--symbols is required (codes, kospi, kosdaq or all)", 2)
    wanted = tuple(t.strip() for t in types.split(",") if t.strip())
    unknown = [t for t in wanted if t not in _TYPES]
    if unknown or not wanted:
        raise fail(f"--types {types!r}: the worker stores {', '.join(_TYPES)}", 2)
    replay_day = None
    if day is not None:
        try:
            replay_day = date.fromisoformat(day)
        except ValueError:
            raise fail(f"--day {day!r} is not a date (YYYY-MM-DD)", 2) from None
    settings = _settings(base_url, host)
    try:
        wh = Warehouse(warehouse=warehouse)
    except WarehouseError as exc:
        raise fail(str(exc), 2) from None
    with wh:
        codes = _symbols(wh, symbols)
        cfg = StreamConfig(codes, wanted, _until(until, datetime.now(KST)), stream, day=replay_day)
        summary = _run(settings, wh, cfg, max_reconnects)
    _show(summary)
    raise typer.Exit(0 if summary.status == "completed" else 1)


def _run(settings: Settings, wh: Warehouse, cfg: StreamConfig, retries: int) -> StreamSummary:
    folder = log_folder(wh, cfg.stream)

    async def main() -> StreamSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        presses = 0

        def on_signal() -> None:
            nonlocal presses
            presses += 1
            if presses > 1:
                raise SystemExit(130)  # a second Ctrl-C: at once (the log is durable, a restart replays)
            console.print("stopping: committing what the log holds ...")
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        session = RealtimeSession(settings, retry=RetryPolicy.from_settings(settings, max_retries=retries))
        console.print(f"streaming {len(cfg.symbols)} symbols x {', '.join(cfg.types)} into {wh.config.root}")
        with Live(Text("connecting ..."), console=console, refresh_per_second=2, transient=True) as live:

            def progress(s: StreamSummary) -> None:
                write_status(folder, s)
                live.update(Text(_line(s)))

            return await run_stream(settings, wh, cfg, stop=stop, session=session, progress=progress)

    logging.getLogger("connectors").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = asyncio.run(main())
        for w in caught:
            console.print(f"[yellow]warning:[/yellow] {w.message}")
    except (TickLogError, KiwoomError) as exc:
        raise fail(str(exc), 1) from None
    write_status(folder, summary)
    return summary


def register(app: typer.Typer) -> None:
    app.add_typer(stream_app, name="stream")
