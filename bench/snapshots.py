"""Benchmark: a stream session's commits and merges as its snapshots pile up, kept or expired.

    .venv/bin/python bench/snapshots.py [--runs 3] [--commits 8000] [--every 2000]
                                        [--keep-seconds 45] [--tmp DIR] [--out FILE]

A stream worker commits about four times a second (one micro-batch each, its log position
with it) and merges its small files every 5 s, so a session (08:50-15:40) makes some 100,000
DuckLake snapshots. This replays that pattern back to back in a fresh lake (SQLite catalog,
``warehouse.lake.open_lake``): ``--commits`` commits of 2,500 rows each plus a position row,
``maintenance.merge_small_files`` after every 20th (5 s of a session), in two modes:

- kept: every snapshot stays, as before the worker expired any;
- expired: every 12th merge (a minute of a session) also calls
  ``snapshots.expire_session`` with ``--keep-seconds``. The benchmark commits about 15 times
  faster than a session does, so the default 45 s keeps about as many snapshots (~2,500) as the
  worker's 10 minutes do.

For each ``--every`` commits it reports the median commit and merge time of that stretch and the
snapshots in the catalog, as medians over ``--runs`` runs, and the ratio expired / kept.
Writes ``--out`` if given (``bench/results/snapshots.md`` is such an output, merged by hand).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import command, emit, machine

from warehouse.lake import LAKE, LakeConfig, open_lake
from warehouse.maintenance import merge_small_files
from warehouse.snapshots import Marks, expire_session
from warehouse.tables import create_meta

ROWS = 2500  # a 0.25 s micro-batch at 10,000 entries/s
MERGE_EVERY = 20  # commits: 5 s of a session
EXPIRE_EVERY = 12  # merges: a minute of a session


def one_run(root: Path, commits: int, every: int, keep: timedelta | None) -> dict[int, dict[str, float]]:
    con = open_lake(LakeConfig.load(root), read_only=False)
    create_meta(con)
    con.execute(f"CREATE TABLE {LAKE}.t (symbol VARCHAR, ts BIGINT, price BIGINT, size BIGINT, pad VARCHAR)")

    def snapshot() -> int:
        return int(con.execute(f"FROM {LAKE}.current_snapshot()").fetchone()[0])  # type: ignore[index]

    first = snapshot()
    marks = Marks(keep.total_seconds() if keep is not None else 0.0)
    commit_s: list[float] = []
    merge_s: list[float] = []
    out: dict[int, dict[str, float]] = {}
    for i in range(1, commits + 1):
        started = time.perf_counter()
        con.execute("BEGIN")
        con.execute(
            f"INSERT INTO {LAKE}.t SELECT 'S' || (r % 200), {i} * 100000 + r, r, r, repeat('x', 60) "
            f"FROM range({ROWS}) r(r)"
        )
        con.execute(
            "INSERT INTO meta.stream_positions (stream, log_segment, log_offset, run_id, committed_at) "
            "VALUES ('bench', 1, ?, 'bench', now())",
            [i],
        )
        con.execute("COMMIT")
        commit_s.append(time.perf_counter() - started)
        if i % MERGE_EVERY == 0:
            started = time.perf_counter()
            merge_small_files(con, ["t"])  # as the worker does: a snapshot for the pruning, one a table
            if keep is not None and (i // MERGE_EVERY) % EXPIRE_EVERY == 0:  # as Merges does
                upto = marks.older(time.monotonic(), snapshot())
                if upto is not None and upto > first:
                    expire_session(con, first, upto)
                    first = upto
            merge_s.append(time.perf_counter() - started)
        if i % every == 0:
            snaps = con.execute(f"SELECT count(*) FROM ducklake_snapshots('{LAKE}')").fetchone()
            out[i] = {
                "commit": statistics.median(commit_s[-every:]),
                "merge": statistics.median(merge_s[-(every // MERGE_EVERY) :]),
                "snapshots": float(snaps[0]) if snaps else 0.0,
            }
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--commits", type=int, default=8000)
    ap.add_argument("--every", type=int, default=2000, help="commits per reported stretch")
    ap.add_argument("--keep-seconds", type=float, default=45.0)
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    modes = {"kept": None, "expired": timedelta(seconds=args.keep_seconds)}
    runs: dict[str, list[dict[int, dict[str, float]]]] = {m: [] for m in modes}
    for i in range(args.runs):
        for mode, keep in modes.items():  # alternated, so a slow spell of the machine hits both
            root = Path(tempfile.mkdtemp(prefix="kwh-bench-snapshots-", dir=args.tmp))
            try:
                runs[mode].append(one_run(root, args.commits, args.every, keep))
            finally:
                shutil.rmtree(root, ignore_errors=True)
            print(f"run {i + 1} {mode}: {runs[mode][-1]}", flush=True)

    def med(mode: str, at: int, what: str) -> float:
        return statistics.median(r[at][what] for r in runs[mode])

    lines = [
        "# bench/snapshots.py",
        "",
        f"`{command(__file__)}`: {args.runs} runs, {machine()}. Median ms over the stretch of "
        f"{args.every:,} commits ending at each count; ratio expired / kept.",
        "",
        "| commits | snapshots kept / expired | commit kept | commit expired (ratio) "
        "| merge kept | merge expired (ratio) |",
        "|---|---|---|---|---|---|",
    ]
    for at in sorted(runs["kept"][0]):
        cells = [f"{med('kept', at, 'snapshots'):,.0f} / {med('expired', at, 'snapshots'):,.0f}"]
        for what in ("commit", "merge"):
            kept, expired = med("kept", at, what), med("expired", at, what)
            cells += [f"{kept * 1000:.1f}", f"{expired * 1000:.1f} ({expired / kept:.2f}x)"]
        lines.append(f"| {at:,} | " + " | ".join(cells) + " |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
