"""Healing stream gaps from the tick chart, against the simulator over loopback.

A replayed day of 0B trades is streamed for real (the realtime session), windows
are cut out of it as gaps, and the heal must put back exactly the trades cut:
same keys (cumulative volume as FID 13 would have shown), times, prices and
sizes, so that each symbol-day's sizes sum to the daily bar's volume (ka10081
through the batch ingest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

import schemas
from connectors import KiwoomClient, RateLimiter, RateLimits, RawFrame, RealtimeSession, Settings
from flows.heal import HealError, heal_gaps
from flows.heal_cmds import register
from flows.ingest import plan, run_job
from flows.verify import VERIFY_SCHEMA, verify
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.ws_feed import WsConfig
from warehouse import Commit, Rows, Run, StreamGap, Warehouse
from warehouse.stream_datasets import trade_rows

DAY = date(2025, 12, 29)
AFTER = datetime(2025, 12, 29, 18, 0, tzinfo=KST)
LATE, EARLY, LIAR = "005930", "000660", "035420"  # anchor path, whole day, anchor that lies
CODES = (LATE, EARLY, LIAR)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(DAY, time(hh, mm, ss), KST)


@dataclass(frozen=True)
class Day:
    srv: SimServer
    trades: pl.DataFrame  # every streamed trade of the day, as stock_trades rows
    moved: tuple[datetime, datetime]  # LIAR's trade moved into the next trade's second, on both wires


class SameSecond(httpx.AsyncBaseTransport):
    """The simulator's ka10079 for LIAR with one trade's time moved into the next trade's second.

    The simulated market never has two trades in one second; a real one does, and
    that is when an anchor can lie (the stream lost the second's last trade only).
    """

    def __init__(self, moved: tuple[datetime, datetime]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.old, self.new = (f"{t:%Y%m%d%H%M%S}".encode() for t in moved)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.headers.get("api-id") != "ka10079" or LIAR.encode() not in request.content:
            return response
        body = (await response.aread()).replace(self.old, self.new)
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


def settings(srv: SimServer, tmp: Path) -> Settings:
    return Settings.load(base_url=srv.base_url, env={}, env_file=None, token_cache=tmp / "tokens")


async def stream_day(srv: SimServer, tmp: Path, entries: int) -> list[RawFrame]:
    frames: list[RawFrame] = []
    got = 0
    async with RealtimeSession(settings(srv, tmp)) as rt:
        await rt.subscribe(list(CODES), ["0B"])
        async with asyncio.timeout(60):
            async for ev in rt:
                assert isinstance(ev, RawFrame) and ev.trnm == "REAL", ev
                frames.append(ev)
                got += ev.entries
                if got >= entries:
                    break
    return frames


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Iterator[Day]:
    ws = WsConfig(mode="replay", replay_day=DAY, speed=8000, step=0.02, ping_interval=1.0)
    sim = Simulator(SimConfig(rate_limit=None, clock=lambda: AFTER, ws=ws))
    total = sum(len(sim.market.ticks(c, DAY)) for c in CODES)
    with SimServer(sim) as srv:
        frames = asyncio.run(stream_day(srv, tmp_path_factory.mktemp("ws"), total))
        typed = schemas.normalize_realtime([f.data for f in frames], seqs=[f.seq for f in frames], day=DAY)[
            "0B"
        ]
        trades = trade_rows(
            typed.with_columns(log_seq=pl.col("seq"), received_ns=pl.lit(1_767_000_000 * 10**9))
        )
        assert trades.height == total
        first, second = trades.filter(is_liar(at(13, 0))).sort("cum_volume")["ts"].head(2)
        together = pl.when(is_liar(first) & (pl.col("ts") == first)).then(pl.lit(second))
        yield Day(srv, trades.with_columns(ts=together.otherwise("ts")), (first, second))


def is_liar(since: datetime) -> pl.Expr:
    return (pl.col("symbol") == LIAR) & (pl.col("ts") >= since)


def client(d: Day, tmp: Path) -> KiwoomClient:
    limiter = RateLimiter(RateLimits(total=None))
    return KiwoomClient(settings(d.srv, tmp), limiter=limiter, transport=SameSecond(d.moved))


def cut(trades: pl.DataFrame, code: str, start: datetime, end: datetime) -> pl.Expr:
    return (pl.col("symbol") == code) & pl.col("ts").is_between(start, end, closed="left")


def gaps_of(windows: dict[str, list[tuple[datetime, datetime]]]) -> list[StreamGap]:
    return [StreamGap("realtime", c, s, e, "disconnected") for c, ws in windows.items() for s, e in ws]


def liar_window(d: Day) -> tuple[datetime, datetime, pl.Expr]:
    """A gap whose anchor second has two trades, and the last of them lost without a gap record."""
    busy = d.moved[1]
    start = busy + timedelta(seconds=6)  # the anchor: the last streamed second 5 s before the gap
    lost = d.trades.filter(is_liar(busy) & (pl.col("ts") == busy))["cum_volume"].max()
    return start, start + timedelta(minutes=10), (pl.col("symbol") == LIAR) & (pl.col("cum_volume") == lost)


@dataclass
class Lake:
    wh: Warehouse
    kept: pl.DataFrame  # the streamed rows stored
    dropped: pl.DataFrame  # the trades the stream "lost"
    gaps: list[StreamGap]


def build_lake(d: Day, root: Path, liar: bool = True) -> Lake:
    windows = {
        LATE: [(at(13, 0), at(13, 20)), (at(14, 30), at(14, 35))],
        EARLY: [(at(8, 50), at(9, 20))],
    }
    lost = pl.lit(False)
    trades = d.trades
    if liar:
        start, end, unreported = liar_window(d)
        windows[LIAR] = [(start, end)]
        lost = unreported
    else:
        trades = trades.filter(pl.col("symbol") != LIAR)
    for code, spans in windows.items():
        for s, e in spans:
            lost = lost | cut(trades, code, s, e)
    wh = Warehouse(warehouse=root)
    gaps = gaps_of(windows)
    kept, dropped = trades.filter(~lost), trades.filter(lost)
    wh.commit(Commit(Run.new("stream"), rows=[Rows("stock_trades", kept, replace=False)], gaps=gaps))
    return Lake(wh, kept, dropped, gaps)


async def daily_bars(d: Day, wh: Warehouse, tmp: Path) -> None:
    run = Run.new("daily")
    async with client(d, tmp) as kw:
        for job in plan(wh, "stock_bars_daily", list(CODES), DAY, DAY, now=AFTER):
            await run_job(kw, wh, job, run, now=AFTER)


async def heal(d: Day, wh: Warehouse, tmp: Path):
    async with client(d, tmp) as kw:
        return await heal_gaps(kw, wh, DAY, now=AFTER)


def stored(wh: Warehouse) -> pl.DataFrame:
    return wh.read("stock_trades", start=DAY, end=DAY).sort("symbol", "cum_volume")


@pytest.fixture
def lake(day: Day, tmp_path: Path) -> Iterator[Lake]:
    lk = build_lake(day, tmp_path / "lake")
    asyncio.run(daily_bars(day, lk.wh, tmp_path))
    with lk.wh:
        yield lk


def test_heal_puts_back_exactly_the_trades_the_stream_lost(day, lake, tmp_path):
    before = stored(lake.wh)
    result = asyncio.run(heal(day, lake.wh, tmp_path))
    by = {s.code: s for s in result.symbols}
    assert set(by) == set(CODES)
    dropped = {c: lake.dropped.filter(pl.col("symbol") == c).height for c in CODES}
    assert {c: s.inserted for c, s in by.items()} == dropped and all(dropped.values())
    # the late gaps need one page from an anchor; the early gap the whole day; the lying anchor
    # (a trade lost without a gap record) is caught and paging goes on to the day's first tick
    assert (by[LATE].whole_day, by[LATE].pages) == (False, 1)
    assert (by[EARLY].whole_day, by[EARLY].pages) == (True, 2)
    assert (by[LIAR].whole_day, by[LIAR].pages) == (True, 2)
    assert {c: s.healed for c, s in by.items()} == {LATE: 2, EARLY: 1, LIAR: 1}

    after = stored(lake.wh)
    healed = after.filter(pl.col("source") == "heal")
    # the healed rows are the lost trades: same keys, times, prices and sizes
    cols = ["symbol", "venue", "date", "cum_volume", "ts", "price", "size", "change"]
    assert healed.select(cols).equals(lake.dropped.sort("symbol", "cum_volume").select(cols))
    assert (healed["side"] == 0).all() and healed["log_seq"].is_null().all()
    assert healed["received_at"].is_null().all()
    # streamed rows untouched; no key twice; each symbol-day sums to its daily bar
    assert after.filter(pl.col("source") == "stream").equals(before)
    assert not after.select("symbol", "venue", "date", "cum_volume").is_duplicated().any()
    sums = dict(after.group_by("symbol").agg(pl.col("size").sum()).iter_rows())
    bars = lake.wh.read("stock_bars_daily", symbols=list(CODES), start=DAY, end=DAY)
    assert sums == dict(bars.select("symbol", "volume").iter_rows())
    assert lake.wh.stream_gaps(DAY)["healed_run"].is_not_null().all()


def test_verify_says_missing_before_the_heal_and_ok_after(day, lake, tmp_path):
    first = verify(lake.wh, DAY)
    assert first.schema == VERIFY_SCHEMA
    assert first["symbol"].to_list() == sorted(CODES)
    assert set(first["status"]) == {"missing trades"}
    assert first["unhealed"].to_list() == [1, 2, 1] and (first["healed"] == 0).all()
    dropped = dict(lake.dropped.group_by("symbol").agg(pl.col("size").sum()).iter_rows())
    assert dict(first.select("symbol", "difference").iter_rows()) == dropped
    asyncio.run(heal(day, lake.wh, tmp_path))
    second = verify(lake.wh, DAY)
    assert set(second["status"]) == {"ok"}
    assert (second["difference"] == 0).all() and (second["unhealed"] == 0).all()
    assert (second["volume"] == second["last_cum_volume"]).all()
    assert second["healed"].sum() == lake.dropped.height


def test_a_second_heal_changes_nothing_even_with_the_gaps_recorded_again(day, lake, tmp_path):
    asyncio.run(heal(day, lake.wh, tmp_path))
    once = stored(lake.wh)
    again = asyncio.run(heal(day, lake.wh, tmp_path))
    assert again.symbols == [] and again.rows == 0  # no unhealed gaps: nothing fetched
    # the same gaps recorded anew (unhealed): the anti-join finds nothing missing
    lake.wh.commit(Commit(Run.new("stream"), gaps=lake.gaps))
    assert lake.wh.stream_gaps(DAY)["healed_run"].is_null().all()
    third = asyncio.run(heal(day, lake.wh, tmp_path))
    assert third.rows == 0 and {s.healed for s in third.symbols} == {1, 2}
    assert stored(lake.wh).drop("run_id").equals(once.drop("run_id"))
    assert set(verify(lake.wh, DAY)["status"]) == {"ok"}


def test_an_open_gap_is_healed_only_once_the_day_is_final(day, lake, tmp_path):
    lake.wh.commit(Commit(Run.new("stream"), gaps=[StreamGap("realtime", LATE, at(15, 0), None, "stopped")]))

    async def at_close() -> None:
        async with client(day, tmp_path) as kw:
            result = await heal_gaps(kw, lake.wh, DAY, symbols=[LATE], now=at(15, 45))
        assert result.symbols[0].healed == 2  # the closed gaps; the open one waits for the evening

    asyncio.run(at_close())
    open_ = lake.wh.stream_gaps(DAY).filter(pl.col("healed_run").is_null() & (pl.col("symbol") == LATE))
    assert open_["start_ts"].to_list() == [at(15, 0)]
    assert verify(lake.wh, DAY).filter(pl.col("symbol") == LATE)["status"].item() == "unhealed gaps"
    asyncio.run(heal(day, lake.wh, tmp_path))
    assert lake.wh.stream_gaps(DAY)["healed_run"].is_not_null().all()


def test_stored_trades_the_tick_chart_cannot_explain_leave_that_symbol_alone_and_fail_the_run(
    day, lake, tmp_path
):
    mine = lake.kept.filter(pl.col("symbol") == EARLY)
    wrong = mine.slice(mine.height // 2, 1).with_columns(cum_volume=pl.col("cum_volume") + 1)
    assert wrong.join(mine, on="cum_volume", how="semi").is_empty()
    lake.wh.commit(Commit(Run.new("stream"), rows=[Rows("stock_trades", wrong, replace=False)]))
    before = stored(lake.wh)
    with pytest.raises(
        HealError, match=f"1 symbol.* not healed: {EARLY} {DAY}: 1 stored trades match no tick"
    ) as e:
        asyncio.run(heal(day, lake.wh, tmp_path))
    assert stored(lake.wh).filter(pl.col("symbol") == EARLY).equals(before.filter(pl.col("symbol") == EARLY))
    table = verify(lake.wh, DAY)
    assert dict(table.select("symbol", "status").iter_rows()) == {
        EARLY: "missing trades",
        LATE: "ok",
        LIAR: "ok",
    }
    assert (
        e.value.result is not None
        and e.value.result.rows == lake.dropped.filter(pl.col("symbol") != EARLY).height
    )
    assert lake.wh.runs(1).select("flow", "status").row(0) == ("heal", "failed")


def test_a_day_the_tick_chart_no_longer_serves_is_skipped_after_one_page(day, tmp_path):
    lk = build_lake(day, tmp_path / "lake", liar=False)
    next_day = AFTER + timedelta(days=1)
    later = Simulator(SimConfig(rate_limit=None, clock=lambda: next_day))

    async def go(srv: SimServer):
        async with KiwoomClient(settings(srv, tmp_path), limiter=RateLimiter(RateLimits(total=None))) as kw:
            return await heal_gaps(kw, lk.wh, DAY, now=next_day)

    with SimServer(later) as srv, lk.wh:
        result = asyncio.run(go(srv))
        assert {s.code: (s.pages, s.inserted, s.healed) for s in result.symbols} == {
            LATE: (1, 0, 0),
            EARLY: (1, 0, 0),
        }
        assert all("now serves 2025-12-30" in (s.skipped or "") for s in result.symbols)
        assert lk.wh.stream_gaps(DAY)["healed_run"].is_null().all()
        assert stored(lk.wh).height == lk.kept.height


def test_verify_flags_a_symbol_without_a_daily_bar(day, tmp_path):
    lk = build_lake(day, tmp_path / "bare")
    with lk.wh:
        table = verify(lk.wh, DAY)
    assert set(table["status"]) == {"no daily bar"} and table["daily_volume"].is_null().all()


def test_the_daily_flow_heals_todays_gaps_and_reports_the_rows(day, tmp_path):
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import daily

    lk = build_lake(day, tmp_path / "lake", liar=False)  # the flow's client talks to the plain simulator
    lk.wh.close()
    with prefect_test_harness(server_startup_timeout=120):
        result = daily(
            datasets=["stock_bars_daily"],
            symbols=[LATE, EARLY],
            lookback_days=3,
            base_url=day.srv.base_url,
            warehouse=str(lk.wh.config.root),
            now=AFTER,
        )
    assert result["status"] == "ok", result
    assert result["healed"]["rows"] == result["rows"]["stock_trades"] == lk.dropped.height
    assert result["healed"]["gaps_healed"] == 3 and result["rows"]["stock_bars_daily"] >= 2
    with Warehouse(warehouse=lk.wh.config.root) as wh:
        table = verify(wh, DAY)
        assert dict(table.select("symbol", "status").iter_rows()) == {LATE: "ok", EARLY: "ok"}
        assert set(wh.read("stock_trades").filter(pl.col("source") == "heal")["run_id"]) == {result["run_id"]}


# --------------------------------------------------------------------------- the command line


def cli() -> typer.Typer:
    app, stream_app = typer.Typer(), typer.Typer()

    @stream_app.callback()
    def group() -> None:
        """The lead's ``kwh stream`` group stands in here."""

    register(stream_app)
    app.add_typer(stream_app, name="stream")
    return app


def test_stream_verify_exits_1_before_the_heal_0_after_and_2_on_bad_input(day, lake, tmp_path):
    runner, app = CliRunner(), cli()
    root = str(lake.wh.config.root)
    lake.wh.close()  # the command opens its own connection
    before = runner.invoke(app, ["stream", "verify", str(DAY), "-w", root], env={"COLUMNS": "200"})
    assert before.exit_code == 1, before.output
    assert "3 of 3 symbols do not reconcile" in before.output and "missing trades" in before.output
    asyncio.run(heal(day, lake.wh, tmp_path))
    lake.wh.close()
    after = runner.invoke(app, ["stream", "verify", str(DAY), "-w", root], env={"COLUMNS": "200"})
    assert after.exit_code == 0, after.output
    assert "all 3 symbols reconcile" in after.output and LIAR in after.output
    empty = runner.invoke(app, ["stream", "verify", "2025-12-30", "-w", root])
    assert empty.exit_code == 1 and "nothing to reconcile" in empty.output
    bad = runner.invoke(app, ["stream", "verify", "2025-13-01", "-w", root])
    assert bad.exit_code == 2 and bad.output.strip() == "error: '2025-13-01' is not a date (YYYY-MM-DD)"
    missing = runner.invoke(app, ["stream", "verify", str(DAY), "-w", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no warehouse at" in missing.output
