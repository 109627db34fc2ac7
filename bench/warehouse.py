"""Benchmark: the warehouse API on ``stock_bars_minute`` (DuckLake, SQLite catalog).

    .venv/bin/python bench/warehouse.py [--runs 5] [--symbols 2000] [--days 13] [--quick] [--tmp DIR]

Every run starts from fresh lakes in a temporary folder (``Warehouse(warehouse=tmpdir)``)
and measures, on synthetic minute bars of ``--symbols`` symbols on real KRX session
minutes (``schemas.calendar``) built with vectorized Polars:

1. write: ``wh.write`` of ``--symbols`` x 500 bars (1M rows) into an empty lake;
2. upsert: ``wh.write`` of ``--symbols`` x 500 bars into a table of ``--symbols`` x
   ``--days`` x 390 bars (10.14M rows); the first half of each symbol's bars replace
   its last 250 stored bars (other values), the second half are the next 250 minutes.
   The table is built first, one trading day per write (reported, not part of the
   upsert's time); afterwards the row count, duplicate keys and the new run id are
   checked (not timed);
3. aggregate: daily OHLCV of every symbol (group by symbol, ``ts::DATE``) over the
   table on ``warehouse.connect(read_only=True)``, to a Polars frame; the same SQL over
   one plain Parquet file of the same rows (``read_parquet``) gives the ratio
   lake/plain, the overhead of DuckLake;
4. point: one symbol over one calendar month (the first day's), to a Polars frame.

Queries run ``--repeat`` times per run (their median is the run's value, lake and
plain interleaved); each number reported is the median over ``--runs`` runs. Writes
``bench/results/warehouse.md`` (``--quick``: a small run that only prints, unless
``--out`` is given).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

# Run as a script, this file's folder is first on sys.path and the file's name hides the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow  # noqa: E402

from schemas.calendar import KST, SESSION_BARS, session_minutes, trading_days  # noqa: E402
from warehouse import Run, Warehouse, connect, dataset  # noqa: E402

NAME = "stock_bars_minute"
DS = dataset(NAME)
SCHEMA = pl.Schema({c: t for c, t in DS.schema.items() if c != "run_id"})
KEY = ", ".join(DS.key)

AGG = (
    "SELECT symbol, {day} AS date, arg_min(open, ts) AS open, max(high) AS high, min(low) AS low, "
    "arg_max(close, ts) AS close, sum(volume) AS volume FROM {source} GROUP BY symbol, {day}"
)
DAY = "ts::DATE"  # TIMESTAMPTZ -> DATE in the session time zone (Asia/Seoul): an ICU conversion per row
DAY_NO_ICU = "make_timestamp(epoch_us(ts) + 32400000000)::DATE"  # KST is UTC+9 all year (no DST since 1988)
POINT = f"SELECT * FROM {NAME} WHERE symbol = ? AND ts >= ? AND ts < ?"


# --------------------------------------------------------------------------- data


def minute_grid(start: date, bars: int) -> list[datetime]:
    """The first ``bars`` session minutes (bar end labels, KST) from ``start`` on."""
    out: list[datetime] = []
    lo = start
    while len(out) < bars:
        hi = date.fromordinal(lo.toordinal() + 60)
        for d in trading_days(lo, hi):
            out += session_minutes(d)
        lo = date.fromordinal(hi.toordinal() + 1)
    return out[:bars]


def bars(symbols: pl.Series, minutes: list[datetime], seed: int) -> pl.DataFrame:
    """Every symbol x every minute, symbol-major; plausible OHLCV from a hash of the row number."""
    grid = pl.DataFrame({"symbol": symbols}).join(
        pl.DataFrame({"ts": pl.Series(minutes, dtype=SCHEMA["ts"])}), how="cross"
    )
    h = pl.col("h")
    step = (h % 21).cast(pl.Int64) - 10
    prev = pl.col("close") - pl.col("step")
    frame = (
        grid.with_columns(h=pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed))
        .with_columns(step=step)
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


def clock(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return row[0]


def lake_files(con: duckdb.DuckDBPyConnection, root: Path) -> dict[str, int]:
    """Parquet files: the table's data and delete files in the current snapshot, and all on disk."""
    files, deletes, size = con.execute(
        "SELECT file_count, delete_file_count, file_size_bytes FROM ducklake_table_info('lake') "
        "WHERE table_name = ?",
        [NAME],
    ).fetchone() or (0, 0, 0)
    on_disk = sum(1 for _ in (root / "files").rglob("*.parquet"))
    table_disk = sum(1 for _ in (root / "files" / "main" / NAME).rglob("*.parquet"))
    return {"data": files, "delete": deletes, "mb": size / 1e6, "table_disk": table_disk, "disk": on_disk}


