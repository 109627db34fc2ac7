"""The streaming worker against the simulator's replayed session: log first, commit exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import polars as pl
import pytest

from connectors import RealtimeSession, RetryPolicy, Settings
from flows.stream import StreamConfig, log_folder, run_stream
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.ws_feed import WsConfig
from warehouse import Run, Warehouse, connect
from warehouse.stream_commit import StreamCommitter, gap_record
from warehouse.ticklog import TickLog, TornTailWarning, read_records

DAY = date(2025, 12, 29)
EVENING = datetime(2025, 12, 29, 20, 0, tzinfo=KST)


def make_server(**ws: Any) -> SimServer:
    cfg = WsConfig(**{"mode": "replay", "replay_day": DAY, "speed": 600, "step": 0.05, **ws})
    return SimServer(Simulator(SimConfig(rate_limit=None, clock=lambda: EVENING, ws=cfg)))


def settings(srv: SimServer, tmp_path: Path) -> Settings:
    return Settings.load(
        base_url=srv.base_url, env={}, env_file=None, token_cache=tmp_path / "tokens", backoff_base=0.02
    )


def stream_for(
    srv: SimServer, tmp_path: Path, symbols: list[str], seconds: float, entries: int = 300, **cfg: Any
) -> Any:
    """Run the worker for ``seconds`` and until the session has ``entries`` entries (a loaded machine
    starts the simulator's feed slowly; at most 120 s), then stop it gracefully; its summary."""

    async def go() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(120, stop.set)

        def progress(summary: Any) -> None:
            if loop.time() - started >= seconds and summary.session.get("entries", 0) >= entries:
                stop.set()

        s = settings(srv, tmp_path)
        session = RealtimeSession(s, retry=RetryPolicy(0.02, 0.1, 20))
        with Warehouse(warehouse=tmp_path / "lake") as wh:
            return await run_stream(
                s,
                wh,
                StreamConfig(symbols, day=DAY, commit_interval=0.1, **cfg),
                stop=stop,
                session=session,
                progress=progress,
            )

    return asyncio.run(go())


def sent(srv: SimServer) -> dict[str, dict[str, int]]:
    """Entries the simulator sent, per item and type, over every connection."""
    out: dict[str, dict[str, int]] = {}
    for conn in httpx.get(srv.base_url + "/_sim/ws").json()["connections"]:
        for item, kinds in conn["sent"].items():
            for kind, n in kinds.items():
                out.setdefault(item, {}).setdefault(kind, 0)
                out[item][kind] += n
    return out


def logged(tmp_path: Path) -> dict[str, dict[str, int]]:
    """Entries that reached the worker's log, per item and type (frames still in the socket at the
    stop never did: the simulator's sent counters are an upper bound)."""
    out: dict[str, dict[str, int]] = {}
    for rec in read_records(tmp_path / "lake" / "stream" / "realtime"):
        body = orjson.loads(rec.payload)
        for entry in body.get("data", ()):
            out.setdefault(entry["item"], {}).setdefault(entry["type"], 0)
            out[entry["item"]][entry["type"]] += 1
    return out


def counts(lake: Path, table: str) -> dict[str, int]:
    con = connect(read_only=True, warehouse=lake)
    rows = con.execute(f"SELECT symbol, count(*) FROM {table} GROUP BY 1").fetchall()
    con.close()
    return dict(rows)


def test_everything_the_simulator_sent_is_stored_once_and_matches_the_tick_chart(tmp_path):
    with make_server() as srv:
        codes = [s.code for s in srv.sim.market.universe.stocks[:5]]
        summary = stream_for(srv, tmp_path, codes, 6.0)
        assert summary.status == "completed", summary.error
        upper = sent(srv)
        ticks = {c: srv.sim.market.ticks(c, DAY) for c in codes}
    by_item = logged(tmp_path)
    assert all(by_item[c][t] <= upper[c][t] for c in codes for t in ("0B", "0D"))
    assert sum(by_item[c]["0B"] for c in codes) > 100, "the stream ran"
    assert counts(tmp_path / "lake", "stock_trades") == {c: by_item[c]["0B"] for c in codes}
    assert counts(tmp_path / "lake", "stock_orderbook") == {c: by_item[c]["0D"] for c in codes}
    con = connect(read_only=True, warehouse=tmp_path / "lake")
    for code in codes:
        trades = con.execute(
            "SELECT ts, price, size, cum_volume FROM stock_trades WHERE symbol = ? ORDER BY cum_volume",
            [code],
        ).pl()
        expected = ticks[code][: trades.height]
        assert trades["price"].to_list() == [round(t.close) for t in expected]
        assert trades["size"].to_list() == [t.volume for t in expected]
        assert trades["cum_volume"].to_list() == list(pl.Series([t.volume for t in expected]).cum_sum())
        assert all(ts.date() == DAY for ts in trades["ts"])
    positions = con.execute("SELECT count(*) FROM meta.stream_positions").fetchone()
    # at the stop the day was rewritten sorted: one file, in symbol and time order
    files = con.execute("SELECT count(*) FROM ducklake_list_files('lake', 'stock_trades')").fetchone()
    order = con.execute("SELECT symbol, ts FROM stock_trades").fetchall()
    con.close()
    assert positions == (1,)
    assert files == (1,) and order == sorted(order)
    assert summary.committer["rejected"] == 0 and summary.log_lag == 0
    assert summary.session["entries"] == sum(n for kinds in by_item.values() for n in kinds.values())


def _frames(srv: SimServer, tmp_path: Path, n: int) -> list[bytes]:
    """``n`` REAL frames as the session yields them."""

    async def go() -> list[bytes]:
        out: list[bytes] = []
        async with RealtimeSession(settings(srv, tmp_path)) as rt:
            await rt.subscribe([s.code for s in srv.sim.market.universe.stocks[:3]], ["0B", "0D"])
            async for ev in rt:
                if getattr(ev, "trnm", None) == "REAL":
                    out.append(ev.data.encode() if isinstance(ev.data, str) else ev.data)
                    if len(out) == n:
                        return out
        return out

    return asyncio.run(go())


def test_a_restart_commits_what_the_log_holds_once(tmp_path):
    with make_server() as srv:
        frames = _frames(srv, tmp_path, 40)
    folder = tmp_path / "log"
    with TickLog(folder, sync_interval=None) as tl:
        for f in frames:
            tl.append(f, time.time_ns())
        tl.sync()  # the worker died here: logged, nothing committed
    with Warehouse(warehouse=tmp_path / "lake") as wh, TickLog(folder, sync_interval=None) as tl:
        first = StreamCommitter(wh, tl, "rt", Run.new("stream"), day=DAY, max_records=7)
        assert tl.next_seq - first.next_seq == 40, "the whole log is behind the lake"
        assert first.drain() == 40 and first.stats.commits == 6
        assert tl.next_seq - first.next_seq == 0
        trades = wh.sql("SELECT count(*) AS n FROM stock_trades")["n"][0]
        again = StreamCommitter(wh, tl, "rt", Run.new("stream"), day=DAY)
        assert again.drain() == 0
        assert wh.sql("SELECT count(*) AS n FROM stock_trades")["n"][0] == trades
        entries = sum(len(orjson.loads(f)["data"]) for f in frames)
        book = wh.sql("SELECT count(*) AS n FROM stock_orderbook")["n"][0]
    assert trades + book == entries


def test_a_torn_tail_is_replayed_to_the_last_whole_record(tmp_path):
    with make_server() as srv:
        frames = _frames(srv, tmp_path, 10)
    folder = tmp_path / "log"
    with TickLog(folder, sync_interval=None) as tl:
        for f in frames:
            tl.append(f, time.time_ns())
        tl.sync()
    segment = sorted(folder.glob("*.tick"))[-1]
    segment.write_bytes(segment.read_bytes()[:-100])  # the last record cut mid-payload
    with pytest.warns(TornTailWarning, match=r"dropped \d+ bytes"):
        tl = TickLog(folder, sync_interval=None)
    with tl, Warehouse(warehouse=tmp_path / "lake") as wh:
        assert StreamCommitter(wh, tl, "rt", Run.new("stream"), day=DAY).drain() == 9
        stored = wh.sql(
            "SELECT (SELECT count(*) FROM stock_trades) + (SELECT count(*) FROM stock_orderbook) AS n"
        )
    assert stored["n"][0] == sum(len(orjson.loads(f)["data"]) for f in frames[:9])


def test_a_bad_frame_is_rejected_alone_and_kept_for_inspection(tmp_path):
    with make_server() as srv:
        frames = _frames(srv, tmp_path, 6)
    bad = frames[2].replace(b'"0B"', b'"0Z"', 1)  # an unknown realtime type
    folder = tmp_path / "log"
    with TickLog(folder, sync_interval=None) as tl, Warehouse(warehouse=tmp_path / "lake") as wh:
        for f in [*frames[:2], bad, b'{"trnm":"REAL","data":[{"type":"0B"', *frames[3:]]:
            tl.append(f, time.time_ns())
        tl.sync()
        committer = StreamCommitter(wh, tl, "rt", Run.new("stream"), day=DAY)
        assert committer.drain() == 7
        assert committer.stats.rejected == 2
        stored = wh.sql(
            "SELECT (SELECT count(*) FROM stock_trades) + (SELECT count(*) FROM stock_orderbook) AS n"
        )
    good = [*frames[:2], *frames[3:]]
    assert stored["n"][0] == sum(len(orjson.loads(f)["data"]) for f in good)
    rejects = [orjson.loads(line) for line in (folder / "rejected.jsonl").read_bytes().splitlines()]
    assert [r["seq"] for r in rejects] == [2, 3] and all(r["why"] for r in rejects)


def test_gap_records_become_gap_rows_per_symbol_in_the_same_commit(tmp_path):
    folder = tmp_path / "log"
    start, end = 1_766_968_200 * 10**9, 1_766_968_260 * 10**9
    with TickLog(folder, sync_interval=None) as tl, Warehouse(warehouse=tmp_path / "lake") as wh:
        tl.append(gap_record(start, end, "connection lost: 1006", ["005930", "000660"]), end)
        tl.sync()
        StreamCommitter(wh, tl, "rt", Run.new("stream"), day=DAY).drain()
        gaps = wh.stream_gaps(DAY)
        assert wh.stream_position("rt") is not None
    assert gaps["symbol"].to_list() == ["000660", "005930"]
    assert gaps["reason"].unique().to_list() == ["connection lost: 1006"]
    assert gaps["healed_run"].null_count() == 2


def test_a_dropped_connection_is_a_gap_and_the_stream_goes_on(tmp_path):
    with make_server() as srv:
        httpx.post(srv.base_url + "/_sim/ws", json={"faults": {"drop_after": 20, "drops": 1}})
        codes = [s.code for s in srv.sim.market.universe.stocks[:3]]
        summary = stream_for(srv, tmp_path, codes, 5.0)
    by_item = logged(tmp_path)
    assert summary.status == "completed" and summary.session["reconnects"] >= 1
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        gaps = wh.stream_gaps()
    assert set(gaps["symbol"]) == set(codes) and gaps["end_ts"].null_count() == 0
    assert counts(tmp_path / "lake", "stock_trades") == {c: by_item[c]["0B"] for c in codes}


def test_merges_beside_the_commits_lose_and_duplicate_nothing(tmp_path):
    """The worker merges its small files between commits every half second."""
    with make_server() as srv:
        codes = [s.code for s in srv.sim.market.universe.stocks[:5]]
        summary = stream_for(srv, tmp_path, codes, 6.0, merge_every=0.5)
    assert summary.status == "completed", summary.error
    assert summary.merges["merges"] >= 2 and summary.merges["failures"] == 0, summary.merges
    assert summary.merges["files_merged"] > 0
    by_item = logged(tmp_path)
    assert counts(tmp_path / "lake", "stock_trades") == {c: by_item[c]["0B"] for c in codes}
    assert counts(tmp_path / "lake", "stock_orderbook") == {c: by_item[c]["0D"] for c in codes}
    con = connect(read_only=True, warehouse=tmp_path / "lake")
    dupes = con.execute(
        "SELECT count(*) FROM (SELECT symbol, venue, date, cum_volume FROM stock_trades GROUP BY ALL "
        "HAVING count(*) > 1)"
    ).fetchone()
    con.close()
    assert dupes == (0,)


def test_a_failed_merge_is_rolled_back_counted_and_the_stream_goes_on(tmp_path, monkeypatch):
    """A merge that fails halfway through its transaction (here: after deleting the day's trades)
    is rolled back, counted and shown, and the next commits land every entry once."""
    from warehouse import maintenance
    from warehouse.lake import LAKE

    real, calls = maintenance.merge_small_files, []

    def failing(con: Any, tables: Any) -> int:
        calls.append(1)
        if len(calls) > 2:
            return real(con, tables)
        con.execute("BEGIN")
        con.execute(f"DELETE FROM {LAKE}.stock_trades")
        raise duckdb.IOException("No space left on device (test)")

    monkeypatch.setattr(maintenance, "merge_small_files", failing)
    with make_server() as srv:
        codes = [s.code for s in srv.sim.market.universe.stocks[:4]]
        summary = stream_for(srv, tmp_path, codes, 5.0, merge_every=0.5)
    assert summary.status == "completed", summary.error
    assert summary.merges["failures"] == 2 and summary.merges["merges"] >= 1, summary.merges
    assert "No space left on device (test)" in summary.merges["last_error"]
    by_item = logged(tmp_path)
    assert counts(tmp_path / "lake", "stock_trades") == {c: by_item[c]["0B"] for c in codes}
    assert counts(tmp_path / "lake", "stock_orderbook") == {c: by_item[c]["0D"] for c in codes}


READER = """
import sys, time
from pathlib import Path
from warehouse import connect
lake, done, until = Path(sys.argv[1]), Path(sys.argv[2]), time.time() + 180
con = None
while time.time() < until and not done.exists():
    time.sleep(0.02)
    try:
        if con is None:  # a notebook's connection, opened once the worker created the table
            if not (lake / "catalog.sqlite").exists():
                continue
            con = connect(read_only=True, warehouse=lake)
            con.execute("SELECT count(*) FROM stock_trades")
        t0 = time.perf_counter()
        n = con.execute("SELECT count(*) FROM stock_trades").fetchone()[0]
        print(n, round((time.perf_counter() - t0) * 1000), flush=True)
    except Exception as exc:
        print("error", type(exc).__name__, str(exc).splitlines()[0], flush=True)
        con = None
"""


def test_a_reader_is_never_blocked_and_sees_whole_commits(tmp_path):
    """A notebook in another process reads while the worker commits: never blocked, never half a commit."""
    done = tmp_path / "done"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path / "lake"), str(done)], stdout=subprocess.PIPE, text=True
    )
    try:
        with make_server() as srv:
            stream_for(srv, tmp_path, [s.code for s in srv.sim.market.universe.stocks[:5]], 6.0)
    finally:
        done.touch()
        out, _ = reader.communicate(timeout=60)
    lines = [line.split() for line in out.splitlines()]
    counts_seen = [int(parts[0]) for parts in lines if parts[0] != "error"]
    # errors only before the worker's first commit created the table
    first = next((i for i, parts in enumerate(lines) if parts[0] != "error"), len(lines))
    assert all(parts[0] != "error" for parts in lines[first:]), lines[first:][:3]
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        totals = wh.sql(
            "SELECT rows - replaced AS net FROM meta.writes "
            "WHERE dataset = 'stock_trades' ORDER BY committed_at"
        )
    whole = {0, *pl.Series(totals["net"]).cum_sum().to_list()}  # the table's rows after each write
    assert len(set(counts_seen)) >= 3, f"the reader read while the worker wrote: {counts_seen}"
    assert all(n in whole for n in counts_seen), "a reader saw part of a commit"
    assert counts_seen == sorted(counts_seen)
    slowest = max(int(parts[1]) for parts in lines if parts[0] != "error")
    assert slowest < 5_000, f"a read waited {slowest} ms"


def test_log_folder_lives_beside_the_lake(tmp_path):
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        assert log_folder(wh, "realtime") == tmp_path / "lake" / "stream" / "realtime"
