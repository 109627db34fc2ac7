"""The queries ``kwh demo`` prints run against the datasets' real column types.

The demo itself takes minutes against the simulator; this checks its SQL on a
small warehouse whose tables come from the dataset registry (a column type
changing under the demo, e.g. ``ts`` becoming TIMESTAMPTZ, fails here).
"""

from __future__ import annotations

from datetime import time
from pathlib import Path

from flows.demo import SAMPLE_SQL, STREAM_SQL
from warehouse import Warehouse, connect, dataset


def test_the_demo_queries_run_on_the_datasets_tables(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with Warehouse(warehouse=lake) as wh:
        for name in ("stock_list", "stock_bars_daily", "stock_trades"):
            wh.ensure(dataset(name))
        con = wh.con
        con.execute("INSERT INTO stock_list (mrkt_tp, symbol, name) VALUES ('0', '005930', '삼성전자')")
        con.execute(
            "INSERT INTO stock_bars_daily (symbol, date, close, turnover)"
            " VALUES ('005930', DATE '2026-11-27', 54100, 558692000000),"
            " ('005930', DATE '2026-11-30', 54500, 1039580000000)"
        )
        # 09:00:19 and 10:12:49 in Korea are 00:00:19 and 01:12:49 UTC
        con.execute(
            "INSERT INTO stock_trades (symbol, date, ts, price, size, side, cum_volume) VALUES"
            " ('005930', DATE '2026-11-30', TIMESTAMPTZ '2026-11-30 00:00:19+00', 54300, 100, 1, 100),"
            " ('005930', DATE '2026-11-30', TIMESTAMPTZ '2026-11-30 01:12:49+00', 54500, 300, -1, 400)"
        )
    con = connect(read_only=True, warehouse=lake)
    try:
        sample = con.sql(SAMPLE_SQL).pl()
        trades = con.sql(STREAM_SQL).pl()
    finally:
        con.close()
    first = sample.row(0, named=True)
    assert (first["symbol"], first["name"], first["days"]) == ("005930", "삼성전자", 2)
    assert (first["avg_close"], first["turnover_trn_won"]) == (54300.0, 1.6)  # trillions of won
    row = trades.row(0, named=True)
    assert (row["first"], row["last"]) == (time(9, 0, 19), time(10, 12, 49))  # Korea time, not UTC
    assert (row["trades"], row["vwap"], row["volume"], row["buys"]) == (2, 54450.0, 400, 1)
