"""One market, two wires: the 0B trades streamed over a replayed session are the day's ka10079 ticks."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import polars as pl
import pytest

import schemas
from connectors import KiwoomClient, Page, RateLimiter, RateLimits, RawFrame, RealtimeSession, Settings
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.ws_feed import WsConfig
from simulator.ws_wire import BOOK, QUOTE, TRADE

DAY = date(2025, 12, 29)
AFTER = datetime(2025, 12, 29, 18, 0, tzinfo=KST)
CODE = "005930"


def test_the_simulators_fid_tables_cover_the_reference_types():
    """The wire tables are the simulator's own; they must still name every FID of 0B/0D."""
    for code, table in (("0B", TRADE), ("0C", QUOTE), ("0D", BOOK)):
        assert [f.fid for f in table if f.fid not in {g.fid for g in table[: table.index(f)]}] == [
            f.fid for f in table
        ]
        assert {f.fid for f in table} == set(schemas.catalog().realtime_type(code).by_fid())


async def rest_ticks(srv: SimServer, tmp_path) -> pl.DataFrame:
    settings = Settings.load(base_url=srv.base_url, env={}, env_file=None, token_cache=tmp_path / "t")
    async with KiwoomClient(settings, limiter=RateLimiter(RateLimits(total=None))) as kw:
        body = {"stk_cd": CODE, "tic_scope": "1", "upd_stkpc_tp": "1", "base_dt": f"{DAY:%Y%m%d}"}
        day = f"{DAY:%Y%m%d}"

        def older(page: Page) -> bool:
            return bool(page.body["stk_tic_chart_qry"][-1]["cntr_tm"] < day)

        pages = [p.raw async for p in kw.pages("ka10079", body, stop=older)]
    ticks = schemas.normalize_pages("ka10079", pages)
    return ticks.filter(pl.col("cntr_tm").dt.date() == DAY).sort("cntr_tm", maintain_order=True)


async def streamed(srv: SimServer, tmp_path, trades: int) -> list[RawFrame]:
    settings = Settings.load(base_url=srv.base_url, env={}, env_file=None, token_cache=tmp_path / "t")
    frames: list[RawFrame] = []
    async with RealtimeSession(settings) as rt:
        await rt.subscribe([CODE], ["0B", "0C", "0D"])
        async with asyncio.timeout(30):
            async for ev in rt:
                assert isinstance(ev, RawFrame) and ev.trnm == "REAL", ev
                frames.append(ev)
                if rt.stats.entries >= 3 * trades:
                    break
    return frames


@pytest.mark.asyncio
async def test_streamed_trades_are_the_days_ticks_and_the_book_brackets_them(tmp_path):
    ws = WsConfig(mode="replay", replay_day=DAY, speed=8000, step=0.02, ping_interval=1.0)
    sim = Simulator(SimConfig(rate_limit=None, clock=lambda: AFTER, ws=ws))
    with SimServer(sim) as srv:
        rest = await rest_ticks(srv, tmp_path)
        assert rest.height > 500
        frames = await streamed(srv, tmp_path, rest.height)
    out = schemas.normalize_realtime(
        [f.data for f in frames],
        seqs=[f.seq for f in frames],
        day=DAY,  # a replayed day: not today
    )
    trades, book = out["0B"], out["0D"]
    assert trades.height == book.height == rest.height
    assert trades.schema == schemas.realtime_schema("0B") and book.schema == schemas.realtime_schema("0D")
    # same times, prices and sizes as the tick chart; cumulative volume is the running sum
    assert trades["ts"].to_list() == rest["cntr_tm"].to_list()
    assert trades["price"].to_list() == rest["cur_prc"].to_list()
    assert trades["size"].to_list() == rest["trde_qty"].to_list()
    assert trades["cum_volume"].to_list() == trades["size"].cum_sum().to_list()
    assert set(trades["item"]) == {CODE} and set(trades["size_side"]) <= {-1, 1}
    # each trade's book: best bid < best ask, the trade at the ask (a buy) or the bid (a sell)
    both = pl.concat([trades.select("price", "size_side", "best_ask", "best_bid"), book], how="horizontal")
    assert (both["bid_px_1"] < both["ask_px_1"]).all()
    buys, sells = both.filter(pl.col("size_side") > 0), both.filter(pl.col("size_side") < 0)
    assert buys["price"].equals(buys["ask_px_1"]) and sells["price"].equals(sells["bid_px_1"])
    assert buys.height and sells.height
    assert (both["best_ask"] == both["ask_px_1"]).all() and (both["best_bid"] == both["bid_px_1"]).all()
    for i in range(1, 10):  # ten levels a tick apart, outward
        assert (both[f"ask_px_{i + 1}"] > both[f"ask_px_{i}"]).all()
        assert (both[f"bid_px_{i + 1}"] < both[f"bid_px_{i}"]).all()
    total = book.select(pl.sum_horizontal(f"ask_qty_{i}" for i in range(1, 11))).to_series()
    assert (book["ask_qty_total"] == total).all()
    assert (book["cum_volume"] == trades["cum_volume"]).all() and (book["time"] == trades["time"]).all()
    quotes = out["0C"]  # the best quotes (0C) are the book's first level
    assert quotes["fid_27"].equals(book["ask_px_1"], check_names=False)
    assert quotes["fid_28"].equals(book["bid_px_1"], check_names=False)
    assert max(len(orjson_entries(f)) for f in frames) > 2  # several entries per frame


def orjson_entries(frame: RawFrame) -> list[object]:
    import orjson

    return orjson.loads(frame.data)["data"]
