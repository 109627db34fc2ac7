"""Benchmark: what a table's file count costs the stream worker's commits, merges and reopens.

    .venv/bin/python bench/lake_files.py [--runs 3] [--counts 20,1000,3000,6000,10000]
                                         [--tmp DIR] [--out FILE]

A streaming session leaves its merged micro-batch files in the lake until the close rewrites
the day (about 24 a minute at 10,000 entries/s, some 10,000 over a session). This measures,
in a fresh DuckLake (SQLite catalog, ``warehouse.lake.open_lake``, the worker's settings) per
run, with a table grown one INSERT (one file) at a time to each of ``--counts`` files:

- insert: one 2,000-row INSERT, its own transaction (a micro-batch commit), median of 20;
- merge scan: ``ducklake_merge_adjacent_files`` with a 1-byte bound, which finds nothing to
  merge but lists the table's files (what every merge between two commits does first);
- pruned count: a ``count(*)`` whose filter no file's statistics admit (a reader's plan);
- reopen: closing the writer's connection and opening it again, with its first INSERT (what
  ``Warehouse`` does every ``RECYCLE_AFTER`` commits); at the largest count only.

Each figure is the median over ``--runs`` runs, with its ratio to the figure at the smallest
count of the same run. Writes ``--out`` if given (the results in ``bench/results/lake_files.md``
are such an output, merged by hand).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import command, emit, machine

from warehouse.lake import LAKE, LakeConfig, open_lake

ROWS = 2000


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def one_run(root: Path, counts: list[int]) -> dict[int, dict[str, float]]:
    config = LakeConfig.load(root)
    con = open_lake(config, read_only=False)
    con.execute(f"CREATE TABLE {LAKE}.t (symbol VARCHAR, ts BIGINT, price BIGINT, size BIGINT, pad VARCHAR)")
    files = 0

    def insert(rows: int) -> None:
        nonlocal files
        con.execute(
            f"INSERT INTO {LAKE}.t SELECT 'S' || (r % 200), {files} * 100000 + r, r, r, repeat('x', 20) "
            f"FROM range({rows}) r(r)"
        )
        files += 1

    out: dict[int, dict[str, float]] = {}
    for count in counts:
        while files < count:
            insert(50)
        ins = statistics.median(timed(lambda: insert(ROWS)) for _ in range(20))
        scan = timed(
            lambda: con.execute(
                f"CALL ducklake_merge_adjacent_files('{LAKE}', 't', max_file_size => 1)"
            ).fetchall()
        )
        pruned = timed(lambda: con.execute(f"SELECT count(*) FROM {LAKE}.t WHERE ts < -1").fetchall())
        out[count] = {"files": files, "insert": ins, "merge scan": scan, "pruned count": pruned}
    con.close()

    def reopen() -> None:
        again = open_lake(config, read_only=False)
        again.execute(f"INSERT INTO {LAKE}.t SELECT 'S', r, r, r, 'x' FROM range(10) r(r)")
        again.close()

    out[counts[-1]]["reopen"] = statistics.median(timed(reopen) for _ in range(3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--counts", default="20,1000,3000,6000,10000", help="file counts, ascending")
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    runs = []
    for i in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="kwh-bench-files-", dir=args.tmp))
        try:
            runs.append(one_run(root, counts))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"run {i + 1}: {runs[-1]}", flush=True)

    def med(count: int, what: str) -> float:
        return statistics.median(r[count][what] for r in runs)

    lines = [
        "# bench/lake_files.py",
        "",
        f"`{command(__file__)}`: {args.runs} runs, {machine()}. Median ms (ratio to {counts[0]} files).",
        "",
        "| files in the table | insert (one commit) | merge scan (nothing to merge) | pruned count |",
        "|---|---|---|---|",
    ]
    for count in counts:
        cells = [
            f"{med(count, w) * 1000:.1f} ({med(count, w) / med(counts[0], w):.2f}x)"
            for w in ("insert", "merge scan", "pruned count")
        ]
        lines.append(f"| {int(med(count, 'files')):,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Reopen (close, open, first INSERT) at {counts[-1]:,} files: "
        f"{med(counts[-1], 'reopen') * 1000:.0f} ms.",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
