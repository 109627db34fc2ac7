"""The kst_date macro and the views every user connection gets (warehouse.views), read-only lakes included."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import warehouse
from flows.cli import app
from schemas.calendar import KST
from warehouse import Run, Warehouse, dataset
from warehouse.views import installed

runner = CliRunner()
SNAPSHOT = "program_net_buying_top50"
EARLY = datetime(2025, 12, 1, 10, 0, tzinfo=KST)
LATE = datetime(2025, 12, 1, 15, 40, tzinfo=KST)


def daily_bars() -> pl.DataFrame:
    days = [date(2025, 12, 1), date(2025, 12, 2)]
    rows = [
        {"symbol": s, "date": d, "adjusted": adj, "open": 100, "high": 110, "low": 90}
        | {"close": 105 if adj else 210, "volume": 1000, "turnover": 105_000}
        for s in ("005930", "000660")
        for d in days
        for adj in (True, False)
    ]
    return pl.DataFrame(rows)


def snapshot(fetched_at: datetime, market: str, n: int) -> pl.DataFrame:
    """``n`` ranked rows of one fetch of ``SNAPSHOT`` for ``market``."""
    schema = {c: t for c, t in dataset(SNAPSHOT).schema.items() if c != "run_id"}
    fixed = {"fetched_at": fetched_at, "side": "buy", "measure": "amount", "mrkt_tp": market, "stex_tp": "1"}
    data: dict[str, list[object]] = {}
    for col, dtype in schema.items():
        if col in fixed:
            data[col] = [fixed[col]] * n
        elif col == "row":
            data[col] = list(range(n))
        elif dtype == pl.String:
            data[col] = [f"{col}{i}" for i in range(n)]
        elif dtype.is_float():
            data[col] = [1.5] * n
        else:
            data[col] = [1] * n
    return pl.DataFrame(data, schema=schema)


def lists() -> tuple[pl.DataFrame, pl.DataFrame]:
    def frame(name: str, rows: list[tuple[str, str, str]]) -> pl.DataFrame:
        schema = {c: t for c, t in dataset(name).schema.items() if c != "run_id"}
        base = pl.DataFrame(
            rows, schema={"mrkt_tp": pl.String, "symbol": pl.String, "name": pl.String}, orient="row"
        )
        return base.with_columns(
            pl.lit(LATE).cast(schema["fetched_at"]).alias("fetched_at"),
            *(
                pl.lit(None, t).alias(c)
                for c, t in schema.items()
                if c not in base.columns and c != "fetched_at"
            ),
        ).select(list(schema))

    stocks = frame(
        "stock_list",
        [
            ("0", "005930", "삼성전자"),
            ("0", "005935", "삼성전자우"),
            ("0", "000660", "SK하이닉스"),
            ("10", "035420", "NAVER"),
            ("10", "123456", "동명"),
            ("0", "654321", "동명"),
        ],
    )
    sectors = frame("sector_list", [("0", "001", "종합(KOSPI)"), ("1", "101", "종합(KOSDAQ)")])
    return stocks, sectors


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("views") / "lake"
    stocks, sectors = lists()
    with Warehouse(warehouse=root) as wh:
        run = Run.new("test")
        wh.write("stock_bars_daily", daily_bars(), run)
        for at, market, n in ((EARLY, "001", 3), (LATE, "001", 2), (EARLY, "101", 4)):
            wh.write(SNAPSHOT, snapshot(at, market, n), run)
        wh.write("stock_list", stocks, run)
        wh.write("sector_list", sectors, run)
    return root


@pytest.fixture
def con(lake: Path):  # type: ignore[no-untyped-def]
    con = warehouse.connect(warehouse=lake)  # read-only
    yield con
    con.close()


def test_kst_date_is_the_korean_day_of_icu_from_1989_to_2040(con) -> None:  # type: ignore[no-untyped-def]
    # every ~61 minutes across 52 years, and both sides of every KST midnight
    mismatches = con.sql(
        """
        WITH t AS (
            SELECT TIMESTAMPTZ '1989-01-01 00:00:00+09' + i * INTERVAL '61 minutes 7 seconds' AS ts
            FROM range(450000) r(i)
            UNION ALL
            SELECT d::TIMESTAMPTZ + off AS ts
            FROM range(DATE '1989-01-01', DATE '2040-12-31', INTERVAL 1 DAY) r(d),
                 (VALUES (INTERVAL 0 SECOND), (INTERVAL '-1 microsecond')) o(off)
        )
        SELECT count(*) AS n, count(*) FILTER (WHERE kst_date(ts) <> ts::DATE) AS bad,
               max(ts) AS last FROM t
        """
    ).fetchone()
    assert con.sql("SELECT current_setting('TimeZone')").fetchone() == ("Asia/Seoul",)
    assert mismatches[0] > 450_000 + 2 * 18_000 and mismatches[1] == 0
    assert mismatches[2].year >= 2040
    # it is arithmetic on a fixed +09:00: in the summer of 1988 Korea was at +10:00, and the two differ
    ts = "TIMESTAMPTZ '1988-07-01 23:30:00+09'"
    assert con.sql(f"SELECT kst_date({ts}), {ts}::DATE").fetchone() == (date(1988, 7, 1), date(1988, 7, 2))


def test_daily_holds_one_adjusted_row_per_symbol_and_day(con) -> None:  # type: ignore[no-untyped-def]
    per_day = con.sql("SELECT date, count(*) FROM daily GROUP BY date ORDER BY date").fetchall()
    assert per_day == [(date(2025, 12, 1), 2), (date(2025, 12, 2), 2)]
    assert con.sql("SELECT DISTINCT close FROM daily").fetchall() == [(105,)]
    raw = con.sql("SELECT count(*) FROM stock_bars_daily").fetchone()
    assert raw == (8,)  # the table holds both: the view is what makes a count per day right


def test_latest_is_the_last_fetch_of_each_question(con) -> None:  # type: ignore[no-untyped-def]
    rows = con.sql(
        f"SELECT mrkt_tp, fetched_at, count(*) FROM {SNAPSHOT}_latest GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert rows == [("001", LATE, 2), ("101", EARLY, 4)]  # KOSPI refetched later, KOSDAQ only once
    assert con.sql(f"SELECT count(*) FROM {SNAPSHOT}").fetchone() == (9,)


def test_symbols_is_the_dimension_of_both_lists(con) -> None:  # type: ignore[no-untyped-def]
    dim = con.sql("SELECT symbol, name, kind, markets FROM symbols ORDER BY kind, symbol").pl()
    assert dim.filter(pl.col("kind") == "sector")["symbol"].to_list() == ["001", "101"]
    assert dim.filter(pl.col("symbol") == "005930").row(0) == ("005930", "삼성전자", "stock", ["0"])
    assert dim["symbol"].is_unique().all()
    joined = con.sql("SELECT d.symbol, s.name FROM daily d JOIN symbols s USING (symbol) LIMIT 1").fetchall()
    assert joined and joined[0][1] in ("삼성전자", "SK하이닉스")


def test_every_user_connection_has_them_and_kwh_sql_too(lake: Path, tmp_path: Path) -> None:
    con = warehouse.connect(warehouse=lake)
    assert {"kst_date", "daily", "symbols", f"{SNAPSHOT}_latest"} <= set(installed(con))
    con.close()
    rw = warehouse.connect(read_only=False, warehouse=tmp_path / "fresh")  # a new lake: the macro only
    assert installed(rw) == ["kst_date"]
    rw.close()
    out = runner.invoke(
        app,
        ["sql", "-w", str(lake), "-f", "csv", "SELECT count(*) AS n FROM daily WHERE kst_date(now()) > date"],
    )
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines() == ["n", "4"]
