"""The deployments of prefect.yaml on a real Prefect server with a process worker.

One server for the module (its own PREFECT_HOME, on loopback), one process work
pool, ``prefect deploy --all`` from the project folder and one process worker
polling every 2 s, shared by every test here:

- the schedules and pool of every deployment; the backfill deployment run against
  the simulator, the rows it landed; the compact deployment on a lake of small files
  and what it recorded;
- the ``stream`` deployment with the simulator replaying a session (in this process,
  on loopback): triggered with an ``until`` a little ahead, it must complete on its
  own there; a second run is cancelled the way the UI does (``prefect flow-run
  cancel``) and must stop cleanly, committing what it received, before Prefect marks
  it Cancelled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import polars as pl
import pytest

from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer, free_port
from simulator.ws_feed import WsConfig
from warehouse import connect

ROOT = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).with_name("prefect"))
pytestmark = pytest.mark.slow

DAY = date(2025, 12, 29)  # the session the stream runs replay
EVENING = datetime(2025, 12, 29, 20, 0, tzinfo=KST)
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@dataclass
class Deployed:
    env: dict[str, str]  # PREFECT_API_URL and PREFECT_HOME of the module's server
    output: str  # what ``prefect deploy --all`` printed
    deployments: dict[str, dict[str, Any]]  # by name, as the API returns them
    worker_log: Path

    @property
    def api(self) -> str:
        return self.env["PREFECT_API_URL"]

    def logs(self) -> str:
        return self.worker_log.read_text(errors="replace")[-6000:]


def _wait(url: str, seconds: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not up after {seconds} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _prefect(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Iterator[Deployed]:
    """The server, the pool, prefect.yaml's deployments and a worker polling every 2 s."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "KIWOOM_TOKEN_CACHE": str(home / "tokens"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=(home / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=home,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/api/health", 120, server)
        created = _prefect(env, "work-pool", "create", "kiwoom-process", "--type", "process")
        assert created.returncode == 0, created.stdout + created.stderr
        deploy = _prefect(env, "--no-prompt", "deploy", "--all")
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        found = httpx.post(f"{env['PREFECT_API_URL']}/deployments/filter", json={}, timeout=10).json()
        log = home / "worker.log"
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "kiwoom-process"],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=home,
        )
        try:
            yield Deployed(env, " ".join(deploy.stdout.split()), {d["name"]: d for d in found}, log)
        finally:
            _stop(worker)
    finally:
        _stop(server)


# ----------------------------------------------------------------------------- backfill and compact


