"""Migrating a lake of the old layout in place: wire names, option codes, minute bars without ``date``."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import warehouse
from schemas.calendar import KST
from warehouse import LakeConfig, Run, Warehouse, WarehouseError, dataset
from warehouse import migrate as migrate_module
from warehouse.datasets import option_renames, renames
from warehouse.lake import open_lake
from warehouse.migrate import FLOW, plan
from warehouse.tables import atomic, create_meta, ident, sql_type

MINUTE, INVESTOR, STOCKS = "stock_bars_minute", "stock_investor_institution", "stock_list"
SYMBOLS = ["005930", "000660"]


def _value(dtype: pl.DataType, i: int) -> object:
    if dtype == pl.String:
        return f"v{i}"
    if dtype == pl.Boolean:
        return True
    if dtype == pl.Date:
        return date(2025, 12, 1) + timedelta(days=i)
    if isinstance(dtype, pl.Datetime):
        return datetime(2025, 12, 1, 9, 0, tzinfo=KST) + timedelta(minutes=i)
    if dtype.is_float():
        return i + 0.25
    return i


def sample(name: str, n: int, **fixed: object) -> pl.DataFrame:
    """``n`` rows of dataset ``name`` in its current shape (without run_id), ``fixed`` columns set."""
    ds = dataset(name)
    cols = {c: t for c, t in ds.schema.items() if c != "run_id"}
    data = {c: [fixed.get(c, _value(t, i)) for i in range(n)] for c, t in cols.items()}
    return pl.DataFrame(data, schema=cols)


def minute_bars() -> pl.DataFrame:
    # 23:59 and 00:00 KST around midnight, so a UTC day would differ from the Korean one
    stamps = [datetime(2025, 12, 1, 9, 1, tzinfo=KST), datetime(2025, 12, 1, 23, 59, tzinfo=KST)]
    stamps += [datetime(2025, 12, 2, 0, 0, tzinfo=KST), datetime(2026, 1, 2, 15, 30, tzinfo=KST)]
    rows = [(s, ts, i) for s in SYMBOLS for i, ts in enumerate(stamps)]
    frame = pl.DataFrame(
        rows, orient="row", schema={"symbol": pl.String, "ts": dataset(MINUTE).schema["ts"], "i": pl.Int64}
    )
    return sample(MINUTE, frame.height).with_columns(
        symbol=frame["symbol"], ts=frame["ts"], date=pl.lit(None, pl.Date), close=frame["i"] * 10 + 1
    )


def investor_rows() -> pl.DataFrame:
    frame = sample(INVESTOR, 6, symbol="005930")
    return frame.with_columns(
        measure=pl.Series(["amount", "quantity"] * 3),
        side=pl.Series(["net", "buy", "sell"] * 2),
        quantity_unit=pl.lit("shares"),
        date=pl.Series([date(2025, 12, 1) + timedelta(days=i // 2) for i in range(6)]),
    )


def stock_list_rows() -> pl.DataFrame:
    frame = sample(STOCKS, 3, mrkt_tp="0")
    return frame.with_columns(
        symbol=pl.Series(["005930", "000660", "005935"]),
        name=pl.Series(["삼성전자", "SK하이닉스", "삼성전자우"]),
    )


def old_shape(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` as the old layout stored it: wire names, option codes, no ``date`` on minute bars."""
    codes = {col: {v: k for k, v in values.items()} for col, values in option_renames().get(name, {}).items()}
    frame = frame.with_columns(pl.col(c).replace_strict(m, default=pl.col(c)) for c, m in codes.items())
    if name == MINUTE:
        frame = frame.drop("date")
    back = {new: old for old, new in renames().get(name, {}).items()}
    return frame.rename({c: back[c] for c in frame.columns if c in back})


def build_old_lake(root: Path) -> LakeConfig:
    """A lake as the previous version left it, made with SQL: the old columns, rows, coverage and a cursor."""
    config = LakeConfig.load(root)
    con = open_lake(config)
    create_meta(con)
    frames = {MINUTE: minute_bars(), INVESTOR: investor_rows(), STOCKS: stock_list_rows()}

    def body() -> None:
        for name, frame in frames.items():
            ds = dataset(name)
            old = old_shape(name, frame).with_columns(run_id=pl.lit("old-run"))
            cols = ", ".join(f"{ident(c)} {sql_type(t)}" for c, t in old.schema.items())
            con.execute(f"CREATE TABLE {ident(name)} ({cols})")
            if ds.partition:
                con.execute(f"ALTER TABLE {ident(name)} SET PARTITIONED BY ({', '.join(ds.partition)})")
            con.register("_old", old.to_arrow())
            con.execute(f"INSERT INTO {ident(name)} SELECT * FROM _old")
            con.unregister("_old")
        key = json.dumps({"amt_qty_tp": "1", "trde_tp": "0", "unit_tp": "1"}, separators=(",", ":"))
        con.execute(
            "INSERT INTO meta.coverage VALUES "
            "(?, '005930', ?, DATE '2025-12-01', DATE '2025-12-03', 'old-run', now())",
            [INVESTOR, key],
        )
        con.execute(
            "INSERT INTO meta.cursors VALUES "
            "(?, '005930', ?, 'ka10059', 'k1', DATE '2025-12-01', 'old-run', now())",
            [INVESTOR, key],
        )

    atomic(con, body)
    con.close()
    return config


