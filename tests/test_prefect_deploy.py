"""The deployments of prefect.yaml on a real Prefect server with a process worker.

Starts ``prefect server start`` on loopback (its own PREFECT_HOME), creates the
process work pool, starts a worker, runs ``prefect deploy --all`` from the
project folder, checks the schedules, then triggers the backfill deployment
against the simulator and reads the rows it landed, and the compact deployment
on a lake of small files and reads what it recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import polars as pl
import pytest

from simulator.app import SimConfig, Simulator
from simulator.server import SimServer, free_port
from warehouse import connect

ROOT = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).with_name("prefect"))
pytestmark = pytest.mark.slow


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


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/api/health", 120, server)
        yield env
    finally:
        _stop(server)


def _prefect(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def _run_compact(env: dict[str, str], tmp_path: Path) -> dict[str, object]:
    """Run the compact deployment on a lake of six one-symbol writes; what it recorded in meta.runs."""
    from warehouse import Run, Warehouse

    lake = tmp_path / "compact-lake"
    with Warehouse(warehouse=lake) as wh:
        run = Run.new("backfill")
        for s in range(6):
            wh.write("stock_bars_daily", _daily_bars(f"{s:06d}", date(2025, 1, 2), date(2026, 1, 9)), run)
        before = wh.read("stock_bars_daily")
    ran = _prefect(
        env, "deployment", "run", "compact/compact", "-p", f"warehouse={lake}", "-p", "older_than_days=0",
        "--watch", timeout=240,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr + (tmp_path / "worker.log").read_text()
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


def test_deploy_all_from_prefect_yaml_and_run_the_backfill(prefect_env, tmp_path):
    env = prefect_env
    created = _prefect(env, "work-pool", "create", "kiwoom-process", "--type", "process")
    assert created.returncode == 0, created.stdout + created.stderr

    deployed = _prefect(env, "--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    for name in ("daily/daily", "refresh_universe/universe", "backfill/backfill"):
        assert f"Deployment '{name}' successfully created" in " ".join(deployed.stdout.split())

    api = env["PREFECT_API_URL"]
    deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
    schedules = {
        d["name"]: [(s["schedule"].get("cron"), s["schedule"].get("timezone")) for s in d["schedules"]]
        for d in deployments
    }
    assert schedules["daily"] == [("30 18 * * 1-5", "Asia/Seoul")]
    assert schedules["universe"] == [("0 8 * * 1-5", "Asia/Seoul")]
    assert schedules["backfill"] == []
    assert {d["work_pool_name"] for d in deployments} == {"kiwoom-process"}

    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "kiwoom-process"],
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    lake = tmp_path / "lake"
    try:
        with SimServer(Simulator(SimConfig(n_stocks=40))) as sim:
            run = _prefect(
                env,
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
        assert run.returncode == 0, run.stdout + run.stderr + (tmp_path / "worker.log").read_text()
        assert "Completed" in run.stdout
        compacted = _run_compact(env, tmp_path)
    finally:
        _stop(worker)
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
        f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": ["backfill-summary"]}}}
    ).json()
    assert artifacts and artifacts[0]["type"] == "table"
    assert "stock_bars_daily" in json.dumps(artifacts[0]["data"])
    assert json.loads(runs[0][2])["rows"] == {"stock_bars_daily": 2 * days}
