"""Benchmark: daily and symbol-month queries over minute bars, the lake against plain DuckDB and Parquet.

    .venv/bin/python bench/warehouse.py [--symbols 2000] [--days 13] [--repeat 7] [--quick] [--tmp DIR]

One run builds, from the same synthetic ``stock_bars_minute`` rows (``--symbols`` x
``--days`` KRX trading days x 381 bars: 09:01 .. 15:20 and the closing auction's 15:30;
2,000 x 13 x 381 = 9.9M rows):

- the lake: DuckLake with a SQLite catalog, one ``Warehouse.write`` per trading day (the
  way a daily flow fills it);
- native: the same rows in a DuckDB table (a ``.duckdb`` file, attached to the same connection);
- parquet: the same rows as hive-partitioned Parquet (``year=/month=``, the lake's partitions);
- fragmented: a second lake holding the same rows written by ``--fragment`` small
  ``Warehouse.write`` calls of a few symbols each (one symbol each with ``--fragment`` equal
  to ``--symbols``), queried before and after ``Warehouse.compact`` (what ``kwh compact``
  runs), with its file counts. The lake is also queried after ``compact``, which rewrites
  its closed months sorted by symbol and time (the bench's months are in the past).

Then, on one read-only ``warehouse.connect()`` (the macro and views installed), every query
runs ``--repeat`` times, interleaved, to a Polars frame; each figure is the median and every
ratio compares figures of this one run. Queries:

- daily OHLCV of every symbol and day: ``GROUP BY symbol, date`` on the stored ``date``
  column (the project's way), on ``kst_date(ts)`` (the macro), and on ``ts::DATE`` (ICU);
- one symbol over one calendar month: ``SELECT *`` with the symbol and ``ts`` bounds, and
  ``warehouse.read`` of the same rows.

Every answer is checked against the others (same rows, same values). Also measured once per
run, as before: ``Warehouse.write`` of 1M rows into an empty lake and an upsert of 1M rows
(half replacing stored keys) into the 9.9M-row lake. Writes ``bench/results/warehouse.md``
(``--quick``: a small run that only prints, unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - first: takes bench/ off sys.path (bench/warehouse.py hides the package)
import duckdb
import polars as pl

from schemas.calendar import KST, session_minutes, trading_days
from warehouse import Run, Warehouse, connect, dataset
from warehouse.reading import read_dataset

NAME = "stock_bars_minute"
DS = dataset(NAME)
SCHEMA = pl.Schema({c: t for c, t in DS.schema.items() if c != "run_id"})
DAY_BARS = 381  # 09:01 .. 15:20 (380) and the closing auction's 15:30 bar; none at 15:21-15:29
LAST_CONTINUOUS, AUCTION = clock_time(15, 20), clock_time(15, 30)

AGG = (
    "SELECT symbol, {day} AS date, arg_min(open, ts) AS open, max(high) AS high, min(low) AS low, "
    "arg_max(close, ts) AS close, sum(volume) AS volume FROM {source} GROUP BY ALL"
)
MONTH = "SELECT * FROM {source} WHERE symbol = ? AND ts >= ? AND ts < ?"
DAYS = {"date": "date", "macro": "kst_date(ts)", "icu": "ts::DATE"}


# --------------------------------------------------------------------------- data


def day_minutes(d: date) -> list[datetime]:
    """The 381 bar labels (KST) of a KRX trading day."""
    out = [m for m in session_minutes(d) if m.time() <= LAST_CONTINUOUS or m.time() == AUCTION]
    assert len(out) == DAY_BARS, (d, len(out))
    return out


def bars(symbols: pl.Series, minutes: list[datetime], seed: int) -> pl.DataFrame:
    """Every symbol x every minute, symbol-major; plausible OHLCV from a hash of the row number."""
    grid = pl.DataFrame({"symbol": symbols}).join(
        pl.DataFrame({"ts": pl.Series(minutes, dtype=SCHEMA["ts"])}), how="cross"
    )
    h = pl.col("h")
    prev = pl.col("close") - pl.col("step")
    frame = (
        grid.with_columns(h=pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed))
        .with_columns(step=(h % 21).cast(pl.Int64) - 10)
        .with_columns(
            close=(
                1_000
                + pl.col("symbol").cast(pl.Int64) * 7_919 % 200_000
                + pl.col("step").cum_sum().over("symbol")
            ).clip(1)
        )
        .select(
            "symbol",
            "ts",
            date=pl.col("ts").dt.date(),  # the KST day: ts is in Asia/Seoul
            tic_scope=pl.lit(1, pl.Int16),
            adjusted=pl.lit(True),
            open=prev.clip(1),
            high=pl.max_horizontal("close", prev) + (h // 256 % 5).cast(pl.Int64),
            low=(pl.min_horizontal("close", prev) - (h // 65_536 % 5).cast(pl.Int64)).clip(1),
            close="close",
            volume=(h // 16_777_216 % 10_000).cast(pl.Int64),
            turnover=pl.lit(None, pl.Int64),  # minute bars carry no turnover (see datasets._bar_build)
        )
    )
    assert frame.schema == SCHEMA, (frame.schema, SCHEMA)
    return frame


# --------------------------------------------------------------------------- helpers


def clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return row[0]


def lake_files(con: duckdb.DuckDBPyConnection, database: str = "lake") -> dict[str, float]:
    """The table's data and delete files in the current snapshot, and their size."""
    files, deletes, size = con.execute(
        f"SELECT file_count, delete_file_count, file_size_bytes FROM ducklake_table_info('{database}') "
        "WHERE table_name = ?",
        [NAME],
    ).fetchone() or (0, 0, 0)
    return {"data": files, "delete": deletes, "mb": size / 1e6}