def table(con, name: str) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    ds = dataset(name)
    return con.execute(f"SELECT * FROM {ident(name)}").pl().select(ds.columns).sort(list(ds.key))


def test_an_old_lake_is_migrated_in_place_and_keeps_every_row(tmp_path: Path) -> None:
    config = build_old_lake(tmp_path / "lake")
    with Warehouse(config) as wh:
        con = wh.con  # opening for writing migrates
        for name, want in {
            MINUTE: minute_bars(),
            INVESTOR: investor_rows(),
            STOCKS: stock_list_rows(),
        }.items():
            ds = dataset(name)
            have = con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' AND table_name = ?",
                [name],
            ).fetchall()
            assert sorted(c for (c,) in have) == sorted(ds.columns), name
            got = table(con, name)
            if name == MINUTE:  # date is the Korean day of ts, filled by the migration
                want = want.with_columns(date=pl.col("ts").dt.convert_time_zone("Asia/Seoul").dt.date())
                assert got["date"].to_list()[:4] == [
                    date(2025, 12, 1),
                    date(2025, 12, 1),
                    date(2025, 12, 2),
                    date(2026, 1, 2),
                ]
            want = want.with_columns(run_id=pl.lit("old-run")).select(ds.columns).sort(list(ds.key))
            assert_frame_equal(got, want)
        # coverage and the fetch cursor speak the new option names and values, so nothing is fetched again
        expect = '{"measure":"amount","quantity_unit":"shares","side":"net"}'
        assert con.execute("SELECT options FROM meta.coverage").fetchall() == [(expect,)]
        assert con.execute("SELECT options FROM meta.cursors").fetchall() == [(expect,)]
        assert wh.covered(INVESTOR, "005930", {"measure": "amount", "side": "net", "quantity_unit": "shares"})
        runs = wh.runs()
        migrated = runs.filter(pl.col("flow") == FLOW)
        assert migrated.height == 1 and migrated["status"][0] == "ok"
        summary = json.loads(migrated["summary"][0])
        assert summary[MINUTE]["added"] == ["date"] and summary[MINUTE]["rows"] == 8
        assert summary[INVESTOR]["renamed"]["amt_qty_tp"] == "measure"
        assert summary[STOCKS]["renamed"]["code"] == "symbol"
        # the registry's frames write into the migrated tables
        wh.write(MINUTE, minute_bars().with_columns(date=pl.col("ts").dt.date()).head(1), Run.new("test"))
    # migrated rows are ordered by symbol and time again, in new files
    assert warehouse.read(MINUTE, "삼성전자", warehouse=tmp_path / "lake")["ts"].is_sorted()


def test_migration_is_idempotent(tmp_path: Path) -> None:
    config = build_old_lake(tmp_path / "lake")
    with Warehouse(config) as wh:
        first = table(wh.con, INVESTOR)
        assert plan(wh.con) == []
    with Warehouse(config) as wh:
        assert table(wh.con, INVESTOR).equals(first)
        assert wh.runs().filter(pl.col("flow") == FLOW).height == 1  # the second open changed nothing


def test_a_failed_migration_changes_nothing(tmp_path: Path, monkeypatch) -> None:
    config = build_old_lake(tmp_path / "lake")
    real = migrate_module._apply
    seen: list[str] = []

    def fail_on_second(con, change):  # type: ignore[no-untyped-def]
        seen.append(change.dataset)
        if len(seen) == 2:
            raise RuntimeError("disk full")
        return real(con, change)

    monkeypatch.setattr(migrate_module, "_apply", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"), Warehouse(config) as wh:
        wh.con  # noqa: B018
    monkeypatch.setattr(migrate_module, "_apply", real)
    con = open_lake(config, read_only=True)
    cols = {
        c
        for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake'"
        ).fetchall()
    }
    assert {"amt_qty_tp", "code"} <= cols and "measure" not in cols
    assert con.execute(f"SELECT count(*) FROM {MINUTE}").fetchone() == (8,)
    assert con.execute("SELECT count(*) FROM meta.runs").fetchone() == (0,)
    con.close()


def test_a_clash_of_old_and_new_columns_is_refused(tmp_path: Path) -> None:
    config = build_old_lake(tmp_path / "lake")
    con = open_lake(config)
    con.execute(f"ALTER TABLE {INVESTOR} ADD COLUMN measure VARCHAR")
    con.close()
    with pytest.raises(WarehouseError, match="has measure already"), Warehouse(config) as wh:
        wh.con  # noqa: B018


def test_a_read_only_old_lake_gets_views_and_names_without_migrating(tmp_path: Path) -> None:
    config = build_old_lake(tmp_path / "lake")
    with Warehouse(config.reading()) as wh:  # kwh status, dry runs: a Warehouse that never writes
        assert {c.dataset for c in plan(wh.con)} == {MINUTE, INVESTOR, STOCKS}  # opened, not migrated
    con = warehouse.connect(warehouse=tmp_path / "lake")
    try:
        dim = con.sql("SELECT symbol, name FROM symbols ORDER BY symbol").fetchall()
        assert dim == [("000660", "SK하이닉스"), ("005930", "삼성전자"), ("005935", "삼성전자우")]
        assert con.execute("SELECT count(*) FROM meta.runs").fetchone() == (0,)
    finally:
        con.close()
