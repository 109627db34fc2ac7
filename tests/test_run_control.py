"""Starting, stopping and sharing a run, as a user does it: ``kwh`` in real processes.

The simulator (``kwh sim``, 0.2 s added to every answer so a fetch takes a while) and
``kwh backfill`` run as child processes in their own sessions (tests/_flow_procs.py);
nothing is mocked. Ctrl-C is SIGINT to the command's process group, as a terminal
sends it; a kill is SIGKILL to the command's process alone, as ``kill -9 PID`` does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from simulator.market import Market
from simulator.server import free_port
from simulator.universe import Universe
from warehouse import Warehouse, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flow_procs import KWH, Proc, clean_env, get_json, start_sim, wait_http

SEED, STOCKS = 7, 40
SYMBOLS = ",".join(s.code for s in Universe.default(STOCKS, SEED).stocks[:30])
LAST_THREE = ",".join(SYMBOLS.split(",")[-3:])
WINDOW = ["--start", "2012-01-02", "--end", "2025-12-30"]  # ~6 pages of 600 rows a symbol
STARTUP = 60.0  # a command's start on a loaded 2-core machine, generously


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run-control-sim")
    proc, url = start_sim(tmp, clean_env(tmp), STOCKS, SEED, "--latency", "0.2")
    try:
        assert wait_http(f"{url}/_sim/stats", proc, STARTUP), proc.output()
        yield url
    finally:
        proc.kill()


def backfill(
    tmp: Path, name: str, url: str, *extra: str, symbols: str = SYMBOLS, python: list[str] = KWH
) -> Proc:
    argv = [*python, "backfill", "-d", "stock_bars_daily", "--symbols", symbols, *WINDOW,
            "--base-url", url, "--warehouse", str(tmp / "lake"), *extra]  # fmt: skip
    return Proc(tmp, name, argv, clean_env(tmp))


def served(url: str) -> int:
    return int(get_json(f"{url}/_sim/stats").get("requests", 0))


def wait_for_requests(url: str, proc: Proc, more_than: int, timeout: float = STARTUP) -> None:
    """Until the simulator served ``more_than`` requests beyond now (the command is fetching)."""
    start = served(url)
    deadline = time.monotonic() + timeout
    while served(url) <= start + more_than:
        assert proc.alive(), proc.output()
        assert time.monotonic() < deadline, f"{proc.name} did not fetch:\n{proc.output()[-2000:]}"
        time.sleep(0.1)


def latest_run(lake: Path) -> tuple[str, str]:
    """(run_id, status as `kwh status` shows it)."""
    with Warehouse(warehouse=lake) as wh:
        runs = wh.runs(1)
    return runs["run_id"][0], runs["status"][0]


def group_members(pgid: int) -> list[int]:
    """Processes (zombies aside) whose process group is ``pgid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_bytes()
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != b"Z":
                out.append(int(entry.name))
    return out


def assert_whole(lake: Path) -> None:
    """Every covered span holds exactly the market's bars, and no row lies outside coverage."""
    market = Market(Universe.default(STOCKS, SEED), SEED)
    with Warehouse(warehouse=lake) as wh:
        coverage = wh.coverage("stock_bars_daily")
        bars = wh.sql("SELECT symbol, date FROM stock_bars_daily")
    expected = 0
    for symbol, lo, hi in coverage.select("symbol", "start_date", "end_date").iter_rows():
        have = bars.filter((pl.col("symbol") == symbol) & pl.col("date").is_between(lo, hi)).height
        assert have == len(market.daily(symbol, lo, hi)), (symbol, lo, hi, have)
        expected += have
    assert bars.height == expected  # nothing written that coverage does not account for


def test_ctrl_c_during_a_fetch_stops_within_3_s_and_marks_the_run_interrupted(sim, tmp_path):
    proc = backfill(tmp_path, "backfill", sim)
    wait_for_requests(sim, proc, 20)
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    code = proc.wait(timeout=30)
    took = time.monotonic() - sent
    out = proc.output()
    assert code == 130, out
    assert took < 3.0, f"{took:.1f} s after Ctrl-C:\n{out}"
    assert "interrupted" in out and "Traceback" not in out, out
    _, status = latest_run(tmp_path / "lake")
    assert status == "interrupted"
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        assert wh.sql("SELECT count(*) AS n FROM stock_bars_daily")["n"][0] > 0  # something was committed
    assert_whole(tmp_path / "lake")