def timed(queries: dict[str, Callable[[], pl.DataFrame]], repeat: int) -> tuple[dict[str, list[float]], dict]:
    """Each query ``repeat`` times, interleaved; all times and the last frame of each."""
    times: dict[str, list[float]] = defaultdict(list)
    frames: dict[str, pl.DataFrame] = {}
    for _ in range(repeat):
        for label, fn in queries.items():
            took, frames[label] = clock(fn)
            times[label].append(took)
    return times, frames


def same(frames: dict[str, pl.DataFrame], labels: list[str], key: list[str]) -> None:
    ref = frames[labels[0]].sort(key)
    for label in labels[1:]:
        assert frames[label].sort(key).equals(ref), f"{label} differs from {labels[0]}"


# --------------------------------------------------------------------------- the run


def build(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    symbols = (
        (pl.int_range(args.symbols, eager=True) * 3 + 5_930).cast(pl.String).str.zfill(6).alias("symbol")
    )
    days = trading_days(args.start, args.start + timedelta(days=args.days * 2 + 10))[: args.days]
    out["symbols"], out["days"] = symbols, days
    gen = write = 0.0
    with Warehouse(warehouse=tmp / "lake") as wh:
        wh.con  # noqa: B018 - opens the lake and creates the meta tables, not timed
        run = Run.new("bench")
        for d in days:
            took, frame = clock(functools.partial(bars, symbols, day_minutes(d), d.toordinal()))
            gen += took
            took, _ = clock(functools.partial(wh.write, NAME, frame, run))
            write += took
    out["rows"] = args.symbols * len(days) * DAY_BARS
    out["gen"], out["build"] = gen, write
    log(f"lake: {out['rows']:,} rows in {len(days)} writes, {write:.1f} s (+ {gen:.1f} s generating)")

    con = connect(read_only=True, warehouse=tmp / "lake")
    took, _ = clock(
        lambda: (
            con.execute(f"ATTACH '{tmp / 'native.duckdb'}' AS native"),
            con.execute(f"CREATE TABLE native.bars AS SELECT * FROM lake.{NAME} ORDER BY symbol, ts"),
            con.execute("DETACH native"),
        )
    )
    log(f"native: {took:.1f} s")
    took, _ = clock(
        lambda: con.execute(
            f"COPY (SELECT *, year(ts) AS year, month(ts) AS month FROM lake.{NAME} ORDER BY symbol, ts) "
            f"TO '{tmp / 'parquet'}' (FORMAT parquet, PARTITION_BY (year, month))"
        )
    )
    out["parquet_files"] = sum(1 for _ in (tmp / "parquet").rglob("*.parquet"))
    log(f"parquet: {out['parquet_files']} files, {took:.1f} s")

    # the fragmented lake: the same rows in --fragment writes of a few symbols each (one symbol
    # each when --fragment is the symbol count; this machine could not afford 2,000 writes)
    every = con.execute(f"SELECT * EXCLUDE (run_id) FROM lake.{NAME} ORDER BY symbol, ts").pl()
    con.close()
    group = -(-args.symbols // args.fragment)  # symbols per write
    every = every.with_columns(part=(pl.col("symbol").rank("dense") - 1) // group)
    parts = [p.drop("part") for p in every.partition_by("part", maintain_order=True, as_dict=False)]
    del every
    t0 = time.perf_counter()
    with Warehouse(warehouse=tmp / "fragmented") as wh:
        run = Run.new("bench")
        for part in parts:
            wh.write(NAME, part, run)
    took, n_writes = time.perf_counter() - t0, len(parts)
    out["fragment_symbols"] = group
    del parts
    out["fragment_writes"], out["fragment_build"] = n_writes, took
    log(f"fragmented: {n_writes} writes, {took:.1f} s")
    return out


def measure(args: argparse.Namespace, tmp: Path, built: dict[str, Any], log: Callable[[str], None]) -> dict:
    symbols, days = built["symbols"], built["days"]
    con = connect(read_only=True, warehouse=tmp / "lake")
    con.execute(f"ATTACH '{tmp / 'native.duckdb'}' AS native (READ_ONLY)")
    con.execute(f"ATTACH 'ducklake:sqlite:{tmp / 'fragmented' / 'catalog.sqlite'}' AS frag (READ_ONLY)")
    hive = f"read_parquet('{tmp / 'parquet'}/**/*.parquet', hive_partitioning = true)"
    sources = {"lake": f"lake.{NAME}", "native": "native.bars", "parquet": hive, "frag": f"frag.{NAME}"}
    symbol = symbols[len(symbols) // 2]
    month = days[0].replace(day=1)
    end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    window = [symbol, datetime.combine(month, clock_time(), KST), datetime.combine(end, clock_time(), KST)]

    def q(sql: str, params: list[Any] | None = None) -> Callable[[], pl.DataFrame]:
        return lambda: con.execute(sql, params or []).pl()

    def agg(source: str, day: str = "date") -> Callable[[], pl.DataFrame]:
        return q(AGG.format(day=DAYS[day], source=sources[source]))

    def month_of(source: str) -> Callable[[], pl.DataFrame]:
        return q(MONTH.format(source=sources[source]), window)

    def read() -> pl.DataFrame:
        last = end - timedelta(days=1)
        return read_dataset(con, NAME, [symbol], month, last).drop("run_id")

    queries = {
        "daily_lake": agg("lake"),
        "daily_native": agg("native"),
        "daily_parquet": agg("parquet"),
        "daily_macro": agg("lake", "macro"),
        "daily_icu": agg("lake", "icu"),
        "daily_frag": agg("frag"),
        "month_lake": month_of("lake"),
        "month_native": month_of("native"),
        "month_parquet": month_of("parquet"),
        "month_read": read,
        "month_frag": month_of("frag"),
    }
    times, frames = timed(queries, args.repeat)
    want_daily = args.symbols * len(days)
    daily = [k for k in frames if k.startswith("daily")]
    assert frames["daily_lake"].height == want_daily, frames["daily_lake"].height
    same(frames, daily, ["symbol", "date"])
    cols = [c for c in SCHEMA]
    for k in ("month_lake", "month_native", "month_parquet", "month_frag", "month_read"):
        frames[k] = frames[k].select(cols)
    same(frames, ["month_lake", "month_native", "month_parquet", "month_frag", "month_read"], ["ts"])
    month_rows = sum(DAY_BARS for d in days if d.replace(day=1) == month)
    assert frames["month_lake"].height == month_rows, frames["month_lake"].height
    out: dict[str, Any] = {"times": times, "symbol": symbol, "month": month, "month_rows": month_rows}
    out["files_lake"], out["files_frag"] = lake_files(con), lake_files(con, "frag")
    out["daily_out"] = want_daily
    con.close()
    log("queries: " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in times.items()))

    # kwh compact on the fragmented lake: merge its files, expire the old snapshots, delete their files
    # kwh compact on both lakes: merge their files, expire the old snapshots, delete their files
    for lake, tag in (("fragmented", ""), ("lake", "_lake")):
        with Warehouse(warehouse=tmp / lake) as wh:
            out["compact" + tag], out["compact_result" + tag] = clock(
                functools.partial(wh.compact, older_than=timedelta(0))
            )
    after: dict[str, list[float]] = {}
    for lake, tag in (("fragmented", "compacted"), ("lake", "lake_compacted")):
        con = connect(read_only=True, warehouse=tmp / lake)
        out["files_" + tag] = lake_files(con)
        times, frames_after = timed(
            {
                f"daily_{tag}": q(AGG.format(day="date", source=NAME)),
                f"month_{tag}": q(MONTH.format(source=NAME), window),
            },
            args.repeat,
        )
        con.close()
        got = frames_after[f"daily_{tag}"].sort("symbol", "date")
        assert got.equals(frames["daily_lake"].sort("symbol", "date")), tag
        after |= times
    out["times"] |= after
    out["disk_frag"] = sum(1 for _ in (tmp / "fragmented" / "files").rglob("*.parquet"))
    log("after compact: " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in after.items()))
    return out


def writes(args: argparse.Namespace, tmp: Path, built: dict[str, Any], log: Callable[[str], None]) -> dict:
    """``Warehouse.write`` of 1M rows into an empty lake (--runs times), and one upsert into the big lake."""
    symbols, days = built["symbols"], built["days"]
    out: dict[str, Any] = {"write": []}
    later = trading_days(days[-1] + timedelta(days=1), days[-1] + timedelta(days=30))
    fresh = bars(symbols, [m for d in later[:2] for m in day_minutes(d)][:500], seed=1)
    for i in range(args.runs):
        with Warehouse(warehouse=tmp / f"empty{i}") as wh:
            wh.con  # noqa: B018
            took, res = clock(functools.partial(wh.write, NAME, fresh, Run.new("bench")))
        assert res.rows == fresh.height and res.replaced == 0, res
        out["write"].append(took)
        shutil.rmtree(tmp / f"empty{i}")
    out["write_rows"] = fresh.height
    # the last 250 stored bars of each symbol again (other values), then 250 new minutes
    tail = day_minutes(days[-1])[-250:] + [m for d in later[:1] for m in day_minutes(d)][:250]
    frame = bars(symbols, tail, seed=99)
    with Warehouse(warehouse=tmp / "lake") as wh:
        wh.con  # noqa: B018
        run = Run.new("bench")
        out["upsert"], res = clock(lambda: wh.write(NAME, frame, run))
    assert res.rows == frame.height and res.replaced == len(symbols) * 250, res
    con = connect(read_only=True, warehouse=tmp / "lake")
    total = scalar(con, f"SELECT count(*) FROM {NAME}")
    dup = scalar(
        con, f"SELECT count(*) FROM (SELECT symbol, ts FROM {NAME} GROUP BY ALL HAVING count(*) > 1)"
    )
    con.close()
    assert total == built["rows"] + len(symbols) * 250 and dup == 0, (total, dup)
    out["upsert_rows"], out["replaced"] = frame.height, res.replaced
    log(f"write {statistics.median(out['write']):.2f} s, upsert {out['upsert']:.2f} s")
    return out


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        gib = int(mem.split()[1]) / 2**20
    except (OSError, StopIteration):
        gib = 0.0
    return f"{os.cpu_count()} cores ({cpu}), {gib:.0f} GiB RAM"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=13, help=f"trading days ({DAY_BARS} bars each)")
    ap.add_argument("--repeat", type=int, default=7, help="executions of each query (median)")
    ap.add_argument("--runs", type=int, default=3, help="writes into an empty lake (median)")
    ap.add_argument(
        "--fragment", type=int, default=400, help="writes that fill the fragmented lake (a few symbols each)"
    )
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 11, 20), help="first trading day")
    ap.add_argument("--quick", action="store_true", help="200 symbols, 4 days, 3 repeats; prints only")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the temporary lakes")
    ap.add_argument(
        "--out", type=Path, default=None, help="results file (default bench/results/warehouse.md)"
    )
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.days, args.repeat, args.runs = min(args.symbols, 200), min(args.days, 4), 3, 1
        args.fragment = min(args.fragment, 40)
    out = args.out or (None if args.quick else Path(__file__).parent / "results" / "warehouse.md")
    if args.tmp:
        args.tmp.mkdir(parents=True, exist_ok=True)

    def log(s: str) -> None:
        print(s, flush=True)

    load0 = os.getloadavg()
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_wh_", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        built = build(args, tmp, log)
        result = measure(args, tmp, built, log)
        result |= writes(args, tmp, built, log)
    total = time.perf_counter() - t_all
    text = report(args, built, result, total, load0, os.getloadavg())
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")