def _run_compact(d: Deployed, tmp_path: Path) -> dict[str, object]:
    """Run the compact deployment on a lake of six one-symbol writes; what it recorded in meta.runs."""
    from warehouse import Run, Warehouse

    lake = tmp_path / "compact-lake"
    with Warehouse(warehouse=lake) as wh:
        run = Run.new("backfill")
        for s in range(6):
            wh.write("stock_bars_daily", _daily_bars(f"{s:06d}", date(2025, 1, 2), date(2026, 1, 9)), run)
        before = wh.read("stock_bars_daily")
    ran = _prefect(
        d.env, "deployment", "run", "compact/compact", "-p", f"warehouse={lake}", "-p", "older_than_days=0",
        "--watch", timeout=240,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr + d.logs()
    with Warehouse(warehouse=lake) as wh:
        assert wh.read("stock_bars_daily").equals(before)
        runs = wh.runs().filter(pl.col("flow") == "compact")
    assert runs["status"].to_list() == ["ok"], runs
    return json.loads(runs["summary"][0])


def _daily_bars(symbol: str, start: date, end: date) -> pl.DataFrame:
    from schemas.calendar import trading_days

    days = pl.DataFrame({"date": trading_days(start, end)}, schema={"date": pl.Date})
    price = pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    return days.select(
        symbol=pl.lit(symbol), date="date", adjusted=pl.lit(True), open=price, high=price, low=price,
        close=price, volume=price, turnover=pl.lit(None, pl.Int64),
    )  # fmt: skip


def test_deploy_all_from_prefect_yaml_and_run_the_backfill(deployed, tmp_path):
    d = deployed
    for name in ("daily/daily", "refresh_universe/universe", "backfill/backfill"):
        assert f"Deployment '{name}' successfully created" in d.output

    schedules = {
        name: [(s["schedule"].get("cron"), s["schedule"].get("timezone")) for s in dep["schedules"]]
        for name, dep in d.deployments.items()
    }
    assert schedules["daily"] == [("30 18 * * 1-5", "Asia/Seoul")]
    assert schedules["universe"] == [("0 8 * * 1-5", "Asia/Seoul")]
    assert schedules["backfill"] == []
    assert {dep["work_pool_name"] for dep in d.deployments.values()} == {"kiwoom-process"}

    lake = tmp_path / "lake"
    with SimServer(Simulator(SimConfig(n_stocks=40))) as sim:
        run = _prefect(
            d.env,
            "deployment",
            "run",
            "backfill/backfill",
            "-p",
            'symbols=["005930","000660"]',
            "-p",
            "start=2025-01-02",
            "-p",
            "end=2025-06-30",
            "-p",
            f"base_url={sim.base_url}",
            "-p",
            f"warehouse={lake}",
            "--watch",
            timeout=240,
        )
    assert run.returncode == 0, run.stdout + run.stderr + d.logs()
    assert "Completed" in run.stdout
    compacted = _run_compact(d, tmp_path)
    assert compacted["files_before"] > compacted["files_after"] > 0, compacted

    con = connect(read_only=True, warehouse=lake)
    try:
        counts = dict(con.sql("SELECT symbol, count(*) FROM stock_bars_daily GROUP BY symbol").fetchall())
        runs = con.sql("SELECT flow, status, summary FROM meta.runs").fetchall()
    finally:
        con.close()
    from schemas.calendar import trading_days

    days = len(trading_days(date(2025, 1, 2), date(2025, 6, 30)))
    assert counts == {"005930": days, "000660": days}
    assert [(f, s) for f, s, _ in runs] == [("backfill", "ok")]
    artifacts = httpx.post(
        f"{d.api}/artifacts/filter", json={"artifacts": {"key": {"any_": ["backfill-summary"]}}}
    ).json()
    assert artifacts and artifacts[0]["type"] == "table"
    assert "stock_bars_daily" in json.dumps(artifacts[0]["data"])
    assert json.loads(runs[0][2])["rows"] == {"stock_bars_daily": 2 * days}


# ----------------------------------------------------------------------------- stream


@pytest.fixture
def stream(deployed) -> dict[str, Any]:
    """The stream deployment, as the API returns it."""
    assert "Deployment 'stream/stream' successfully created" in deployed.output
    return deployed.deployments["stream"]


def replaying() -> SimServer:
    ws = WsConfig(mode="replay", replay_day=DAY, speed=600, step=0.05)
    return SimServer(Simulator(SimConfig(rate_limit=None, clock=lambda: EVENING, ws=ws)))


def start_run(d: Deployed, deployment: dict[str, Any], parameters: dict[str, Any]) -> str:
    url = f"{d.api}/deployments/{deployment['id']}/create_flow_run"
    for _ in range(30):  # the server answers 503 while its SQLite database is busy (the scheduler)
        got = httpx.post(url, json={"parameters": parameters}, timeout=10)
        if got.status_code != 503:
            break
        time.sleep(1)
    assert got.status_code == 201, got.text
    return str(got.json()["id"])


def flow_run(d: Deployed, run_id: str) -> dict[str, Any]:
    got: dict[str, Any] = httpx.get(f"{d.api}/flow_runs/{run_id}", timeout=10).json()
    return got


def wait_final(d: Deployed, run_id: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = flow_run(d, run_id)
        if run["state"]["type"] in FINAL:
            return run
        time.sleep(1)
    raise AssertionError(
        f"flow run {run_id} not final after {seconds} s: {flow_run(d, run_id)['state']}\n{d.logs()}"
    )


def artifact(d: Deployed, run_id: str) -> dict[str, Any]:
    found = httpx.post(
        f"{d.api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["stream-summary"]}, "flow_run_id": {"any_": [run_id]}}},
        timeout=10,
    ).json()
    assert len(found) == 1, found
    table = found[0]["data"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert found[0]["type"] == "table"
    return {row["metric"]: row["value"] for row in rows}


def lake_state(lake: Path) -> tuple[dict[str, int], list[tuple[str, str, dict[str, Any]]]]:
    con = connect(read_only=True, warehouse=lake)
    try:
        counts = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("stock_trades", "stock_orderbook")
        }
        runs = [
            (f, s, json.loads(m))
            for f, s, m in con.execute("SELECT flow, status, summary FROM meta.runs").fetchall()
        ]
    finally:
        con.close()
    return counts, runs


def test_the_stream_deployment_is_scheduled_before_the_open_and_stops_at_until(deployed, stream, tmp_path):
    d, deployment = deployed, stream
    schedules = [(s["schedule"].get("cron"), s["schedule"].get("timezone")) for s in deployment["schedules"]]
    assert schedules == [("50 8 * * 1-5", "Asia/Seoul")]
    assert all(s["active"] for s in deployment["schedules"])
    assert deployment["work_pool_name"] == "kiwoom-process"
    assert deployment["parameters"] == {"symbols": "kospi", "types": ["0B", "0D"], "until": "15:40"}

    lake = tmp_path / "lake"
    with replaying() as sim:
        codes = [s.code for s in sim.sim.market.universe.stocks[:5]]
        until = datetime.now(KST).replace(microsecond=0) + timedelta(seconds=40)
        run_id = start_run(
            d,
            deployment,
            {
                "symbols": codes,
                "until": until.isoformat(),
                "day": DAY.isoformat(),
                "base_url": sim.base_url,
                "warehouse": str(lake),
            },
        )
        run = wait_final(d, run_id, 150)
    assert run["state"]["type"] == "COMPLETED", f"{run['state']}\n{d.logs()}"
    ended = datetime.fromisoformat(run["end_time"])
    assert until <= ended <= until + timedelta(seconds=30), (until, ended)

    counts, runs = lake_state(lake)
    assert counts["stock_trades"] > 0 and counts["stock_orderbook"] > 0, counts
    assert [(f, s) for f, s, _ in runs] == [("stream", "completed")]
    summary = runs[0][2]
    assert summary["committer"]["rows"] == counts
    assert summary["committer"]["rejected"] == 0
    shown = artifact(d, run_id)
    assert shown["status"] == "completed"
    assert shown["rows stock_trades"] == counts["stock_trades"]
    assert shown["symbols"] == len(codes)


def test_cancelling_the_stream_run_stops_the_worker_cleanly(deployed, stream, tmp_path):
    d, deployment = deployed, stream
    lake = tmp_path / "lake"
    status = lake / "stream" / "realtime" / "status.json"
    with replaying() as sim:
        codes = [s.code for s in sim.sim.market.universe.stocks[:5]]
        until = datetime.now(KST) + timedelta(minutes=10)
        run_id = start_run(
            d,
            deployment,
            {
                "symbols": ",".join(codes),
                "types": "0B,0D",
                "until": until.isoformat(),
                "day": DAY.isoformat(),
                "base_url": sim.base_url,
                "warehouse": str(lake),
            },
        )
        deadline = time.monotonic() + 120
        committed = 0
        while committed == 0:  # rows are being committed: the worker streams
            assert time.monotonic() < deadline, f"no rows committed\n{d.logs()}"
            assert flow_run(d, run_id)["state"]["type"] not in FINAL, d.logs()
            time.sleep(1)
            if status.exists():
                committed = sum(json.loads(status.read_text())["committer"].get("rows", {}).values())
        cancelled = _prefect(d.env, "flow-run", "cancel", run_id)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        run = wait_final(d, run_id, 90)
    assert run["state"]["type"] == "CANCELLED", f"{run['state']}\n{d.logs()}"
    assert datetime.fromisoformat(run["end_time"]) < until

    counts, runs = lake_state(lake)
    # the worker stopped cleanly (not killed): its run is recorded, everything it logged committed
    assert [(f, s) for f, s, _ in runs] == [("stream", "completed")], runs
    summary = runs[0][2]
    assert summary["log_lag"] == 0
    assert summary["committer"]["rows"] == counts
    assert counts["stock_trades"] >= 1 and counts["stock_orderbook"] >= 1
    assert artifact(d, run_id)["status"] == "completed"


def test_until_is_a_korean_time_today_or_an_iso_time_stamp_ahead():
    from flows.stream_flow import parse_until

    now = datetime(2025, 12, 29, 8, 50, tzinfo=KST)
    assert parse_until("15:40", now) == datetime(2025, 12, 29, 15, 40, tzinfo=KST)
    assert parse_until("15:40", now.astimezone(ZoneInfo("UTC"))) == datetime(2025, 12, 29, 15, 40, tzinfo=KST)
    assert parse_until("2025-12-29T09:00:05", now) == datetime(2025, 12, 29, 9, 0, 5, tzinfo=KST)
    assert parse_until("2025-12-29T00:00:05+00:00", now) == datetime(2025, 12, 29, 9, 0, 5, tzinfo=KST)
    for bad in ("08:00", "2025-12-29T08:49:59", "soon", "25:00"):
        with pytest.raises(ValueError):
            parse_until(bad, now)
