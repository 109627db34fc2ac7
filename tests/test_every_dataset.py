"""Every registered dataset loads from the simulator through ``kwh backfill``, as a user runs it.

One simulator (``kwh sim``, a child process) and one lake; the batch datasets are
backfilled over the last few sessions with one symbol of the kind each takes (a stock,
a sector, a gold product; market-wide TRs take none), in three ``kwh backfill``
processes. Streaming datasets (``kwh stream``) are not batch-loaded and are left out.
Each dataset must end with rows in the lake, and its run must report no failed job.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from flows.ingest import complete_through, current_day_only
from schemas import calendar as cal
from simulator.universe import Universe
from warehouse import Warehouse
from warehouse import datasets as registry
from warehouse.tr_datasets import current_day

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flow_procs import KWH, Proc, clean_env, start_sim, wait_http

SEED, STOCKS = 5, 40  # both markets listed (rankings of a KOSDAQ default are not empty)
# one of each kind: every dataset takes the one that fits it (kwh --symbols applies codes by kind)
SYMBOLS = f"{Universe.default(STOCKS, SEED).stocks[0].code},001,M04020000"
# a month's and a year's bar is dated its first session: those windows start at the year's start
LONG = ("_monthly", "_yearly")
# new lending over today's window: none while today's session has not opened
EMPTY_BEFORE_THE_OPEN = {"stock_lending_top10"}


def _today_not_final(now: datetime) -> bool:
    """Whether a current-day TR answers today's session at ``now`` while that day is not final yet."""
    return current_day(now) > complete_through(now)


def batch_datasets() -> dict[bool, list[str]]:
    """Batch dataset names, apart by whether they need the long window (streams are not batch-loaded)."""
    out: dict[bool, list[str]] = {False: [], True: []}
    for name, ds in registry().items():
        if ds.style != "stream":
            out[name.endswith(LONG)].append(name)
    return out


@pytest.mark.slow
def test_every_batch_dataset_loads_through_kwh_backfill(tmp_path):
    env = {**clean_env(tmp_path), "KIWOOM_RATE": "0"}  # the simulator sets no limit: no pacing
    unfinal_at_start = _today_not_final(datetime.now(cal.KST))
    sim, url = start_sim(tmp_path, env, STOCKS, SEED)
    try:
        assert wait_http(f"{url}/_sim/stats", sim, 60), sim.output()
        today = datetime.now(cal.KST).date()
        windows = {
            False: cal.trading_days(date(today.year - 1, 1, 1), today)[-3],
            True: date(today.year, 1, 1),
        }
        lake = tmp_path / "lake"
        for long, names in batch_datasets().items():
            argv = [*KWH, "backfill", "-d", ",".join(names), "--symbols", SYMBOLS,
                    "--start", str(windows[long]), "--base-url", url, "--warehouse", str(lake)]  # fmt: skip
            proc = Proc(tmp_path, f"backfill-{'long' if long else 'short'}", argv, env)
            code = proc.wait(180)
            assert code == 0, f"{' '.join(argv[3:6])} exited {code}:\n{proc.output()[-4000:]}"
    finally:
        sim.kill()
    now = datetime.now(cal.KST)
    opened = cal.is_trading_day(now.date()) and now.time() > cal.SESSION_OPEN
    with Warehouse(warehouse=lake) as wh:
        tables = set(wh.tables())
        loaded = set(wh.coverage()["dataset"].to_list())
        empty = [
            name
            for names in batch_datasets().values()
            for name in names
            if name not in tables or wh.sql(f"SELECT count(*) AS n FROM {name}")["n"][0] == 0
        ]
    everything = [n for names in batch_datasets().values() for n in names]
    # a TR that answers only the current day (ka10009, ka10064) fetches today's session once it has
    # opened, and today is covered only once final (18:00 KST): from 09:00 to 18:00 on a trading day
    # those datasets have their rows but no coverage yet
    today_only = {n for n in everything if current_day_only(registry()[n], registry()[n].sources[0])}
    unfinal_at_end = _today_not_final(now)
    exempt = today_only if unfinal_at_start or unfinal_at_end else set()
    never = set(everything) - loaded - exempt
    assert not never, f"never covered: {sorted(never)}"
    if unfinal_at_start and unfinal_at_end:
        assert not today_only & loaded, f"covered before the day is final: {sorted(today_only & loaded)}"
    allowed = set() if opened else EMPTY_BEFORE_THE_OPEN
    assert not set(empty) - allowed, f"datasets with no rows after their backfill: {empty}"