def check_upsert(con: duckdb.DuckDBPyConnection, expected: int, run_id: str, upserted: int) -> None:
    rows = scalar(con, f"SELECT count(*) FROM {NAME}")
    dup = scalar(con, f"SELECT count(*) FROM (SELECT {KEY} FROM {NAME} GROUP BY ALL HAVING count(*) > 1)")
    mine = scalar(con, f"SELECT count(*) FROM {NAME} WHERE run_id = ?", [run_id])
    assert rows == expected, f"{rows:,} rows after the upsert, expected {expected:,}"
    assert dup == 0, f"{dup:,} duplicate keys after the upsert"
    assert mine == upserted, f"{mine:,} rows carry the upsert's run id, expected {upserted:,}"


# --------------------------------------------------------------------------- one run


def timed_queries(
    con: duckdb.DuckDBPyConnection, queries: dict[str, tuple[str, list[Any]]], repeat: int
) -> tuple[dict[str, float], dict[str, pl.DataFrame]]:
    """Each query ``repeat`` times to Polars, interleaved; the median time of each and its last frame."""
    times: dict[str, list[float]] = defaultdict(list)
    frames: dict[str, pl.DataFrame] = {}
    for _ in range(repeat):
        for label, (sql, params) in queries.items():
            took, frames[label] = clock(lambda: con.execute(sql, params).pl())  # noqa: B023 - called at once
            times[label].append(took)
    return {label: statistics.median(v) for label, v in times.items()}, frames


