"""The ``stream`` deployment of prefect.yaml on a real Prefect server with a process worker.

The server, its home and its helpers are those of tests/test_prefect_deploy.py
(one server for this module). ``prefect deploy --all`` from the project
folder, a process worker on the pool, and the simulator replaying a session
(in this process, on loopback): the deployment is triggered with an ``until``
a little ahead and must complete on its own there; a second run is cancelled
the way the UI does (``prefect flow-run cancel``) and must stop cleanly,
committing what it received, before Prefect marks it Cancelled.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from test_prefect_deploy import PREFECT, _prefect, _stop, prefect_env  # noqa: F401 - a fixture

from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer
from simulator.ws_feed import WsConfig
from warehouse import connect

pytestmark = pytest.mark.slow

DAY = date(2025, 12, 29)  # the replayed session
EVENING = datetime(2025, 12, 29, 20, 0, tzinfo=KST)
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@pytest.fixture(scope="module")
def stream_worker(prefect_env, tmp_path_factory) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:  # noqa: F811
    """The pool, prefect.yaml's deployments, a worker polling every 2 s: (env, the stream deployment)."""
    tmp = tmp_path_factory.mktemp("stream-worker")
    env = {**prefect_env, "KIWOOM_TOKEN_CACHE": str(tmp / "tokens"), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    created = _prefect(env, "work-pool", "create", "kiwoom-process", "--type", "process")
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = _prefect(env, "--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "Deployment 'stream/stream' successfully created" in " ".join(deployed.stdout.split())
    api = env["PREFECT_API_URL"]
    found = httpx.post(
        f"{api}/deployments/filter", json={"deployments": {"name": {"any_": ["stream"]}}}
    ).json()
    assert len(found) == 1
    log = tmp / "worker.log"
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "kiwoom-process"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    try:
        yield {**env, "WORKER_LOG": str(log)}, found[0]
    finally:
        _stop(worker)


def replaying() -> SimServer:
    ws = WsConfig(mode="replay", replay_day=DAY, speed=600, step=0.05)
    return SimServer(Simulator(SimConfig(rate_limit=None, clock=lambda: EVENING, ws=ws)))


def start_run(env: dict[str, str], deployment: dict[str, Any], parameters: dict[str, Any]) -> str:
    url = f"{env['PREFECT_API_URL']}/deployments/{deployment['id']}/create_flow_run"
    for _ in range(30):  # the server answers 503 while its SQLite database is busy (the scheduler)
        got = httpx.post(url, json={"parameters": parameters}, timeout=10)
        if got.status_code != 503:
            break
        time.sleep(1)
    assert got.status_code == 201, got.text
    return str(got.json()["id"])


def flow_run(env: dict[str, str], run_id: str) -> dict[str, Any]:
    got: dict[str, Any] = httpx.get(f"{env['PREFECT_API_URL']}/flow_runs/{run_id}", timeout=10).json()
    return got


def wait_final(env: dict[str, str], run_id: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = flow_run(env, run_id)
        if run["state"]["type"] in FINAL:
            return run
        time.sleep(1)
    raise AssertionError(
        f"flow run {run_id} not final after {seconds} s: {flow_run(env, run_id)['state']}\n{logs(env)}"
    )


def logs(env: dict[str, str]) -> str:
    return Path(env["WORKER_LOG"]).read_text(errors="replace")[-6000:]


def artifact(env: dict[str, str], run_id: str) -> dict[str, Any]:
    found = httpx.post(
        f"{env['PREFECT_API_URL']}/artifacts/filter",
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


def test_the_stream_deployment_is_scheduled_before_the_open_and_stops_at_until(stream_worker, tmp_path):
    env, deployment = stream_worker
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
            env,
            deployment,
            {
                "symbols": codes,
                "until": until.isoformat(),
                "day": DAY.isoformat(),
                "base_url": sim.base_url,
                "warehouse": str(lake),
            },
        )
        run = wait_final(env, run_id, 150)
    assert run["state"]["type"] == "COMPLETED", f"{run['state']}\n{logs(env)}"
    ended = datetime.fromisoformat(run["end_time"])
    assert until <= ended <= until + timedelta(seconds=30), (until, ended)

    counts, runs = lake_state(lake)
    assert counts["stock_trades"] > 0 and counts["stock_orderbook"] > 0, counts
    assert [(f, s) for f, s, _ in runs] == [("stream", "completed")]
    summary = runs[0][2]
    assert summary["committer"]["rows"] == counts
    assert summary["committer"]["rejected"] == 0
    shown = artifact(env, run_id)
    assert shown["status"] == "completed"
    assert shown["rows stock_trades"] == counts["stock_trades"]
    assert shown["symbols"] == len(codes)


def test_cancelling_the_stream_run_stops_the_worker_cleanly(stream_worker, tmp_path):
    env, deployment = stream_worker
    lake = tmp_path / "lake"
    status = lake / "stream" / "realtime" / "status.json"
    with replaying() as sim:
        codes = [s.code for s in sim.sim.market.universe.stocks[:5]]
        until = datetime.now(KST) + timedelta(minutes=10)
        run_id = start_run(
            env,
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
            assert time.monotonic() < deadline, f"no rows committed\n{logs(env)}"
            assert flow_run(env, run_id)["state"]["type"] not in FINAL, logs(env)
            time.sleep(1)
            if status.exists():
                committed = sum(json.loads(status.read_text())["committer"].get("rows", {}).values())
        cancelled = _prefect(env, "flow-run", "cancel", run_id)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        run = wait_final(env, run_id, 90)
    assert run["state"]["type"] == "CANCELLED", f"{run['state']}\n{logs(env)}"
    assert datetime.fromisoformat(run["end_time"]) < until

    counts, runs = lake_state(lake)
    # the worker stopped cleanly (not killed): its run is recorded, everything it logged committed
    assert [(f, s) for f, s, _ in runs] == [("stream", "completed")], runs
    summary = runs[0][2]
    assert summary["log_lag"] == 0
    assert summary["committer"]["rows"] == counts
    assert counts["stock_trades"] >= 1 and counts["stock_orderbook"] >= 1
    assert artifact(env, run_id)["status"] == "completed"


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
