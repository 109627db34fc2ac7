"""warehouse.read for notebooks, names for codes, and where connect()/read() find the lake."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from _mounts import needs_mount, read_only_bind

import warehouse
from flows.symbols import resolve_symbols
from schemas.calendar import KST
from warehouse import LakeConfig, Run, Warehouse, WarehouseError
from warehouse.lake import project_dir
from warehouse.reading import is_code, read_dataset, resolve_names

DAYS = [date(2025, 12, 1) + timedelta(days=i) for i in range(10)]
SYMBOLS = ["000660", "005930", "035420"]


def bars() -> pl.DataFrame:
    rows = [
        {"symbol": s, "date": d, "adjusted": True, "open": 100 + i, "high": 110 + i, "low": 90 + i}
        | {"close": 105 + i, "volume": 1000 * (i + 1), "turnover": 105_000 * (i + 1)}
        for s in SYMBOLS
        for i, d in enumerate(DAYS)
    ]
    return pl.DataFrame(rows)


def listed(name: str, rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """A ``stock_list``/``sector_list`` frame of (market, symbol, name) rows, other columns empty."""
    schema = {c: t for c, t in warehouse.dataset(name).schema.items() if c != "run_id"}
    base = pl.DataFrame(rows, schema=["mrkt_tp", "symbol", "name"], orient="row")
    return base.with_columns(
        pl.lit(datetime(2025, 12, 1, 8, 0, tzinfo=KST)).cast(schema["fetched_at"]).alias("fetched_at"),
        *(pl.lit(None, t).alias(c) for c, t in schema.items() if c not in (*base.columns, "fetched_at")),
    ).select(list(schema))


STOCKS = [("0", "005930", "삼성전자"), ("0", "005935", "삼성전자우"), ("0", "000660", "SK하이닉스")]
STOCKS += [("10", "035420", "NAVER"), ("10", "123456", "동명"), ("0", "654321", "동명")]
SECTORS = [("0", "001", "종합(KOSPI)"), ("1", "101", "종합(KOSDAQ)")]


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        wh.write("stock_bars_daily", bars(), Run.new("test"))
    return tmp_path / "lake"


@pytest.fixture
def named_lake(lake: Path) -> Path:
    with Warehouse(warehouse=lake) as wh:
        wh.write("stock_list", listed("stock_list", STOCKS), Run.new("test"))
        wh.write("sector_list", listed("sector_list", SECTORS), Run.new("test"))
    return lake


def test_read_selects_symbols_days_and_columns(lake: Path) -> None:
    out = warehouse.read(
        "stock_bars_daily", ["005930"], "2025-12-03", date(2025, 12, 5), ["date", "close"], warehouse=lake
    )
    assert out.columns == ["date", "close"]
    assert out["date"].to_list() == DAYS[2:5]
    assert out["close"].to_list() == [107, 108, 109]
    # one code or several as a comma-separated string; no bounds: every day, in key order
    both = warehouse.read("stock_bars_daily", "035420, 000660", columns=["symbol"], warehouse=lake)
    assert both["symbol"].to_list() == ["000660"] * 10 + ["035420"] * 10
    whole = warehouse.read("stock_bars_daily", warehouse=lake)
    assert whole.columns == list(warehouse.dataset("stock_bars_daily").schema)
    assert whole.height == 30


def test_read_pushes_the_columns_into_the_sql(lake: Path) -> None:
    con = warehouse.connect(warehouse=lake)
    try:
        calls: list[str] = []
        real = con.execute

        class Spy:
            def __getattr__(self, name: str) -> object:
                return getattr(con, name)

            def execute(self, sql: str, params: object = None) -> object:
                calls.append(sql)
                return real(sql, params)

        read_dataset(Spy(), "stock_bars_daily", ["005930"], columns=["date", "close"])  # type: ignore[arg-type]
    finally:
        con.close()
    select = [c for c in calls if c.startswith("SELECT")][-1]
    assert select.startswith('SELECT "date", "close" FROM "stock_bars_daily" WHERE "symbol" IN')


def test_read_refuses_unknown_columns_and_dates(lake: Path) -> None:
    with pytest.raises(WarehouseError, match="no column clsoe"):
        warehouse.read("stock_bars_daily", columns=["date", "clsoe"], warehouse=lake)
    with pytest.raises(WarehouseError, match="start must be a date"):
        warehouse.read("stock_bars_daily", start="yesterday", warehouse=lake)


def test_read_of_a_dataset_not_written_yet_is_empty_with_its_columns(lake: Path) -> None:
    out = warehouse.read("short_selling", "005930", columns=["date", "short_volume"], warehouse=lake)
    assert out.is_empty() and out.columns == ["date", "short_volume"]


def test_read_takes_names_as_well_as_codes(named_lake: Path) -> None:
    by_code = warehouse.read("stock_bars_daily", "005930, 000660", warehouse=named_lake)
    by_name = warehouse.read("stock_bars_daily", ["삼성전자", "sk하이닉스"], warehouse=named_lake)
    assert by_name.equals(by_code) and by_code.height == 20
    naver = warehouse.read("stock_bars_daily", "naver", columns=["symbol"], warehouse=named_lake)
    assert naver["symbol"].to_list() == ["035420"] * 10  # case and spaces do not matter


def test_an_ambiguous_or_unknown_name_is_a_one_line_error_with_candidates(named_lake: Path) -> None:
    with pytest.raises(WarehouseError) as ambiguous:
        warehouse.read("stock_bars_daily", "동명", warehouse=named_lake)
    assert str(ambiguous.value) == "'동명' is ambiguous: 동명 (123456), 동명 (654321); give the code"
    with pytest.raises(WarehouseError) as unknown:
        warehouse.read("stock_bars_daily", "삼성", warehouse=named_lake)
    message = str(unknown.value)
    assert "\n" not in message and message.startswith("no symbol named '삼성' in stock_list")
    assert message.endswith("did you mean 삼성전자 (005930), 삼성전자우 (005935)")
    # a sector dataset looks names up among the sectors only
    with pytest.raises(WarehouseError, match=r"no symbol named '삼성전자' in sector_list$"):
        warehouse.read("sector_bars_daily", "삼성전자", warehouse=named_lake)


def test_codes_need_no_lists_but_names_do(lake: Path) -> None:
    con = warehouse.connect(warehouse=lake)
    try:
        assert resolve_names(con, ["005930", "001", "M04020000", "0000J0", "005930_NX"]) == [
            "005930",
            "001",
            "M04020000",
            "0000J0",
            "005930_NX",
        ]
        with pytest.raises(WarehouseError, match="run `kwh universe` first, or give codes"):
            resolve_names(con, ["005930", "삼성전자"])
    finally:
        con.close()
    assert not is_code("NAVER") and not is_code("삼성전자") and not is_code("3S") and is_code("005930")


def test_symbols_option_of_the_flows_takes_names(named_lake: Path) -> None:
    with Warehouse(warehouse=named_lake) as wh:
        daily = warehouse.dataset("stock_bars_daily")
        assert resolve_symbols(wh, daily, "삼성전자, 000660,NAVER") == ["005930", "000660", "035420"]
        sector = warehouse.dataset("sector_bars_daily")
        assert resolve_symbols(wh, sector, "종합(KOSDAQ)") == ["101"]
        with pytest.raises(ValueError, match="'동명' is ambiguous"):
            resolve_symbols(wh, daily, "동명")
        with pytest.raises(ValueError, match="unknown symbols for stock_bars_daily: 999999"):
            resolve_symbols(wh, daily, "999999")


def _checkout(root: Path, dotenv: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "kiwoom-warehouse"\n')
    (root / "notebooks").mkdir(exist_ok=True)
    if dotenv is not None:
        (root / ".env").write_text(dotenv)
    return root


def test_a_notebook_in_the_checkout_finds_the_lake_of_the_checkout(tmp_path, monkeypatch) -> None:
    for var in ("KWH_WAREHOUSE", "KWH_CATALOG", "KWH_DATA_PATH"):
        monkeypatch.delenv(var, raising=False)
    root = _checkout(tmp_path / "repo")
    monkeypatch.chdir(root / "notebooks")  # where Jupyter runs the notebook
    assert project_dir() == root
    assert LakeConfig.load().root == root / "data"  # not notebooks/data
    # the .env the command line reads, relative paths from the checkout
    (root / ".env").write_text("KWH_WAREHOUSE=lakes/main\nKIWOOM_HOST=paper\n")
    assert LakeConfig.load().root == root / "lakes" / "main"
    # the environment wins over .env; an argument over both (relative to the working directory)
    monkeypatch.setenv("KWH_WAREHOUSE", str(tmp_path / "elsewhere"))
    assert LakeConfig.load().root == tmp_path / "elsewhere"
    assert LakeConfig.load("here").root == root / "notebooks" / "here"


def test_read_from_a_notebook_folder_uses_the_checkout_env(tmp_path, monkeypatch, lake: Path) -> None:
    monkeypatch.delenv("KWH_WAREHOUSE", raising=False)
    root = _checkout(tmp_path / "repo", dotenv=f"KWH_WAREHOUSE={lake}\n")
    monkeypatch.chdir(root / "notebooks")
    assert warehouse.read("stock_bars_daily", "005930", columns=["close"]).height == 10


def test_outside_a_checkout_the_working_directory_decides(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("KWH_WAREHOUSE", raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / ".env").write_text("KWH_WAREHOUSE=lake\n")
    monkeypatch.chdir(tmp_path / "work")
    assert project_dir() == tmp_path / "work"
    assert LakeConfig.load().root == tmp_path / "work" / "lake"
    # an explicit env mapping is the whole environment: no .env
    assert LakeConfig.load(env={}).root == tmp_path / "work" / "data"


def test_a_lake_moved_elsewhere_reads_from_its_new_place(tmp_path, lake: Path) -> None:
    moved = tmp_path / "snapshot"
    shutil.copytree(lake, moved)
    shutil.rmtree(lake)  # nothing left where the catalog says the files were
    assert warehouse.read("stock_bars_daily", "005930", columns=["close"], warehouse=moved).height == 10


def test_a_catalog_in_a_folder_it_cannot_write_is_read_through_a_copy(tmp_path, monkeypatch, lake) -> None:
    """SQLite in WAL mode cannot open a catalog read-only where it cannot create the -shm file."""
    import warehouse.lake as lake_module

    real = os.access
    monkeypatch.setattr(lake_module.os, "access", lambda p, mode: False if Path(p) == lake else real(p, mode))
    before = set(Path(tempfile.gettempdir()).glob("kwh-catalog-*"))
    con = warehouse.connect(warehouse=lake)
    copies = set(Path(tempfile.gettempdir()).glob("kwh-catalog-*")) - before
    assert len(copies) == 1
    assert con.execute("SELECT count(*) FROM stock_bars_daily").fetchone() == (30,)
    con.close()
    del con
    gc.collect()
    assert not any(c.exists() for c in copies), "the copy goes with the connection"


@needs_mount
def test_a_lake_on_a_read_only_mount_can_be_read(tmp_path, lake: Path) -> None:
    with read_only_bind(lake, tmp_path / "ro") as mnt:
        out = warehouse.read("stock_bars_daily", ["005930"], columns=["date", "close"], warehouse=mnt)
        assert out["close"].to_list() == list(range(105, 115))
