"""Benchmark: per-symbol writes into the lake as its history grows (``stock_bars_daily``).

    .venv/bin/python bench/writes.py [--runs 3] [--symbols 2000] [--days 500] [--group 20] [--quick]

1M rows (2,000 symbols x 500 trading days of daily bars, built with vectorized Polars)
written as 2,000 per-symbol jobs, each run into fresh folders:

1. **per-symbol commits**: one ``Warehouse.write`` per symbol (one transaction each),
   as the backfill does today; each call timed, so the first and last 10 % of the
   writes compare the cost on a new lake and on a lake holding the others' history;
2. **grouped commits**: the same jobs committed ``--group`` symbols at a time
   (``Warehouse.commit`` of one ``Rows`` part per symbol: one delete, one insert and
   one coverage merge per commit), as a writer off the fetch path would;
3. **plain DuckDB**: the same 2,000 jobs into a table of a DuckDB database file, each a
   transaction deleting the frame's keys and inserting the frame (per symbol, and
   grouped like 2);
4. **plain Parquet**: each job's frame as its own Parquet file (``write_parquet``).

``--ab N`` measures only this: per-symbol writes of N new symbols, each into a new
lake and into one holding the other symbols' files, in alternating order (so both
see the same load on the machine); the full run's first-versus-last tenth is only
as steady as the machine's load over its half hour.

``--memory N`` measures only peak memory, N runs of each write interleaved, each in a
fresh child process that builds the frame and the target, resets the kernel's
resident-set high-water mark (``/proc/self/clear_refs``) and reads it back (``VmHWM``)
after the write: one ``Warehouse.write`` of all 1M rows, the same rows as grouped
``Warehouse.commit``s, one plain DuckDB ``INSERT`` and one ``write_parquet``, against the
frame's ``estimated_size``; it replaces the memory section of ``bench/results/writes.md``.

Ratios are of numbers measured in the same run; each number reported is the median
over ``--runs``. Writes ``bench/results/writes.md`` (``--quick``: a small run that only
prints).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - first: takes bench/ off sys.path (bench/warehouse.py hides the package)
import duckdb
import polars as pl

from schemas.calendar import trading_days
from warehouse import Commit, Rows, Run, Warehouse, dataset
from warehouse.coverage import spans_of

NAME = "stock_bars_daily"
DS = dataset(NAME)
SCHEMA = pl.Schema({c: t for c, t in DS.schema.items() if c != "run_id"})
KEY = ", ".join(DS.key)


def bars(symbols: int, days: int) -> pl.DataFrame:
    """``symbols`` x the last ``days`` trading days to 2025-12-30, symbol-major; plausible OHLCV."""
    grid = trading_days(date(2010, 1, 4), date(2025, 12, 30))[-days:]
    frame = (
        pl.DataFrame({"symbol": [f"{i:06d}" for i in range(symbols)]})
        .join(pl.DataFrame({"date": grid}, schema={"date": pl.Date}), how="cross")
        .with_columns(h=pl.int_range(pl.len(), dtype=pl.UInt64).hash(7))
        .with_columns(close=(10_000 + (pl.col("h") % 2_001).cast(pl.Int64) - 1_000))
        .select(
            "symbol",
            "date",
            adjusted=pl.lit(True),
            open=pl.col("close") - 5,
            high=pl.col("close") + 10,
            low=pl.col("close") - 10,
            close="close",
            volume=(pl.col("h") // 7 % 1_000_000).cast(pl.Int64),
            turnover=(pl.col("h") // 7 % 1_000_000).cast(pl.Int64) * pl.col("close"),
        )
    )
    assert frame.schema == SCHEMA, (frame.schema, SCHEMA)
    return frame


def jobs(frame: pl.DataFrame) -> list[pl.DataFrame]:
    return frame.partition_by("symbol", maintain_order=True)


def clock(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def tenths(times: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last 10 % of ``times``."""
    k = max(1, len(times) // 10)
    return statistics.fmean(times[:k]), statistics.fmean(times[-k:])


def groups(parts: list[pl.DataFrame], size: int) -> list[list[pl.DataFrame]]:
    return [parts[i : i + size] for i in range(0, len(parts), size)]


# --------------------------------------------------------------------------- the measures


def lake_per_symbol(folder: Path, parts: list[pl.DataFrame]) -> dict[str, Any]:
    with Warehouse(warehouse=folder) as wh:
        run = Run.new("bench")
        wh.ensure(DS)
        times = [clock(lambda p=p: wh.write(NAME, p, run)) for p in parts]
        rows = wh.sql(f"SELECT count(*) AS n FROM {NAME}")["n"][0]
        cov = wh.sql("SELECT count(*) AS n FROM meta.coverage")["n"][0]
        files = wh.sql(f"SELECT file_count FROM ducklake_table_info('lake') WHERE table_name = '{NAME}'")
    first, last = tenths(times)
    return {
        "total": sum(times),
        "first": first,
        "last": last,
        "rows": int(rows),
        "coverage_rows": int(cov),
        "files": int(files["file_count"][0]),
    }


def lake_grouped(folder: Path, parts: list[pl.DataFrame], size: int) -> dict[str, Any]:
    with Warehouse(warehouse=folder) as wh:
        run = Run.new("bench")
        wh.ensure(DS)
        times = [
            clock(lambda g=g: wh.commit(Commit(run, [Rows(NAME, p) for p in g]))) for g in groups(parts, size)
        ]
        rows = wh.sql(f"SELECT count(*) AS n FROM {NAME}")["n"][0]
        dup = wh.sql(f"SELECT count(*) AS n FROM (SELECT {KEY} FROM {NAME} GROUP BY ALL HAVING count(*) > 1)")
        files = wh.sql(f"SELECT file_count FROM ducklake_table_info('lake') WHERE table_name = '{NAME}'")
    first, last = tenths(times)
    return {
        "total": sum(times),
        "first": first,
        "last": last,
        "rows": int(rows),
        "dups": int(dup["n"][0]),
        "files": int(files["file_count"][0]),
    }


def plain_duckdb(folder: Path, parts: list[pl.DataFrame], size: int) -> float:
    con = duckdb.connect(str(folder / "plain.duckdb"))
    cols = ", ".join(
        f"{c} {t}" for c, t in zip(SCHEMA, ("VARCHAR", "DATE", "BOOLEAN", *["BIGINT"] * 6), strict=True)
    )
    con.execute(f"CREATE TABLE {NAME} ({cols}, run_id VARCHAR)")

    def put(batch: list[pl.DataFrame]) -> None:
        frame = pl.concat(batch).with_columns(run_id=pl.lit("bench")).sort("symbol", "date")
        con.register("_incoming", frame.to_arrow())
        con.execute("BEGIN")
        con.execute(f"DELETE FROM {NAME} WHERE ({KEY}) IN (SELECT {KEY} FROM _incoming)")
        con.execute(f"INSERT INTO {NAME} BY NAME SELECT * FROM _incoming")
        con.execute("COMMIT")
        con.unregister("_incoming")

    took = sum(clock(lambda g=g: put(g)) for g in groups(parts, size))
    con.close()
    return took


def plain_parquet(folder: Path, parts: list[pl.DataFrame]) -> float:
    out = folder / "parquet"
    out.mkdir()
    return sum(clock(lambda i=i, p=p: p.write_parquet(out / f"{i:05d}.parquet")) for i, p in enumerate(parts))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_growth(fn: Callable[[], Any]) -> int:
    """How far the resident set's high-water mark rose above its size at the start while ``fn`` ran.

    The kernel's mark (``VmHWM``) is reset first (``/proc/self/clear_refs``): exact, not sampled,
    and it counts what Polars, Arrow and DuckDB allocate outside Python.
    """
    Path("/proc/self/clear_refs").write_text("5")
    base = _status("VmRSS")
    fn()
    return _status("VmHWM") - base


MEMORY_KINDS = {
    "lake": "one `Warehouse.write` of all the rows",
    "grouped": "the same rows as per-symbol parts, `Warehouse.commit` of {group} symbols at a time",
    "duckdb": "plain DuckDB table: one `INSERT` of the frame (registered as Arrow)",
    "parquet": "plain Parquet: one `write_parquet` of the frame",
}


def memory_child(kind: str, symbols: int, days: int, group: int, folder: str) -> None:
    """In a fresh process: build the frame and the target, then write once; print the peak growth."""
    frame = bars(symbols, days)
    size = frame.estimated_size()
    if kind in ("lake", "grouped"):
        wh = Warehouse(warehouse=folder)
        wh.ensure(DS)
        run = Run.new("bench")
        wh.write(NAME, bars(1, 5).with_columns(symbol=pl.lit("999999")), run)  # first-use costs
        if kind == "lake":
            growth = peak_growth(lambda: wh.write(NAME, frame, run))
        else:
            batches = groups(jobs(frame), group)
            growth = peak_growth(
                lambda: [wh.commit(Commit(run, [Rows(NAME, p) for p in g])) for g in batches]
            )
        wh.close()
    elif kind == "duckdb":
        con = duckdb.connect(str(Path(folder) / "plain.duckdb"))
        con.execute(f"CREATE TABLE {NAME} AS SELECT * FROM frame LIMIT 0")

        def insert() -> None:
            con.register("_incoming", frame.to_arrow())
            con.execute(f"INSERT INTO {NAME} SELECT * FROM _incoming")
            con.unregister("_incoming")

        growth = peak_growth(insert)
        con.close()
    else:
        growth = peak_growth(lambda: frame.write_parquet(Path(folder) / "all.parquet"))
    print(json.dumps({"frame": size, "growth": growth}))


def memory(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, int]:
    folder = Path(tempfile.mkdtemp(prefix=f"mem-{kind}-", dir=tmp))
    argv = [sys.executable, __file__, "--memory-child", kind, "--symbols", str(args.symbols)]
    argv += ["--days", str(args.days), "--group", str(args.group), "--tmp", str(folder)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    shutil.rmtree(folder, ignore_errors=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


Measures = dict[str, list[dict[str, int]]]


def memory_runs(args: argparse.Namespace, runs: int, kinds: tuple[str, ...]) -> Measures:
    """Each kind ``runs`` times, interleaved, each in a fresh child process."""
    tmp = Path(tempfile.mkdtemp(prefix="kwh-writes-mem-", dir=args.tmp))
    out: Measures = {k: [] for k in kinds}
    try:
        for i in range(runs):
            for kind in kinds:
                out[kind].append(memory(kind, args, tmp))
                print(f"memory {i + 1}/{runs} {kind}: {out[kind][-1]['growth'] / 2**20:.0f} MB", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def memory_report(args: argparse.Namespace, mem: Measures, meta: dict[str, Any]) -> str:
    frame = statistics.median(m["frame"] for ms in mem.values() for m in ms)
    growth = {k: statistics.median(m["growth"] for m in ms) for k, ms in mem.items()}
    best = min(growth[k] for k in ("duckdb", "parquet") if k in growth)
    rows = args.symbols * args.days
    lines = [
        MEMORY_HEADING,
        "",
        f"`bench/writes.py --memory {len(next(iter(mem.values())))}`: {rows:,} rows of `{NAME}`, "
        f"each write in a fresh process (the frame, {frame / 2**20:.0f} MB `estimated_size`, and the "
        "target built first, the lake after one small write), the kernel's resident-set high-water mark "
        "reset just before the write and read after it; the kinds interleaved, median of the runs, "
        f"at commit {meta['commit']}. Load average {meta['load_start']:.1f} at the start, "
        f"{meta['load_end']:.1f} at the end.",
        "",
        "| write | peak growth | x the frame | / the best plain write | runs, MB |",
        "|---|---|---|---|---|",
    ]
    for k, ms in mem.items():
        label = MEMORY_KINDS[k].format(group=args.group)
        each = ", ".join(f"{m['growth'] / 2**20:.0f}" for m in ms)
        lines.append(
            f"| {label} | {growth[k] / 2**20:.0f} MB | {growth[k] / frame:.2f}x | "
            f"{growth[k] / best:.1f}x | {each} |"
        )
    ok = growth["lake"] <= 2 * frame
    lines += [
        "",
        f"Target (issue 16): <= 2x the frame: {'met' if ok else 'not met'} for one write of all rows.",
        "",
    ]
    return "\n".join([*lines, MEMORY_WHY.strip(), ""])


MEMORY_HEADING = "## Peak memory of a write"
MEMORY_WHY = """
Where it goes (1M rows in one `Warehouse.write`): measured two changes ago, one run
each at load 4-8, conforming the frame and its sorted Arrow copy (`warehouse.writer.sorted_arrow`)
grew the process by 73 MB (1.3x the frame); the rest, about 170 MB, was DuckDB writing the
DuckLake table's Parquet from one `INSERT` of the whole frame (176 MB with `SET threads = 1`;
223 MB written a year partition per `Warehouse.write`, so not the partitions): 255 MB = 4.6x in
all. The peak follows the rows per `INSERT` (ten writes of 100,000 rows: 44 MB; the backfill's
grouped commits: about 11 MB), so `put_rows`/`put_many` insert the rows 100,000 at a time in
the one transaction (`warehouse.writer.INSERT_ROWS`): 126 MB = 2.3x. Then the two copies went:
the rows are no longer sorted into a second frame (`writer.insert_order` gives the order as row
indices and each slice is gathered on its own), and `run_id` is a constant of the `INSERT`, not
a column of a million strings added by `conform` (16 MB alone). Measured phase by phase in a
fresh process: conforming (its duplicate-key check sorts a copy of the key columns) about 30 MB,
the whole write 93-112 MB. What is left is that check, the key match of the `DELETE`, and
DuckDB's buffers for one slice; a file per slice and partition for very large writes, which
`kwh compact` merges, is the cost.
"""


def run_once(
    args: argparse.Namespace, tmp: Path, parts: list[pl.DataFrame], log: Callable[[str], None]
) -> dict:
    out: dict[str, Any] = {}
    for name in ("single", "grouped", "plain"):
        (tmp / name).mkdir()
    out["single"] = lake_per_symbol(tmp / "single", parts)
    log(f"  per-symbol commits {out['single']['total']:.1f} s")
    out["grouped"] = lake_grouped(tmp / "grouped", parts, args.group)
    log(f"  grouped commits {out['grouped']['total']:.1f} s")
    out["duckdb"] = plain_duckdb(tmp / "plain", parts, 1)
    (tmp / "plain" / "plain.duckdb").unlink()
    out["duckdb_grouped"] = plain_duckdb(tmp / "plain", parts, args.group)
    out["parquet"] = plain_parquet(tmp / "plain", parts)
    took = f"plain duckdb {out['duckdb']:.1f} s, grouped {out['duckdb_grouped']:.1f} s"
    log(f"  {took}, parquet {out['parquet']:.1f} s")
    return out


def history_ab(
    parts: list[pl.DataFrame], tmp: Path, rounds: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Per-symbol writes into a new lake and into one holding 2,000 symbols' files, interleaved.

    The long history is made quickly: every symbol but the last ``rounds`` inserted
    straight into the table, a statement (a file per year partition) each, in ten
    transactions, with their coverage in one commit; then ``rounds`` pairs of
    ``Warehouse.write`` of a new symbol, one into each lake, in alternating order,
    so both see the same load on the machine.
    """
    history, probes = parts[:-rounds], parts[-rounds:]
    with Warehouse(warehouse=tmp / "history") as old, Warehouse(warehouse=tmp / "new") as new:
        run = Run.new("bench")
        for wh in (old, new):
            wh.ensure(DS)
        con = old.con
        for chunk in groups(history, max(1, len(history) // 10)):
            con.execute("BEGIN")
            for p in chunk:
                con.register("_f", p.with_columns(run_id=pl.lit(run.id)).to_arrow())
                con.execute(f"INSERT INTO {NAME} BY NAME SELECT * FROM _f")
                con.unregister("_f")
            con.execute("COMMIT")
        old.commit(Commit(run, [Rows(NAME, p.clear(), coverage=spans_of(DS, p)) for p in history]))
        files = old.sql(f"SELECT file_count FROM ducklake_table_info('lake') WHERE table_name = '{NAME}'")
        log(f"  history: {len(history)} symbols, {int(files['file_count'][0])} files")
        t_new, t_old = [], []
        for i, p in enumerate(probes):
            pair = [(new, t_new), (old, t_old)]
            for wh, out in pair if i % 2 else pair[::-1]:
                out.append(clock(lambda wh=wh, p=p: wh.write(NAME, p, run)))
    return {
        "files": int(files["file_count"][0]),
        "new": statistics.median(t_new),
        "old": statistics.median(t_old),
        "ratios": [o / n for o, n in zip(t_old, t_new, strict=True)],
    }


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Linux {platform.release()}"


def report(
    args: argparse.Namespace, runs: list[dict], mem: dict[str, dict[str, int]], meta: dict[str, Any]
) -> str:
    def med(fn: Callable[[dict], float]) -> float:
        return statistics.median(fn(r) for r in runs)

    def each(fn: Callable[[dict], float], fmt: str = "{:.1f}") -> str:
        return ", ".join(fmt.format(fn(r)) for r in runs)

    n, g = args.symbols, args.group
    rows = n * args.days
    single_ratio = med(lambda r: r["single"]["last"] / r["single"]["first"])
    grouped_ratio = med(lambda r: r["grouped"]["last"] / r["grouped"]["first"])
    vs_duck = med(lambda r: r["single"]["total"] / r["duckdb"])
    vs_duck_g = med(lambda r: r["grouped"]["total"] / r["duckdb"])
    vs_duck_gg = med(lambda r: r["grouped"]["total"] / r["duckdb_grouped"])

    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSED"

    lake_mem, pq_mem = mem["lake"], mem["parquet"]
    lines = [
        "# bench/writes.py",
        "",
        f"{rows:,} rows of `{NAME}` ({n:,} symbols x {args.days} trading days to 2025-12-30, synthetic) "
        f"written as {n:,} per-symbol jobs into fresh folders (DuckLake: SQLite catalog, Parquet on the "
        "local disk), "
        f"at commit {meta['commit']}. Median of {len(runs)} runs; ratios are of numbers from the same run. "
        f"Python {platform.python_version()}, duckdb {duckdb.__version__}, polars {pl.__version__}; "
        f"{machine()}. Load average {meta['load_start']:.1f} at the start, {meta['load_end']:.1f} at the end "
        "(2 cores shared with other work: absolute times are inflated, ratios are the steadier numbers); "
        "the benchmark took "
        f"{meta['minutes']:.1f} min.",
        "",
        "| measure | median | target | verdict | runs |",
        "|---|---|---|---|---|",
        f"| per-symbol commits (`Warehouse.write`, one transaction each): mean of the first 10 % of writes | "
        f"{med(lambda r: r['single']['first']) * 1000:.0f} ms | | | "
        f"{each(lambda r: r['single']['first'] * 1000, '{:.0f}')} |",
        f"| the same, last 10 % | {med(lambda r: r['single']['last']) * 1000:.0f} ms | | | "
        f"{each(lambda r: r['single']['last'] * 1000, '{:.0f}')} |",
        f"| **last 10 % / first 10 %, per-symbol commits** | {single_ratio:.2f}x | <= 1.2x | "
        f"{verdict(single_ratio <= 1.2)} | "
        f"{each(lambda r: r['single']['last'] / r['single']['first'], '{:.2f}')} |",
        f"| grouped commits ({g} symbols each): last 10 % / first 10 % of commits | {grouped_ratio:.2f}x | "
        f"<= 1.2x | {verdict(grouped_ratio <= 1.2)} | "
        f"{each(lambda r: r['grouped']['last'] / r['grouped']['first'], '{:.2f}')} |",
        f"| {rows:,} rows, per-symbol commits | {med(lambda r: r['single']['total']):.1f} s | | | "
        f"{each(lambda r: r['single']['total'])} |",
        f"| {rows:,} rows, grouped commits ({g} symbols each) | "
        f"{med(lambda r: r['grouped']['total']):.1f} s | | | "
        f"{each(lambda r: r['grouped']['total'])} |",
        f"| {rows:,} rows, plain DuckDB table, a transaction per symbol (delete keys + insert) | "
        f"{med(lambda r: r['duckdb']):.1f} s | | | {each(lambda r: r['duckdb'])} |",
        f"| {rows:,} rows, plain DuckDB table, {g} symbols per transaction | "
        f"{med(lambda r: r['duckdb_grouped']):.1f} s | | | {each(lambda r: r['duckdb_grouped'])} |",
        f"| {rows:,} rows, plain Parquet, a file per symbol | {med(lambda r: r['parquet']):.1f} s | | | "
        f"{each(lambda r: r['parquet'])} |",
        f"| **lake per-symbol commits / plain DuckDB per symbol** | {vs_duck:.1f}x | <= 3x | "
        f"{verdict(vs_duck <= 3)} | "
        f"{each(lambda r: r['single']['total'] / r['duckdb'])} |",
        f"| **lake grouped commits / plain DuckDB per symbol** | {vs_duck_g:.1f}x | <= 3x | "
        f"{verdict(vs_duck_g <= 3)} | {each(lambda r: r['grouped']['total'] / r['duckdb'])} |",
        f"| lake grouped / plain DuckDB grouped alike | {vs_duck_gg:.1f}x | | | "
        f"{each(lambda r: r['grouped']['total'] / r['duckdb_grouped'])} |",
        f"| lake grouped / plain Parquet | {med(lambda r: r['grouped']['total'] / r['parquet']):.1f}x | | | "
        f"{each(lambda r: r['grouped']['total'] / r['parquet'])} |",
        f"| peak memory growth, one `Warehouse.write` of all {rows:,} rows | "
        f"{lake_mem['growth'] / 2**20:.0f} MB = {lake_mem['growth'] / lake_mem['frame']:.1f}x the frame "
        f"({lake_mem['frame'] / 2**20:.0f} MB) | <= 2x | "
        f"{verdict(lake_mem['growth'] <= 2 * lake_mem['frame'])} | |",
        f"| peak memory growth, `write_parquet` of the same frame | {pq_mem['growth'] / 2**20:.0f} MB = "
        f"{pq_mem['growth'] / pq_mem['frame']:.1f}x | | | |",
        "",
        "Checked every run (not timed): both lakes hold exactly "
        f"{rows:,} rows, no key twice in the grouped one; per-symbol commits leave "
        f"{runs[0]['single']['coverage_rows']:,} coverage rows (one per symbol) and "
        f"{runs[0]['single']['files']:,} data files ({runs[0]['grouped']['files']:,} with grouped commits).",
        "",
    ]
    return "\n".join([*lines, WHERE.strip(), ""])


WHERE = """
## Where the time goes

Measured with DuckDB's query log on the lake's connection (`CALL enable_logging()`,
`duckdb_logs`) and `EXPLAIN ANALYZE` of the catalog queries DuckLake sends:

- **Every statement that reads a lake table lists the lake's files.** DuckLake's
  metadata queries run in DuckDB over the SQLite catalog through the sqlite scanner,
  which pushes no filter into SQLite: each scan of a table reads all of
  `ducklake_data_file` and `ducklake_delete_file`, and each column it prunes by is a
  full read of `ducklake_file_column_stats` (a row per file and column, every table).
  After 1,000 per-symbol writes of 500 days that is 30,000 rows per pruned column.
  This, not the data, is what grew: before this change a write read its table with
  three pruned columns (DuckDB pushed the key semi-join's min/max of every key column
  into the scan), read and deleted `meta.coverage` (a Parquet file per write, so one
  more file per write for everyone) with three more, and looked its run up in
  `meta.runs`.
- **What a write does now**: the delete prunes by literal bounds (the frame's symbols
  and dates; the join filter pushdown is off for that statement), one statistics
  column; coverage is inlined in the catalog (`data_inlining_row_limit` 100 on
  `meta.coverage`) and read by the symbols' literal list, deleted only when something
  was stored; a run this connection has committed is not looked up again. The
  statements a write sends the catalog are the same on a new lake and after a long
  history (`tests/test_write_cost.py` counts them), but a listing still reads every
  file row: each per-symbol commit adds one file per year partition, so the remaining
  slope is those reads. Compaction (the `compact` deployment) merges files and, once
  snapshots expire, drops their rows from the catalog.
- **The fixed cost of a commit**: a DuckLake commit on SQLite writes the snapshot, the
  file and its column statistics, the table statistics and the inlined ledger row
  (tens of ms on this machine), against a plain DuckDB transaction's few ms. That is
  why per-symbol commits cannot come near a plain DuckDB table and grouped commits
  (`Warehouse.commit` with a part per symbol: one delete, one insert, one coverage
  merge per commit, still a ledger row per symbol) are the way to the 3x target.
- **Memory**: a write converts the conformed frame to Arrow once (sorted) and DuckDB
  writes the Parquet from it; the peak holds the frame, its sorted Arrow copy and
  DuckDB's write buffers.
"""


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--group", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="200 symbols, 1 run, print only")
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory", type=int, default=0, help="only the peak-memory measures, N runs each")
    parser.add_argument("--ab", type=int, default=0, help="only the interleaved new/long-history comparison")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.symbols, args.days, args.group, args.tmp)
        return
    if args.memory:
        load_start = os.getloadavg()[0]
        mem = memory_runs(args, args.memory, tuple(MEMORY_KINDS))
        meta = {"commit": _commit(), "load_start": load_start, "load_end": os.getloadavg()[0]}
        section = memory_report(args, mem, meta)
        print(section)
        out = Path(args.out or Path(__file__).parent / "results" / "writes.md")
        if not args.quick or args.out:
            text = out.read_text(encoding="utf-8") if out.exists() else "# bench/writes.py\n"
            text = text.split(f"\n{MEMORY_HEADING}\n")[0].rstrip("\n")
            out.write_text(f"{text}\n\n{section}", encoding="utf-8")
        return
    if args.quick:
        args.symbols, args.runs = min(args.symbols, 200), 1
    if args.ab:
        tmp = Path(tempfile.mkdtemp(prefix="kwh-writes-ab-", dir=args.tmp))
        try:
            ab = history_ab(jobs(bars(args.symbols, args.days)), tmp, args.ab, print)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps(ab))
        return
    started, load_start = time.monotonic(), os.getloadavg()[0]
    parts = jobs(bars(args.symbols, args.days))
    runs = []
    for i in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="kwh-writes-", dir=args.tmp))
        try:
            print(f"run {i + 1}/{args.runs}", flush=True)
            runs.append(run_once(args, tmp, parts, lambda s: print(s, flush=True)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for r in runs:
        assert r["single"]["rows"] == r["grouped"]["rows"] == args.symbols * args.days, r
        assert r["grouped"]["dups"] == 0, r
    mem = {k: ms[0] for k, ms in memory_runs(args, 1, ("lake", "parquet")).items()}
    meta = {
        "commit": _commit(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "minutes": (time.monotonic() - started) / 60,
    }
    text = report(args, runs, mem, meta)
    print(text)
    if not args.quick or args.out:
        out = Path(args.out or Path(__file__).parent / "results" / "writes.md")
        out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
