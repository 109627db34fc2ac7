"""The ``kwh`` command line."""

from __future__ import annotations

import atexit
import gc
import os
import re
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

import schemas
from flows import dataset_cmds, lake_cmds, run_cmds, stream_cmds
from schemas.catalog import TR, Field

console = lake_cmds.console  # the real width, or a wide one when piped

# The modules just imported live as long as the process: frozen, the collector's passes during a
# run skip them. Registered first, ``gc.freeze`` also runs last of the exit handlers, so the
# interpreter's final collection skips every object alive at exit (a tenth of a second with
# Polars and DuckDB loaded, each command); memory goes back with the process.
gc.freeze()
atexit.register(gc.freeze)

_PREFECT_DOWN = ("Failed to reach API at", "Timed out while attempting to connect to ephemeral Prefect API")
_DUCKDB_ENVIRONMENT = (
    "malformed",
    "not a database",
    "unable to open database file",
    "permission denied",
    "read-only file system",
    "readonly database",
    "no space left",
    "disk i/o error",
)


def environment_error(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an error of the environment or input, else None (a bug).

    ``WarehouseError``: exit 2 (bad input) or 1 (``LakeError``: the lake on disk);
    ``schemas.errors.InputError`` (a wrong name, option, value or date): exit 2; a file
    system error, a damaged catalog or an unreachable Prefect API: exit 1. A built-in
    ``ValueError``/``KeyError`` is a bug, not bad input: None, so it keeps its traceback.
    """
    import duckdb
    import httpx

    from schemas.errors import InputError
    from warehouse import WarehouseError

    if isinstance(exc, WarehouseError):
        return str(exc), exc.exit_code
    if isinstance(exc, InputError):  # the project's bad input; a plain ValueError is a bug
        return str(exc), 2
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    api = os.environ.get("PREFECT_API_URL", "")
    if (isinstance(exc, RuntimeError) and text.startswith(_PREFECT_DOWN)) or (
        isinstance(exc, httpx.TransportError) and api and _request_url(exc).startswith(api.rstrip("/"))
    ):
        return (
            f"the Prefect API is not reachable ({text}): start it (`prefect server start`), point "
            "PREFECT_API_URL at a running server, or unset PREFECT_API_URL to run without one",
            1,
        )
    if isinstance(exc, duckdb.Error) and any(m in text.lower() for m in _DUCKDB_ENVIRONMENT):
        return f"the warehouse failed: {text}: check the lake folder (README: Safety)", 1
    if isinstance(exc, OSError) and exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        return f"{exc.strerror or type(exc).__name__}: {where}: check the path and its permissions", 1
    return None


def _request_url(exc: BaseException) -> str:
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except RuntimeError:  # an httpx error raised without a request
        return ""


class _Group(TyperGroup):
    """Every command: errors of the environment or input are one line on stderr and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            known = environment_error(exc)
            if known is None:
                raise
            raise lake_cmds.fail(*known) from None


app = typer.Typer(
    help="kiwoom-warehouse: Kiwoom market data into a DuckDB/DuckLake warehouse.",
    no_args_is_help=True,
    cls=_Group,
)

lake_cmds.register(app)
run_cmds.register(app)
stream_cmds.register(app)
dataset_cmds.register(app)

_TR_ID = re.compile(r"^(au|ka|kt)\d{5}$|^[0-9][0-9A-Za-z]$")


@app.command("catalog")
def catalog_cmd(
    query: Annotated[str, typer.Argument(help="a TR id (shows it) or text to filter by")] = "",
    category: Annotated[str, typer.Option("--category", "-c", help="대분류 or 중분류, e.g. 차트")] = "",
    units: Annotated[
        bool, typer.Option("--units", help="list every field whose wire unit the catalog records")
    ] = False,
) -> None:
    """List TRs, or show one TR with its request and response fields."""
    cat = schemas.catalog()
    if units:
        _show_units(query)
        return
    if query in cat.trs:
        _show_tr(cat.tr(query))
        return
    if query in cat.realtime:
        _show_realtime(cat.realtime_type(query))
        return
    if _TR_ID.match(query):
        console.print(f"[red]unknown TR {query!r}[/red]: not in the catalog (try `kwh catalog` to list)")
        raise typer.Exit(2)
    trs = cat.search(query, category)
    table = Table(title=f"{len(trs)} TRs" + (f" matching {query!r}" if query else ""))
    for col in ("id", "name", "category", "path", "list", "fields", "paper", "order"):
        table.add_column(col)
    for tr in trs:
        n_fields = len(tr.row_fields())
        table.add_row(
            tr.id,
            tr.name,
            tr.subcategory,
            tr.path,
            tr.main_list or "-",
            str(n_fields),
            "yes" if tr.paper_supported else "no",
            "ORDER" if tr.is_order else "",
        )
    console.print(table)
    if not query and not category:
        console.print(f"{len(cat.realtime)} realtime types: {', '.join(cat.realtime)}")


def _show_units(query: str) -> None:
    from warehouse.units import recorded_units

    rows = [r for r in recorded_units() if not query or r[0] == query]
    table = Table(
        title=f"{len(rows)} fields with a recorded unit (any other amount: unit unknown, stored as sent)"
    )
    for col in ("TR", "field", "label", "wire unit", "in the warehouse"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _field_table(title: str, fields: tuple[Field, ...]) -> Table:
    table = Table(title=title)
    for col in ("field", "label", "kind", "unit/decimals", "columns", "why"):
        table.add_column(col, overflow="fold")
    for f in fields:
        extra = f.unit or ("by request option" if f.unit_rules else "")
        extra = extra or (f"{f.decimals} implied decimals" if f.decimals else "")
        cols = ", ".join(f"{n}:{t}" for n, t in f.output_schema(f.column or f.name).items())
        name = f.name + (f" (also {', '.join(f.aliases)})" if f.aliases else "")
        table.add_row(name, f.label, f.kind.value, extra, cols, f.kind_reason)
    return table


def _show_tr(tr: TR) -> None:
    console.print(f"[bold]{tr.id}[/bold] {tr.name}  ({tr.category} > {tr.subcategory})")
    console.print(
        f"{tr.method} {tr.path}   transport={tr.transport}   paper trading: "
        f"{'supported' if tr.paper_supported else 'not supported'}"
        + ("   [red]ORDER TR: refused by this project[/red]" if tr.is_order else "")
    )
    req = Table(title="request")
    for col in ("field", "label", "required", "length", "allowed / description"):
        req.add_column(col, overflow="fold")
    for r in tr.request:
        allowed = ", ".join(f"{k}={v}" for k, v in r.get("allowed", {}).items()) or r["description"]
        req.add_row(r["name"], r["label"], "Y" if r["required"] else "", str(r["length"] or ""), allowed)
    console.print(req)
    if tr.main:
        console.print(_field_table(f"list {tr.main.key!r} ({tr.main.label}): one row each", tr.main.items))
    if tr.response:
        console.print(_field_table("scalars (broadcast as columns)", tr.response))
    if tr.example_broken:
        console.print(f"[yellow]response example broken in the reference:[/yellow] {tr.example_broken}")


def _show_realtime(rt: schemas.RealtimeType) -> None:
    console.print(f"[bold]realtime {rt.code}[/bold] {rt.name}")
    console.print(_field_table("FIDs", rt.fields))


@app.command("sim")
def sim_cmd(
    port: Annotated[int, typer.Option(help="TCP port on loopback")] = 8123,
    host: Annotated[str, typer.Option(help="address to bind; keep it loopback")] = "127.0.0.1",
    rate: Annotated[float, typer.Option(help="TR requests per second per app key; 0 turns limits off")] = 5.0,
    rejection: Annotated[str, typer.Option(help="how rate limits are refused: code (1700) or 429")] = "code",
    token_lifetime: Annotated[float, typer.Option(help="token lifetime in seconds")] = 86_400.0,
    stocks: Annotated[int, typer.Option(help="number of stocks in the universe")] = 300,
    seed: Annotated[int, typer.Option(help="seed of the synthetic market")] = 7,
    error_rate: Annotated[float, typer.Option(help="fault: share of requests answered HTTP 500")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="fault: share of connections dropped mid-response")] = 0.0,
    malformed_rate: Annotated[float, typer.Option(help="fault: share of truncated JSON bodies")] = 0.0,
    latency: Annotated[float, typer.Option(help="fault: seconds added to every response")] = 0.0,
    per_tr_rate: Annotated[
        float, typer.Option(help="requests per second per TR and app key, sustained (live: about 1); 0: off")
    ] = 0.0,
    per_tr_burst: Annotated[
        float, typer.Option(help="requests per TR allowed at once (with --per-tr-rate)")
    ] = 2.0,
    ws_mode: Annotated[
        str,
        typer.Option(
            help="WebSocket clock: clock (the market's real KST time), replay (--ws-day at --ws-speed x "
            "from --ws-from, starting at the first REG) or load (the day's entries as fast as read)"
        ),
    ] = "clock",
    ws_day: Annotated[
        str | None, typer.Option(help="replay/load: day YYYY-MM-DD (default: the last trading day)")
    ] = None,
    ws_from: Annotated[str, typer.Option(help="replay: market time HH:MM the replay starts at")] = "09:00",
    ws_speed: Annotated[float, typer.Option(help="replay: market seconds per real second")] = 60.0,
    ws_per_frame: Annotated[int, typer.Option(help="WebSocket: at most this many trades a REAL frame")] = 20,
    ws_ping_interval: Annotated[float, typer.Option(help="WebSocket: seconds between PINGs")] = 20.0,
    ws_ping_timeout: Annotated[
        float, typer.Option(help="WebSocket: seconds to echo a PING before SYSTEM R10002 and close")
    ] = 10.0,
    ws_login_timeout: Annotated[
        float, typer.Option(help="WebSocket: seconds to send LOGIN before SYSTEM R10004 and close")
    ] = 10.0,
    ws_drop_rate: Annotated[
        float, typer.Option(help="WebSocket fault: chance per REAL frame of dropping the connection")
    ] = 0.0,
) -> None:
    """Serve the Kiwoom-compatible simulator until interrupted: REST, and the realtime WebSocket at
    /api/dostk/websocket on the same port (0B/0D from the same market as the tick chart ka10079).

    More WebSocket faults at run time: POST /_sim/ws {"faults": {"drop_after": N, "drops": 1,
    "refuse_logins": 1, "handshake_closes": 1, "ping_delay": 5, "malformed": 1, "takeovers": 1}};
    GET /_sim/ws shows what each connection was sent.
    """
    from datetime import date, time, timedelta

    from simulator.app import Faults, SimConfig
    from simulator.server import serve
    from simulator.ws_feed import WsConfig

    if rejection not in ("code", "429"):
        raise typer.BadParameter("use code or 429", param_hint="--rejection")
    if ws_mode not in ("clock", "replay", "load"):
        raise typer.BadParameter("use clock, replay or load", param_hint="--ws-mode")
    try:
        replay_day = date.fromisoformat(ws_day) if ws_day else None
        replay_from = time.fromisoformat(ws_from)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ws-day/--ws-from") from None
    ws = WsConfig(
        ping_interval=ws_ping_interval,
        ping_timeout=ws_ping_timeout,
        login_timeout=ws_login_timeout,
        mode=ws_mode,
        replay_day=replay_day,
        replay_from=replay_from,
        speed=ws_speed,
        entries_per_frame=ws_per_frame,
        drop_rate=ws_drop_rate,
    )
    config = SimConfig(
        seed=seed,
        n_stocks=stocks,
        rate_limit=rate or None,
        per_api_limit=per_tr_rate or None,
        per_api_burst=per_tr_burst,
        rejection=rejection,
        token_lifetime=timedelta(seconds=token_lifetime),
        faults=Faults(
            error_rate=error_rate, drop_rate=drop_rate, malformed_rate=malformed_rate, latency=latency
        ),
        ws=ws,
    )
    _check_port(host, port)
    console.print(f"Kiwoom simulator on http://{host}:{port} (rate {rate or 'unlimited'}/s, seed {seed})")
    console.print(f"realtime on ws://{host}:{port}/api/dostk/websocket ({ws_mode})")
    serve(config, host=host, port=port)


def _check_port(host: str, port: int) -> None:
    """A port already taken is one line, before the banner (uvicorn would fail after it)."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            message = f"cannot serve on {host}:{port}: {reason} (another kwh sim?); pick another --port"
            raise lake_cmds.fail(message, 2) from None


@app.command()
def demo(
    warehouse: Annotated[str | None, typer.Option("--warehouse", "-w", help="lake folder")] = None,
    port: Annotated[int, typer.Option(help="simulator port (default: a free one)")] = 0,
) -> None:
    """The batch pipeline end to end against the simulator: universe, backfills, status and a query."""
    from pathlib import Path

    from flows.demo import run_demo
    from simulator.server import free_port

    raise typer.Exit(run_demo(Path(warehouse) if warehouse else None, port or free_port()))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