def run_once(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n_sym, half = args.symbols, args.upsert_bars // 2
    symbols = (pl.int_range(n_sym, eager=True) * 3 + 5_930).cast(pl.String).str.zfill(6).alias("symbol")
    base_bars = args.days * SESSION_BARS
    grid = minute_grid(args.start, max(base_bars + args.upsert_bars - half, args.write_bars))
    days = sorted({m.date() for m in grid[:base_bars]})

    # 1. write into an empty lake
    frame = bars(symbols, grid[: args.write_bars], seed=1)
    with Warehouse(warehouse=tmp / "empty") as wh:
        wh.con  # noqa: B018 - opens the lake and creates the meta tables, not timed
        run = Run.new("bench")
        out["write"], res = clock(lambda: wh.write(NAME, frame, run))
    assert res.rows == frame.height and res.replaced == 0, res
    out["write_rows"] = frame.height
    shutil.rmtree(tmp / "empty")
    log(f"  1 write {frame.height:,} rows: {out['write']:.2f} s")

    # the base table, one trading day per write (timed apart, not part of any result but 2a)
    lake = tmp / "lake"
    build = 0.0
    with Warehouse(warehouse=lake) as wh:
        wh.con  # noqa: B018
        run = Run.new("bench")
        for d in days:
            day = bars(symbols, session_minutes(d), seed=d.toordinal())
            took, _ = clock(wh.write, NAME, day, run)
            build += took
    out["build"], out["build_rows"], out["build_writes"] = build, n_sym * base_bars, len(days)
    log(f"  2a build {out['build_rows']:,} rows in {len(days)} writes: {build:.2f} s")

    # 3. and 4. on the base table, read-only
    out["connect"], ro = clock(lambda: connect(read_only=True, warehouse=lake))
    out["files"] = lake_files(ro, lake)
    versions = ro.execute(
        "SELECT extension_name, extension_version FROM duckdb_extensions() "
        "WHERE extension_name IN ('ducklake', 'sqlite_scanner') ORDER BY 1"
    ).fetchall()
    out["versions"] = ", ".join(f"{n} {v}" for n, v in versions)
    plain = tmp / "plain.parquet"  # the same rows in the same order, by the same engine
    out["export"], _ = clock(lambda: ro.execute(f"COPY (SELECT * FROM {NAME}) TO '{plain}' (FORMAT parquet)"))
    symbol = symbols[n_sym // 2]
    month = days[0].replace(day=1)
    next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    midnight = datetime.min.time()
    window = [symbol, datetime.combine(month, midnight, KST), datetime.combine(next_month, midnight, KST)]
    queries = {
        "agg_lake": (AGG.format(day=DAY, source=NAME), []),
        "agg_plain": (AGG.format(day=DAY, source=f"read_parquet('{plain}')"), []),
        "agg_no_icu": (AGG.format(day=DAY_NO_ICU, source=NAME), []),
        "point": (POINT, window),
    }
    medians, frames = timed_queries(ro, queries, args.repeat)
    out |= medians
    ro.close()
    plain.unlink()
    want = n_sym * len(days)
    ref = frames["agg_plain"].sort("symbol", "date")
    assert ref.height == want, f"aggregate gave {ref.height:,} rows, expected {want:,}"
    assert frames["agg_lake"].sort("symbol", "date").equals(ref), "lake and plain aggregates differ"
    assert frames["agg_no_icu"].sort("symbol", "date").equals(ref), "the two day expressions disagree"
    point_rows = sum(1 for m in grid[:base_bars] if m.date().replace(day=1) == month)
    assert frames["point"].height == point_rows, f"query 4 gave {frames['point'].height}, want {point_rows}"
    out |= {"agg_out": want, "point_rows": point_rows, "month": month, "symbol": symbol}
    log(
        f"  3 aggregate lake {out['agg_lake']:.2f} s, plain {out['agg_plain']:.2f} s, "
        f"no-ICU day {out['agg_no_icu']:.2f} s; 4 point {out['point'] * 1000:.0f} ms"
    )

    # 2. upsert: each symbol's last `half` stored bars again (other values), then the next bars
    frame = bars(symbols, grid[base_bars - half : base_bars + args.upsert_bars - half], seed=99)
    with Warehouse(warehouse=lake) as wh:
        wh.con  # noqa: B018
        reads = [
            clock(lambda: wh.read(NAME, [symbol], month, date.fromordinal(next_month.toordinal() - 1)))
            for _ in range(args.repeat)
        ]
        out["read"] = statistics.median(t for t, _ in reads)
        assert reads[-1][1].height == point_rows
        run = Run.new("bench")
        out["upsert"], res = clock(lambda: wh.write(NAME, frame, run))
    assert res.rows == frame.height and res.replaced == n_sym * half, res
    out["upsert_rows"], out["replaced"] = frame.height, res.replaced
    out["after_rows"] = n_sym * (base_bars + args.upsert_bars - half)
    ro = connect(read_only=True, warehouse=lake)
    check_upsert(ro, out["after_rows"], run.id, frame.height)
    out["files_after"] = lake_files(ro, lake)
    log(
        f"  2 upsert {frame.height:,} rows ({res.replaced:,} replaced): {out['upsert']:.2f} s; "
        f"{out['after_rows']:,} rows, no duplicate keys"
    )

    # 3. and 4. again after the upsert (merge-on-read: the replaced rows are in a delete file)
    after = {"agg_after": queries["agg_lake"], "point_after": queries["point"]}
    medians, _ = timed_queries(ro, after, args.repeat)
    out |= medians
    ro.close()
    shutil.rmtree(lake)
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
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--symbols", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=13, help="trading days in the base table (390 bars each)")
    ap.add_argument("--write-bars", type=int, default=500, help="bars per symbol in test 1")
    ap.add_argument(
        "--upsert-bars", type=int, default=500, help="bars per symbol in the upsert (half overlap)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="query executions per run (median)")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 11, 20), help="first trading day")
    ap.add_argument("--quick", action="store_true", help="200 symbols, 4 days, 3 runs; prints only")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the temporary lakes")
    ap.add_argument(
        "--out", type=Path, default=None, help="results file (default bench/results/warehouse.md)"
    )
    args = ap.parse_args()
    if args.quick:
        args.symbols, args.days, args.runs = min(args.symbols, 200), min(args.days, 4), min(args.runs, 3)
    if args.upsert_bars // 2 > args.days * SESSION_BARS:
        ap.error("the upsert's overlap is longer than the table")
    out = args.out or (None if args.quick else Path(__file__).parent / "results" / "warehouse.md")
    if args.tmp:
        args.tmp.mkdir(parents=True, exist_ok=True)

    load0 = os.getloadavg()
    t_all = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_wh_", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}", flush=True)
            run_dir = tmp / f"run{i}"
            run_dir.mkdir()
            results.append(run_once(args, run_dir, lambda s: print(s, flush=True)))
            shutil.rmtree(run_dir)
    total = time.perf_counter() - t_all
    load1 = os.getloadavg()

    text = report(args, results, total, load0, load1)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")


def report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    total: float,
    load0: tuple[float, ...],
    load1: tuple[float, ...],
) -> str:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    def row(tag: str, what: str, rows: int | None, key: str, ratio: str = "", rate: bool = True) -> str:
        s = med(key)
        digits = 2 if s >= 1 else 3
        per_run = ", ".join(f"{r[key]:.{digits}f}" for r in results)
        speed = f"{rows / s:,.0f}" if rows and rate else ""
        count = f"{rows:,}" if rows else ""
        return f"| {tag} | {what} | {count} | {s:.{digits}f} | {speed} | {ratio} | {per_run} |"

    cores = os.cpu_count() or 1
    busy = (
        [
            f"The load average was above {cores + 1} ({cores} cores + this benchmark): other processes "
            "shared the CPUs, so absolute times are inflated and noisy (see the per-run columns); ratios "
            "of queries run side by side in one run (3/3p, 3f/3) are the steadier numbers.",
            "",
        ]
        if max(load0[0], load1[0]) > cores + 1
        else []
    )
    r0 = results[0]
    f0, f1 = r0["files"], r0["files_after"]
    base, new = r0["build_rows"], r0["upsert_rows"] - r0["replaced"]
    lake_s = med("agg_lake")
    month = f"{r0['month']:%Y-%m}"
    lines = [
        "# bench/warehouse.py",
        "",
        f"`{NAME}` in DuckLake (SQLite catalog, Parquet on the local disk), synthetic 1-minute bars of "
        f"{args.symbols:,} symbols on KRX session minutes from {args.start}. Median of {args.runs} runs, "
        f"each on fresh lakes in a temp dir; a query's value in a run is the median of {args.repeat} "
        "executions. "
        f"Python {platform.python_version()}, duckdb {duckdb.__version__} ({r0['versions']}), "
        f"polars {pl.__version__}, pyarrow {pyarrow.__version__}; {machine()}, "
        f"{platform.system()} {platform.release()}. Load average {load0[0]:.1f} at the start, "
        f"{load1[0]:.1f} at the end; the whole benchmark took {total / 60:.1f} min.",
        "",
        *busy,
        "| # | measure | rows | median s | rows/s | ratio | runs (s) |",
        "|---|---|---|---|---|---|---|",
        row("1", "`wh.write` into an empty lake", r0["write_rows"], "write"),
        row(
            "2",
            f"`wh.write` upsert into {base:,} rows: {r0['replaced']:,} replaced + {new:,} new",
            r0["upsert_rows"],
            "upsert",
            f"{med('upsert') / med('write'):.2f}x of 1",
        ),
        row("2a", f"setup of 2 (not in it): {r0['build_writes']} writes of one trading day", base, "build"),
        row(
            "3",
            f"daily OHLCV aggregate on the lake -> Polars ({r0['agg_out']:,} rows out)",
            base,
            "agg_lake",
            f"{lake_s / med('agg_plain'):.2f}x lake/plain",
        ),
        row("3p", "the same SQL on one plain Parquet file (`read_parquet`)", base, "agg_plain", "1.00x"),
        row(
            "3f",
            f"3 with the day as `{DAY_NO_ICU}`",
            base,
            "agg_no_icu",
            f"{med('agg_no_icu') / lake_s:.2f}x of 3",
        ),
        row(
            "4",
            f"symbol {r0['symbol']}, {month}: `SELECT *` -> Polars",
            r0["point_rows"],
            "point",
            rate=False,
        ),
        row(
            "4r",
            f"the same rows by `wh.read(..., [symbol], {month}-01, end of month)`",
            r0["point_rows"],
            "read",
            f"{med('read') / med('point'):.2f}x of 4",
            rate=False,
        ),
        row(
            "3u",
            f"3 after the upsert ({f1['delete']} delete file, merge on read)",
            r0["after_rows"],
            "agg_after",
            f"{med('agg_after') / lake_s:.2f}x of 3",
        ),
        row("4u", "4 after the upsert", r0["point_rows"], "point_after", rate=False),
        row("-", "`warehouse.connect(read_only=True)`", None, "connect", rate=False),
        "",
        "What the numbers mean:",
        "",
        f"- **1**: one `wh.write` call with {r0['write_rows']:,} rows ({args.symbols:,} symbols x "
        f"{args.write_bars} bars) into a lake that has no `{NAME}` table yet: checks and sort in Polars, "
        "table creation, the (empty) delete, the insert, coverage and ledger rows, commit. The lake is "
        "already open (meta tables created); frame generation is not timed.",
        f"- **2**: one `wh.write` of {r0['upsert_rows']:,} rows into the {base:,}-row table: per symbol, its "
        f"last {r0['replaced'] // args.symbols} stored bars again with other values, then the next "
        f"{new // args.symbols} minutes. The write's DELETE finds and removes the {r0['replaced']:,} old "
        "rows, the INSERT adds all. Checked afterwards (not timed), every run: "
        f"{r0['after_rows']:,} rows ({base:,} + {new:,}), no duplicate ({KEY}), "
        f"{r0['upsert_rows']:,} rows with the upsert's run id.",
        f"- **2a**: the base table for 2 to 4, {args.symbols:,} symbols x {args.days} trading days x "
        f"{SESSION_BARS} bars, written one day per `wh.write` (the sum of those calls).",
        "- **3**: `" + AGG.format(day=DAY, source=NAME) + "` on `warehouse.connect(read_only=True)`, "
        "to a Polars frame. **3p** runs the same SQL over `read_parquet` of one file holding the same rows "
        "(a `COPY` of the table by the same connection: same order, Snappy, 122,880-row row groups; "
        f"{med('export'):.1f} s, not timed), so **3/3p** is the cost of reading through DuckLake. **3f** "
        "computes the KST day without DuckDB's ICU time-zone cast (KST has had no DST since 1988): same "
        "result, checked every run.",
        f"- **4**: `{POINT}` for one symbol and the calendar month of the first day ({month}, "
        f"{r0['point_rows']:,} rows), to Polars. **4r** gets the same rows through `Warehouse.read`.",
        "- **3u/4u**: 3 and 4 again after the upsert, when the replaced rows are masked by a delete file.",
        "",
        f"Parquet files of `{NAME}` before the upsert: {f0['data']} data files ({f0['mb']:.0f} MB) and "
        f"{f0['delete']} delete files in the current snapshot; {f0['disk']} Parquet files under the lake's "
        "`files/` in all (the others are `meta.*` ledger and coverage files). After the upsert: "
        f"{f1['data']} data and {f1['delete']} delete files ({f1['table_disk']} files of the table on disk, "
        f"{f1['disk']} in all).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
