"""The same warehouse code on a PostgreSQL catalog and another data path (configuration only).

Starts a throwaway PostgreSQL server on loopback with the machine's ``initdb``/``pg_ctl``
(as the ``postgres`` user when the tests run as root). Skipped, saying why, where
PostgreSQL is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from warehouse import LakeConfig, Run, Warehouse, connect, dataset


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    return None


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl or (os.geteuid() == 0 and not shutil.which("runuser")):
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed here")
    # not under pytest's tmp folder: the postgres user cannot enter root's private folders
    root = Path(tempfile.mkdtemp(prefix="kwh-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "db"
    subprocess.run(
        _as_owner([initdb, "-D", str(data), "-A", "trust", "-U", "kwh"]), check=True, capture_output=True
    )
    port = _free_port()
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_owner([pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        dsn = f"host=127.0.0.1 port={port} user=kwh"
        deadline = time.monotonic() + 20
        while True:
            probe = subprocess.run(
                ["psql", f"{dsn} dbname=postgres", "-c", "CREATE DATABASE lake"],
                capture_output=True,
                text=True,
            )
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(probe.stderr)
            time.sleep(0.2)
        yield f"postgres:dbname=lake {dsn}"
    finally:
        subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_catalog_with_another_data_path(postgres, tmp_path):
    files = tmp_path / "elsewhere" / "parquet"
    config = LakeConfig.load(env={"KWH_CATALOG": postgres, "KWH_DATA_PATH": f"{files}/"})
    assert config.scheme == "postgres"
    schema = {c: t for c, t in dataset("stock_bars_daily").schema.items() if c != "run_id"}
    days = [date(2025, 12, d) for d in (1, 2, 3)]
    frame = pl.DataFrame(
        {
            "symbol": ["005930"] * 3,
            "date": days,
            "adjusted": [True] * 3,
            "open": [1, 2, 3],
            "high": [1, 2, 3],
            "low": [1, 2, 3],
            "close": [1, 2, 3],
            "volume": [1, 2, 3],
            "turnover": [None] * 3,
        },
        schema=schema,
    )
    with Warehouse(config) as wh:
        wh.write("stock_bars_daily", frame, Run.new())
        wh.write("stock_bars_daily", frame.with_columns(close=pl.col("close") * 10).tail(1), Run.new())
        assert wh.missing("stock_bars_daily", "005930", {"adjusted": True}, days[0], days[-1]) == []
    assert list(files.rglob("*.parquet")), "data files go to the configured data path"
    con = connect(read_only=True, catalog=postgres, data_path=f"{files}/")
    try:
        got = con.sql("SELECT date, close FROM stock_bars_daily ORDER BY date").pl()
    finally:
        con.close()
    assert_frame_equal(got, pl.DataFrame({"date": days, "close": [1, 2, 30]}))
