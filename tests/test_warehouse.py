"""The warehouse: registry, idempotent writes, coverage, ledger, reading, maintenance."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from connectors import KiwoomClient, Settings
from connectors.ratelimit import RateLimiter, RateLimits
from schemas.calendar import KST, trading_days
from schemas.catalog import catalog
from schemas.normalize import normalize_pages
from simulator.app import SimConfig, Simulator
from warehouse import (
    BAR_DATASETS,
    LakeConfig,
    Run,
    Span,
    Warehouse,
    WarehouseError,
    connect,
    dataset,
    datasets,
    options_key,
)

AFTER_CLOSE = datetime(2025, 12, 30, 16, 0, tzinfo=KST)
SYMBOLS = {"stock": "005930", "sector": "001", "gold": "M04020000"}

MISSION_TRS = {
    *["ka10079", "ka10080", "ka10081", "ka10082", "ka10083", "ka10094"],
    *["ka20004", "ka20005", "ka20006", "ka20007", "ka20008", "ka20019"],
    *["ka50079", "ka50080", "ka50081", "ka50082", "ka50083", "ka50091", "ka50092"],
    *["ka10008", "ka10009", "ka10044", "ka10045", "ka10051", "ka10058", "ka10059", "ka10060", "ka10061"],
    *["ka10063", "ka10064", "ka10066", "ka10131", "ka52301", "ka90009"],
    *["ka90003", "ka90004", "ka90005", "ka90006", "ka90007", "ka90008", "ka90010", "ka90013", "ka10010"],
    *["ka10014", "ka10068", "ka10069", "ka20068", "ka90012"],
}


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimConfig(clock=lambda: AFTER_CLOSE, rate_limit=None, n_stocks=40))


def fetch(sim: Simulator, api_id: str, body: dict[str, str], max_pages: int = 2) -> pl.DataFrame:
    settings_ = Settings.load(base_url="http://sim.test", env={}, env_file=None, token_cache=None)

    async def go() -> list[bytes]:
        out: list[bytes] = []
        async with KiwoomClient(
            settings_, transport=httpx.ASGITransport(app=sim), limiter=RateLimiter(RateLimits(total=None))
        ) as kw:
            async for page in kw.pages(api_id, body):
                out.append(page.raw)
                if len(out) == max_pages:
                    break
        return out

    return normalize_pages(api_id, asyncio.run(go()))


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    with Warehouse(warehouse=tmp_path / "lake") as w:
        yield w


def _symbol_for(name: str, api_id: str) -> str | None:
    tr = catalog().tr(api_id)
    names = {s["name"] for s in tr.request}
    if "inds_cd" in names:
        return SYMBOLS["sector"]
    if "stk_cd" in names:
        return SYMBOLS["gold"] if name.startswith("gold") else SYMBOLS["stock"]
    return None


# ----------------------------------------------------------------------------- registry


def test_registry_covers_every_mission_tr_and_bar_family():
    sources = {api for ds in datasets().values() for api in ds.sources}
    assert sources >= MISSION_TRS, MISSION_TRS - sources
    assert set(BAR_DATASETS) == {
        *(f"stock_bars_{i}" for i in ("tick", "minute", "daily", "weekly", "monthly", "yearly")),
        *(f"sector_bars_{i}" for i in ("tick", "minute", "daily", "weekly", "monthly", "yearly")),
        *(f"gold_bars_{i}" for i in ("tick", "minute", "daily", "weekly", "monthly")),
    }
    assert dataset("gold_bars_tick").sources == ("ka50079", "ka50091")
    assert dataset("gold_bars_minute").sources == ("ka50080", "ka50092")


@pytest.mark.parametrize("name", sorted(datasets()))
def test_every_dataset_declares_a_consistent_contract(name):
    ds = dataset(name)
    assert ds.schema["run_id"] == pl.String
    assert set(ds.key) <= set(ds.schema), "key columns are columns"
    assert set(ds.options) <= set(ds.key), "meaning-changing options are part of the key"
    assert ds.time in ds.schema
    assert set(ds.comments) == set(ds.schema), "every column has a comment"
    assert all(ds.comments.values())
    assert name.isidentifier() and name == name.lower()
    if ds.style == "snapshot":
        assert ds.key[0] == "fetched_at"


def test_bar_contracts():
    for name in BAR_DATASETS:
        ds = dataset(name)
        for col in ("symbol", "open", "high", "low", "close", "volume", "turnover"):
            assert col in ds.schema, (name, col)
        intraday = name.endswith(("tick", "minute"))
        assert ds.time == ("ts" if intraday else "date")
        assert ds.schema[ds.time] == (pl.Datetime("us", "Asia/Seoul") if intraday else pl.Date)
        assert ("tic_scope" in ds.schema) == intraday
        assert ds.schema["date"] == pl.Date, "tick and minute bars carry their KST trading date too"
        assert ("adjusted" in ds.schema) == (not name.startswith("sector")), name
        assert ds.schema["close"] == (pl.Float64 if name.startswith("sector") else pl.Int64)


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown dataset 'stock_bars_hourly'.*stock_bars_daily"):
        dataset("stock_bars_hourly")


def test_request_builds_symbol_window_and_options():
    ds = dataset("stock_bars_daily")
    assert ds.request(symbol="005930", end=date(2025, 12, 30)) == {
        "stk_cd": "005930",
        "base_dt": "20251230",
        "upd_stkpc_tp": "1",
    }
    assert ds.request(symbol="005930", upd_stkpc_tp="0")["upd_stkpc_tp"] == "0"
    with pytest.raises(ValueError, match="needs a symbol"):
        ds.request()
    with pytest.raises(ValueError, match="takes no request field"):
        ds.request(symbol="005930", bogus="1")
    short = dataset("short_selling").request(symbol="005930", start=date(2025, 1, 2), end=date(2025, 12, 30))
    assert (short["strt_dt"], short["end_dt"]) == ("20250102", "20251230")


# ----------------------------------------------------------------------------- every dataset end to end


def _pairs() -> list[tuple[str, str]]:
    # REST sources; the realtime datasets are fed by the streaming worker (tests/test_stream_*.py)
    return [
        (name, api) for name, ds in sorted(datasets().items()) if ds.style != "stream" for api in ds.sources
    ]


@pytest.mark.parametrize(("name", "api_id"), _pairs())
def test_every_source_lands_in_its_dataset_and_reads_back(sim, tmp_path, name, api_id):
    ds = dataset(name)
    body = ds.request(
        api_id, symbol=_symbol_for(name, api_id), start=date(2025, 12, 1), end=date(2025, 12, 30)
    )
    rows = ds.rows(api_id, fetch(sim, api_id, body), body, AFTER_CLOSE)
    assert rows.schema == pl.Schema({c: t for c, t in ds.schema.items() if c != "run_id"})
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        run = Run.new("test")
        result = wh.write(name, rows, run)
        assert result.rows == rows.height
        back = wh.read(name)
        assert back.height == rows.height
        assert (back["run_id"] == run.id).all()
        assert_frame_equal(back.drop("run_id"), rows.sort(ds.key), check_row_order=False)
        again = wh.write(name, rows, Run.new("test"))
        assert again.replaced == rows.height
        assert wh.read(name).height == rows.height


# ----------------------------------------------------------------------------- bar semantics


def test_stock_daily_bars_are_canonical(sim):
    ds = dataset("stock_bars_daily")
    body = ds.request(symbol="005930", end=date(2025, 12, 30))
    frame = fetch(sim, "ka10081", body, max_pages=1)
    bars = ds.rows("ka10081", frame, body, AFTER_CLOSE)
    assert (bars["symbol"] == "005930").all() and bars["adjusted"].all()
    assert bars["date"].max() == date(2025, 12, 30)
    assert (bars.select(pl.min_horizontal("open", "high", "low", "close")) > 0).to_series().all()
    assert (bars["high"] >= bars["low"]).all()
    # turnover in won: the wire says millions of won
    assert (bars["turnover"] == frame["trde_prica"] * 1_000_000).all()
    unadjusted = ds.rows("ka10081", frame, {**body, "upd_stkpc_tp": "0"}, AFTER_CLOSE)
    assert not unadjusted["adjusted"].any()


def test_sector_bars_are_real_index_levels(sim):
    ds = dataset("sector_bars_daily")
    body = ds.request(symbol="001", end=date(2025, 12, 30))
    frame = fetch(sim, "ka20006", body, max_pages=1)
    bars = ds.rows("ka20006", frame, body, AFTER_CLOSE)
    assert bars["close"].dtype == pl.Float64
    # the wire sends the level x100 ("+250012" for 2500.12); the row holds the level itself
    assert (bars["close"] == frame["cur_prc"]).all()
    assert 100 < bars["close"].median() < 10_000
    assert ((bars["close"] * 100 - (bars["close"] * 100).round(0)).abs() < 1e-6).all(), "two decimals"


def test_minute_and_tick_bars_carry_scope_and_kst_time(sim):
    minute = dataset("stock_bars_minute")
    body = minute.request(symbol="005930", tic_scope="5")
    bars = minute.rows("ka10080", fetch(sim, "ka10080", body, max_pages=1), body, AFTER_CLOSE)
    assert (bars["tic_scope"] == 5).all()
    assert bars["ts"].dtype == pl.Datetime("us", "Asia/Seoul")
    assert bars["ts"].max() == datetime(2025, 12, 30, 15, 30, tzinfo=KST)
    assert (bars["date"] == bars["ts"].dt.date()).all() and bars["date"].max() == date(2025, 12, 30)
    assert bars["turnover"].is_null().all()
    tick = dataset("stock_bars_tick")
    body = tick.request(symbol="005930")
    ticks = tick.rows("ka10079", fetch(sim, "ka10079", body, max_pages=1), body, AFTER_CLOSE)
    assert not ticks.select("symbol", "tic_scope", "adjusted", "ts", "seq").is_duplicated().any()


def test_tick_seq_numbers_trades_within_a_second_in_time_order():
    ds = dataset("stock_bars_tick")
    ts = [datetime(2025, 12, 30, 10, 0, s, tzinfo=KST) for s in (2, 2, 1, 1, 1)]  # newest first
    frame = pl.DataFrame(
        {
            "cntr_tm": pl.Series(ts, dtype=pl.Datetime("us", "Asia/Seoul")),
            "open_pric": [1, 2, 3, 4, 5],
            "high_pric": [1, 2, 3, 4, 5],
            "low_pric": [1, 2, 3, 4, 5],
            "cur_prc": [10, 20, 30, 40, 50],
            "trde_qty": [1, 1, 1, 1, 1],
        }
    )
    rows = ds.rows("ka10079", frame, {"stk_cd": "005930", "tic_scope": "1", "upd_stkpc_tp": "1"}, AFTER_CLOSE)
    assert rows["seq"].to_list() == [1, 0, 2, 1, 0]


# ----------------------------------------------------------------------------- writes


def _daily(symbols: list[str], days: list[date], close: int = 100, adjusted: bool = True) -> pl.DataFrame:
    grid = pl.DataFrame({"symbol": symbols}).join(
        pl.DataFrame({"date": days}, schema={"date": pl.Date}), how="cross"
    )
    return grid.select(
        "symbol",
        "date",
        adjusted=pl.lit(adjusted),
        open=pl.lit(close, pl.Int64),
        high=pl.lit(close + 1, pl.Int64),
        low=pl.lit(close - 1, pl.Int64),
        close=pl.lit(close, pl.Int64),
        volume=pl.lit(1000, pl.Int64),
        turnover=pl.lit(close * 1000, pl.Int64),
    )


DAYS = trading_days(date(2025, 12, 1), date(2025, 12, 30))


def test_write_replaces_only_the_frames_keys_and_records_ledger(wh):
    first, second = Run.new("a"), Run.new("b")
    wh.write("stock_bars_daily", _daily(["005930", "000660"], DAYS, close=100), first)
    result = wh.write("stock_bars_daily", _daily(["005930"], DAYS[5:10], close=200), second)
    assert (result.rows, result.replaced) == (5, 5)
    table = wh.read("stock_bars_daily")
    assert table.height == 2 * len(DAYS)
    changed = table.filter(pl.col("close") == 200)
    assert set(changed["date"]) == set(DAYS[5:10]) and set(changed["symbol"]) == {"005930"}
    assert set(changed["run_id"]) == {second.id}
    writes = wh.sql("SELECT run_id, dataset, rows, replaced FROM meta.writes ORDER BY committed_at")
    assert writes.rows() == [
        (first.id, "stock_bars_daily", 2 * len(DAYS), 0),
        (second.id, "stock_bars_daily", 5, 5),
    ]
    runs = wh.runs()
    assert set(runs["run_id"]) == {first.id, second.id}
    assert set(runs["status"]) == {"running"}


def test_writing_the_same_data_again_changes_nothing(wh):
    frame = _daily(["005930"], DAYS)
    run = Run.new("x")
    wh.write("stock_bars_daily", frame, run)
    before = wh.read("stock_bars_daily")
    coverage = wh.coverage()
    wh.write("stock_bars_daily", frame, run)
    assert_frame_equal(wh.read("stock_bars_daily"), before)
    assert_frame_equal(wh.coverage(), coverage)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop("close"), r"missing \['close'\]"),
        (lambda f: f.with_columns(extra=pl.lit(1)), r"unknown \['extra'\]"),
        (lambda f: f.with_columns(pl.col("close").cast(pl.Float64)), "close is Float64, expected Int64"),
        (lambda f: pl.concat([f, f.head(1)]), "share a key"),
        (
            lambda f: f.with_columns(date=pl.when(pl.col("date") == DAYS[0]).then(None).otherwise("date")),
            "nulls",
        ),
    ],
)
def test_bad_frames_are_refused_and_nothing_is_written(wh, mutate, message):
    wh.write("stock_bars_daily", _daily(["005930"], DAYS[:3], close=1), Run.new())
    before = wh.read("stock_bars_daily")
    with pytest.raises(WarehouseError, match=message):
        wh.write("stock_bars_daily", mutate(_daily(["005930"], DAYS, close=2)), Run.new())
    assert_frame_equal(wh.read("stock_bars_daily"), before)
    assert wh.sql("SELECT count(*) AS n FROM meta.writes")["n"][0] == 1


def test_reference_lists_are_replaced_per_market(wh):
    ds = dataset("sector_list")
    at = AFTER_CLOSE

    def listing(market: str, codes: list[str]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "fetched_at": [at] * len(codes),
                "mrkt_tp": [market] * len(codes),
                "market_code": [market] * len(codes),
                "symbol": codes,
                "name": codes,
                "sector_group": ["g"] * len(codes),
            },
            schema={c: t for c, t in ds.schema.items() if c != "run_id"},
        )

    wh.write("sector_list", listing("0", ["001", "002", "003"]), Run.new())
    wh.write("sector_list", listing("1", ["101"]), Run.new())
    wh.write("sector_list", listing("0", ["001", "004"]), Run.new())  # 002 and 003 are gone
    table = wh.read("sector_list")
    assert sorted(zip(table["mrkt_tp"], table["symbol"], strict=True)) == [
        ("0", "001"),
        ("0", "004"),
        ("1", "101"),
    ]


# ----------------------------------------------------------------------------- property: latest wins

KEYS_SYMBOLS = ["A", "B", "C"]
KEY_DAYS = DAYS[:8]


@st.composite
def batches(draw: st.DrawFn) -> list[pl.DataFrame]:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        keys = draw(
            st.lists(
                st.tuples(st.sampled_from(KEYS_SYMBOLS), st.booleans(), st.sampled_from(KEY_DAYS)),
                min_size=0,
                max_size=20,
                unique=True,
            )
        )
        values = draw(st.lists(st.integers(1, 10**9), min_size=len(keys), max_size=len(keys)))
        frame = pl.DataFrame(
            {
                "symbol": [k[0] for k in keys],
                "date": [k[2] for k in keys],
                "adjusted": [k[1] for k in keys],
                "open": values,
                "high": values,
                "low": values,
                "close": values,
                "volume": values,
                "turnover": [None] * len(keys),
            },
            schema={c: t for c, t in dataset("stock_bars_daily").schema.items() if c != "run_id"},
        )
        out.append(frame)
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches(), st.randoms(use_true_random=False))
def test_overlapping_batches_in_random_order_twice_converge_to_latest_wins(tmp_path_factory, frames, rnd):
    order = list(range(len(frames))) * 2
    rnd.shuffle(order)
    key = list(dataset("stock_bars_daily").key)
    with Warehouse(warehouse=tmp_path_factory.mktemp("lake")) as wh:
        expected: dict[tuple, dict] = {}
        for i in order:
            run = Run(f"run-{i}")
            wh.write("stock_bars_daily", frames[i], run)
            for row in frames[i].with_columns(run_id=pl.lit(run.id)).to_dicts():
                expected[tuple(row[k] for k in key)] = row
        table = wh.read("stock_bars_daily")
        assert not table.select(key).is_duplicated().any()
        want = pl.DataFrame(list(expected.values()), schema=dataset("stock_bars_daily").schema)
        assert_frame_equal(table, want.sort(key), check_row_order=False)


# ----------------------------------------------------------------------------- coverage


def test_coverage_merges_adjacent_spans_and_reports_missing_trading_days(wh):
    opts = {"adjusted": True}
    frame_a = _daily(["005930"], trading_days(date(2025, 1, 2), date(2025, 3, 31)))
    frame_b = _daily(["005930"], trading_days(date(2025, 6, 2), date(2025, 6, 30)))
    wh.write("stock_bars_daily", frame_a, Run.new())
    wh.write("stock_bars_daily", frame_b, Run.new())
    assert wh.covered("stock_bars_daily", "005930", opts) == [
        (date(2025, 1, 2), date(2025, 3, 31)),
        (date(2025, 6, 2), date(2025, 6, 30)),
    ]
    assert wh.missing("stock_bars_daily", "005930", opts, date(2025, 1, 1), date(2025, 7, 4)) == [
        (date(2025, 4, 1), date(2025, 5, 30)),
        (date(2025, 7, 1), date(2025, 7, 4)),
    ]
    gaps = wh.gaps("stock_bars_daily")
    assert gaps.select("gap_start", "gap_end").rows() == [(date(2025, 4, 1), date(2025, 5, 30))]
    assert gaps["trading_days"][0] == len(trading_days(date(2025, 4, 1), date(2025, 5, 30)))
    # another option set is separate coverage
    assert wh.missing(
        "stock_bars_daily", "005930", {"adjusted": False}, date(2025, 1, 2), date(2025, 1, 3)
    ) == [(date(2025, 1, 2), date(2025, 1, 3))]
    # filling the hole (April 1 .. May 31, a Saturday) joins everything into one span
    wh.write(
        "stock_bars_daily",
        _daily(["005930"], trading_days(date(2025, 4, 1), date(2025, 5, 30))),
        Run.new(),
        coverage=[Span("005930", options_key(opts), date(2025, 4, 1), date(2025, 6, 1))],
    )
    assert wh.covered("stock_bars_daily", "005930", opts) == [(date(2025, 1, 2), date(2025, 6, 30))]
    assert wh.gaps("stock_bars_daily").is_empty()


def test_an_empty_window_is_recorded_as_covered(wh):
    span = Span("005930", options_key({"adjusted": True}), date(2009, 1, 1), date(2009, 12, 31))
    empty = _daily(["005930"], [])
    result = wh.write("stock_bars_daily", empty, Run.new(), coverage=[span])
    assert result.rows == 0
    assert (
        wh.missing("stock_bars_daily", "005930", {"adjusted": True}, date(2009, 3, 2), date(2009, 3, 31))
        == []
    )


def test_missing_rejects_an_impossible_window(wh):
    with pytest.raises(WarehouseError, match="starts 2025-02-01 after it ends 2025-01-01"):
        wh.missing("stock_bars_daily", "005930", {}, date(2025, 2, 1), date(2025, 1, 1))


# ----------------------------------------------------------------------------- ledger, status, reading


def test_run_ledger_records_status_and_summary(wh):
    run = Run.new("backfill", {"dataset": "stock_bars_daily"})
    wh.record_run(run, "running")
    wh.write("stock_bars_daily", _daily(["005930"], DAYS), run)
    wh.record_run(run, "ok", {"requests": 3, "pages": 3})
    runs = wh.runs()
    assert runs.height == 1
    row = runs.row(0, named=True)
    assert row["status"] == "ok" and row["finished_at"] is not None
    assert json.loads(row["summary"]) == {"requests": 3, "pages": 3}
    assert json.loads(row["params"]) == {"dataset": "stock_bars_daily"}
    assert row["rows_written"] == len(DAYS)


def test_status_lists_rows_symbols_range_and_last_run(wh):
    run = Run.new()
    wh.write("stock_bars_daily", _daily(["005930", "000660"], DAYS), run)
    status = wh.status()
    row = status.row(0, named=True)
    assert (row["dataset"], row["rows"], row["symbols"]) == ("stock_bars_daily", 2 * len(DAYS), 2)
    assert (row["first"], row["last"], row["last_run"]) == (str(DAYS[0]), str(DAYS[-1]), run.id)


def test_read_only_connection_sees_plain_names_and_refuses_writes(wh, tmp_path):
    wh.write("stock_bars_daily", _daily(["005930"], DAYS), Run.new())
    con = connect(read_only=True, warehouse=tmp_path / "lake")
    try:
        frame = con.sql("SELECT symbol, count(*) AS n FROM stock_bars_daily GROUP BY symbol").pl()
        assert frame.rows() == [("005930", len(DAYS))]
        comment = con.sql(
            "SELECT comment FROM duckdb_columns() "
            "WHERE table_name = 'stock_bars_daily' AND column_name = 'turnover'"
        ).fetchone()
        assert comment == ("거래대금 (원)",)
        with pytest.raises(Exception, match="read-only"):
            con.execute("DELETE FROM stock_bars_daily")
    finally:
        con.close()


def test_read_only_connect_to_a_missing_lake_says_so(tmp_path):
    with pytest.raises(WarehouseError, match="no warehouse at"):
        connect(read_only=True, warehouse=tmp_path / "nothing")


def test_lake_config_from_environment(tmp_path):
    cfg = LakeConfig.load(env={"KWH_WAREHOUSE": str(tmp_path / "w")})
    assert cfg.catalog == f"sqlite:{tmp_path / 'w' / 'catalog.sqlite'}"
    assert cfg.data_path == f"{tmp_path / 'w' / 'files'}/"
    pg = LakeConfig.load(
        env={"KWH_CATALOG": "ducklake:postgres:dbname=kwh password=hunter2", "KWH_DATA_PATH": "s3://b/p/"}
    )
    assert (pg.scheme, pg.catalog, pg.data_path) == (
        "postgres",
        "postgres:dbname=kwh password=hunter2",
        "s3://b/p/",
    )
    assert "hunter2" not in pg.describe() and "hunter2" not in repr(Warehouse(pg))


# ----------------------------------------------------------------------------- maintenance


def test_compact_merges_small_files_and_keeps_the_data(wh):
    for i, day in enumerate(DAYS[:10]):
        wh.write("stock_bars_daily", _daily(["005930", "000660"], [day], close=100 + i), Run.new())
    wh.write("stock_bars_daily", _daily(["005930"], DAYS[:3], close=7), Run.new())
    before = wh.read("stock_bars_daily")
    on_disk = len(list((wh.config.root / "files").rglob("*.parquet")))
    result = wh.compact(older_than=timedelta(0))
    assert result["files_after"] < result["files_before"]
    assert result["snapshots_expired"] > 0
    assert result["files_deleted"] > 0
    assert_frame_equal(wh.read("stock_bars_daily"), before)
    assert len(list((wh.config.root / "files").rglob("*.parquet"))) < on_disk, "replaced files are deleted"


def test_dataset_reference_is_up_to_date():
    from warehouse.docs import DOC, render

    assert DOC.read_text(encoding="utf-8") == render(), "run python -m warehouse.docs"


def test_read_bounds_timestamps_by_kst_days(wh):
    ds = dataset("stock_bars_minute")
    days = DAYS[:3]
    stamps = [
        datetime.combine(d, datetime.min.time(), KST) + timedelta(hours=h, minutes=1)
        for d in days
        for h in (0, 9, 15)
    ]
    n = len(stamps)
    frame = pl.DataFrame(
        {
            "symbol": ["005930"] * n,
            "ts": stamps,
            "date": [s.date() for s in stamps],
            "tic_scope": [1] * n,
            "adjusted": [True] * n,
            **{c: list(range(1, n + 1)) for c in ("open", "high", "low", "close", "volume")},
            "turnover": [None] * n,
        },
        schema={c: t for c, t in ds.schema.items() if c != "run_id"},
    )
    wh.write("stock_bars_minute", frame, Run.new())
    middle = wh.read("stock_bars_minute", ["005930"], days[1], days[1])
    assert middle["ts"].to_list() == [s for s in stamps if s.date() == days[1]]
    assert wh.read("stock_bars_minute", ["005930"], days[0], days[2]).height == n
    assert wh.read("stock_bars_minute", ["000660"]).is_empty()