def report(
    args: argparse.Namespace,
    built: dict[str, Any],
    r: dict[str, Any],
    total: float,
    load0: tuple[float, ...],
    load1: tuple[float, ...],
) -> str:
    t = r["times"]

    def med(key: str) -> float:
        return statistics.median(t[key])

    def s(key: str) -> str:
        v = med(key)
        return f"{v:.2f} s" if v >= 1 else f"{v * 1000:.0f} ms"

    def x(a: str, b: str) -> str:
        return f"{med(a) / med(b):.2f}x"

    def runs(key: str) -> str:
        return ", ".join(f"{v * 1000:.0f}" for v in t[key])

    def row(label: str, key: str, base: str) -> str:
        bold = "**" if label.startswith("**") else ""
        return f"| {label} | {bold}{s(key)}{bold} | {bold}{x(key, base)}{bold} | {runs(key)} |"

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    rows, month = built["rows"], f"{r['month']:%Y-%m}"
    fl, ff, fc = r["files_lake"], r["files_frag"], r["files_compacted"]
    flc, sorted_lake = r["files_lake_compacted"], r["compact_result_lake"]
    per_write = built["fragment_symbols"]
    daily_ok = med("daily_lake") <= 1.5 * med("daily_parquet") and med("daily_lake") <= 0.5
    cores = os.cpu_count() or 1
    busy = max(load0[0], load1[0]) > cores + 1
    lines = [
        "# bench/warehouse.py",
        "",
        f"`{NAME}`: {rows:,} synthetic 1-minute bars of {args.symbols:,} symbols over {len(built['days'])} "
        f"KRX trading days from {built['days'][0]} ({DAY_BARS} bars a day: 09:01-15:20 and the 15:30 "
        f"closing auction), the same rows in four stores, queried from one read-only `warehouse.connect()`. "
        f"Each figure is the median of {args.repeat} executions, the queries interleaved, to a Polars frame; "
        "every ratio compares figures of this one run. Files warm in the page cache. "
        f"Python {platform.python_version()}, duckdb {duckdb.__version__}, polars {pl.__version__}; "
        f"{machine()}, {platform.system()} {platform.release()}. Load average {load0[0]:.1f} at the start, "
        f"{load1[0]:.1f} at the end; the whole benchmark took {total / 60:.1f} min.",
        "",
        *(
            [
                f"The load average was above {cores + 1} ({cores} cores + this benchmark): other work "
                "shared the CPUs, so absolute times are inflated and noisy (per-execution times in the "
                "last column); ratios of queries interleaved in one run are the steadier numbers.",
                "",
            ]
            if busy
            else []
        ),
        f"Daily OHLCV of every symbol and day ({r['daily_out']:,} rows out): "
        f"`{AGG.format(day='date', source='...')}`",
        "",
        "| store | daily aggregate | vs plain Parquet | ms per execution |",
        "|---|---|---|---|",
        row("**the lake** (DuckLake, `GROUP BY symbol, date`)", "daily_lake", "daily_parquet"),
        row("plain DuckDB table (the same rows, sorted)", "daily_native", "daily_parquet"),
        row(
            f"plain hive-partitioned Parquet, {built['parquet_files']} files",
            "daily_parquet",
            "daily_parquet",
        ),
        row("the lake, the day as `kst_date(ts)` (the macro)", "daily_macro", "daily_parquet"),
        row("the lake, the day as `ts::DATE` (ICU, Asia/Seoul)", "daily_icu", "daily_parquet"),
        row(
            f"the lake fragmented ({built['fragment_writes']:,} writes of {per_write} symbols, "
            f"{ff['data']:,} files)",
            "daily_frag",
            "daily_parquet",
        ),
        row(f"the same after `kwh compact` ({fc['data']:,} files)", "daily_compacted", "daily_parquet"),
        row(f"the lake after `kwh compact` ({flc['data']:,} files)", "daily_lake_compacted", "daily_parquet"),
        "",
        f"One symbol ({r['symbol']}) over one calendar month ({month}, {r['month_rows']:,} rows): "
        f"`{MONTH.format(source='...')}`",
        "",
        "| store | symbol-month | vs the lake | ms per execution |",
        "|---|---|---|---|",
        row("**the lake**", "month_lake", "month_lake"),
        row("`warehouse.read(dataset, [symbol], start, end)` on the lake", "month_read", "month_lake"),
        row("plain DuckDB table", "month_native", "month_lake"),
        row("plain hive-partitioned Parquet", "month_parquet", "month_lake"),
        row(f"the lake fragmented ({ff['data']:,} files)", "month_frag", "month_lake"),
        row(f"the same after `kwh compact` ({fc['data']:,} files)", "month_compacted", "month_lake"),
        row(f"the lake after `kwh compact` ({flc['data']:,} files)", "month_lake_compacted", "month_lake"),
        "",
        "Targets (issue 13):",
        "",
        f"- daily aggregate within 1.5x of plain Parquet and <= 0.5 s: {verdict(daily_ok)} "
        f"({s('daily_lake')}, {x('daily_lake', 'daily_parquet')});",
        f"- one symbol-month <= 50 ms: {verdict(med('month_lake') <= 0.05)} as written a day per file "
        f"({s('month_lake')}; through `warehouse.read` {s('month_read')}); "
        f"{verdict(med('month_lake_compacted') <= 0.05)} after `kwh compact` sorted the closed months "
        f"by symbol ({s('month_lake_compacted')}, {x('month_lake_compacted', 'month_parquet')} "
        "plain Parquet).",
        "",
        "Files: the lake (one write per trading day) holds "
        f"{fl['data']} data files ({fl['mb']:.0f} MB), {fl['delete']} delete files. The fragmented lake "
        f"held {ff['data']:,} data files ({ff['mb']:.0f} MB) after {built['fragment_writes']:,} writes "
        f"of {per_write} symbols each "
        f"({built['fragment_build']:.0f} s); `Warehouse.compact(older_than=0)` "
        f"(what `kwh compact --older-than 0s` runs) took {r['compact']:.1f} s and left "
        f"{fc['data']} data files ({fc['mb']:.0f} MB), "
        f"{r['disk_frag']} Parquet files on disk ({r['compact_result']}). On the lake written a day at a "
        f"time it took {r['compact_lake']:.1f} s, rewrote {sorted_lake['partitions_sorted']} closed month "
        f"partitions sorted by symbol and time ({sorted_lake['partition_files_before']} files -> "
        f"{sorted_lake['partition_files_after']}) and left {flc['data']} data files ({flc['mb']:.0f} MB).",
        "",
        f"Writes, as before: `Warehouse.write` of {r['write_rows']:,} rows into an empty lake "
        f"{statistics.median(r['write']):.2f} s (median of {len(r['write'])}); one upsert of "
        f"{r['upsert_rows']:,} rows ({r['replaced']:,} replacing stored keys) into the {rows:,}-row lake "
        f"{r['upsert']:.2f} s (one measurement). Building the lake took {built['build']:.1f} s for "
        f"{len(built['days'])} writes (+ {built['gen']:.1f} s generating the frames).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