def test_sigkill_leaves_no_child_and_the_run_reads_interrupted(sim, tmp_path):
    """In-process: no child at all; `kwh status` shows the killed run interrupted."""
    proc = backfill(tmp_path, "backfill", sim)
    wait_for_requests(sim, proc, 10)
    os.kill(proc.pid, signal.SIGKILL)
    proc.proc.wait(timeout=30)
    assert group_members(proc.pid) == []
    status = Proc(
        tmp_path, "status", [*KWH, "status", "--warehouse", str(tmp_path / "lake")], clean_env(tmp_path)
    )
    assert status.wait(timeout=STARTUP) == 0, status.output()
    assert "interrupted" in status.output() and "running" not in status.output(), status.output()
    assert_whole(tmp_path / "lake")


@pytest.mark.slow
def test_sigkill_under_prefect_takes_its_api_server_down_too(sim, tmp_path):
    proc = backfill(tmp_path, "backfill", sim, "--prefect")
    wait_for_requests(sim, proc, 10, timeout=240)  # the Prefect API server starts first
    assert len(group_members(proc.pid)) >= 2, "the API server child is running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert group_members(proc.pid) == [], "a child outlived the killed kwh"
    assert latest_run(tmp_path / "lake")[1] == "interrupted"


def test_an_unreachable_host_fails_at_once_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    probe = Proc(tmp_path, "help", [*KWH, "backfill", "--help"], clean_env(tmp_path))
    assert probe.wait(timeout=STARTUP) == 0
    startup = probe.seconds()
    proc = backfill(tmp_path, "backfill", url, symbols="005930")
    code = proc.wait(timeout=STARTUP)
    out = " ".join(proc.output().split())
    assert code == 1, out
    assert url in out and "cannot reach" in out and "--base-url" in out, out
    assert proc.seconds() < startup + 5.0, f"{proc.seconds():.1f} s (start-up {startup:.1f} s)"
    assert "errors 0" not in out


def test_a_rerun_with_nothing_to_fetch_never_imports_prefect(sim, tmp_path):
    first = backfill(tmp_path, "first", sim, symbols="005930")
    assert first.wait(timeout=240) == 0, first.output()
    before = served(sim)
    again = backfill(
        tmp_path,
        "again",
        sim,
        symbols="005930",
        python=[sys.executable, "-X", "importtime", "-m", "flows.cli"],
    )
    assert again.wait(timeout=STARTUP) == 0, again.output()
    out = again.output()
    assert "requests 0, pages 0" in out
    imported = [line for line in out.splitlines() if line.startswith("import time:")]
    assert imported and not [line for line in imported if "prefect" in line.split("|")[-1]]
    assert served(sim) == before


def test_a_second_run_on_the_lake_refuses_or_waits_for_the_first(sim, tmp_path):
    first = backfill(tmp_path, "first", sim)
    wait_for_requests(sim, first, 10)
    # both start while the first fetches (one start-up's wait, not two); the lease is the lake's,
    # whatever the symbols: the waiter asks for three, so it is quick once let in
    second = backfill(tmp_path, "second", sim)
    third = backfill(tmp_path, "third", sim, "--wait", symbols=LAST_THREE)
    assert second.wait(timeout=STARTUP) == 75, second.output()
    out = " ".join(second.output().split())
    assert "another backfill run" in out and "--wait" in out, out
    deadline = time.monotonic() + STARTUP
    while "waiting for it to finish" not in " ".join(third.output().split()):
        assert third.alive() and time.monotonic() < deadline, third.output()
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGINT)
    assert first.wait(timeout=30) == 130, first.output()
    assert third.wait(timeout=240) == 0, third.output()  # then it ran
    with connect(warehouse=tmp_path / "lake") as con:
        statuses = dict(con.sql("SELECT status, count(*) FROM meta.runs GROUP BY 1").fetchall())
    assert statuses == {"interrupted": 1, "ok": 1}  # the refused run never opened a row
    assert_whole(tmp_path / "lake")
