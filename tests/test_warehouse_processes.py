"""The lake under real OS processes: a writer killed mid-write, readers beside writers, two writers.

Every child is ``sys.executable tests/_lake_procs.py ...`` on a lake in ``tmp_path``;
nothing is mocked. The children talk back through stdout lines and marker files.

1. SIGKILL in the middle of a 3M-row write: the previous snapshot stays, exactly;
   the orphaned Parquet files are invisible; the same write then completes.
2. A read-only reader (polling, or holding transactions open) never blocks the
   writer and only ever sees whole committed batches.
3. Concurrent writers on different symbols both commit (retry on lock/conflict),
   including several processes creating the same new table at once.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from warehouse import Run, Warehouse, connect, dataset, datasets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _lake_procs import BATCH, DAILY, batch, batch_run, daily_frame, symbols

HELPER = Path(__file__).resolve().parent / "_lake_procs.py"
ROOT = HELPER.parent.parent
KEY = list(dataset(DAILY).key)
TIMEOUT = 120.0  # generous: a 2-core machine running the suite in parallel with other work


# --------------------------------------------------------------------------- child processes


class Child:
    """A helper process; its stdout lines arrive on a queue, its stderr goes to a file."""

    def __init__(self, tmp: Path, name: str, command: str, args: dict[str, Any]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KWH_")}
        self.name = name
        self.stderr_path = tmp / f"{name}.stderr"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER), command, json.dumps(args)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()[-4000:]

    def expect(self, prefix: str, timeout: float = TIMEOUT) -> str:
        """The next stdout line starting with ``prefix`` (the child failing or hanging fails the test)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{self.name}: no {prefix!r} line within {timeout}s; stderr:\n{self.stderr()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait()
                pytest.fail(
                    f"{self.name} exited ({self.proc.returncode}) before printing {prefix!r}; "
                    f"stdout {self.seen}; stderr:\n{self.stderr()}"
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still running after {timeout}s; stderr:\n{self.stderr()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()


@pytest.fixture
def spawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("KWH_WAREHOUSE", "KWH_CATALOG", "KWH_DATA_PATH"):
        monkeypatch.delenv(var, raising=False)
    children: list[Child] = []

    def start(name: str, command: str, **args: Any) -> Child:
        child = Child(tmp_path, name, command, args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


def frame_spec(sym0: int, nsym: int, days: int, price: int) -> dict[str, Any]:
    return {"sym0": sym0, "nsym": nsym, "days": days, "price": price}


def spec_frame(spec: dict[str, Any]) -> pl.DataFrame:
    return daily_frame(symbols(spec["sym0"], spec["nsym"]), spec["days"], price=spec["price"])


# --------------------------------------------------------------------------- lake state


class Look:
    """One read-only connection for a round of checks (each query its own, latest snapshot).

    Opening a lake loads two extensions (about a second on a busy 2-core box), so a
    round of checks shares one connection instead of opening one per query.
    """

    def __init__(self, root: Path) -> None:
        self.con = connect(read_only=True, warehouse=root)

    def __enter__(self) -> Look:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def table(self, name: str = DAILY) -> pl.DataFrame:
        ds = dataset(name)
        return self.con.execute(f"SELECT * FROM {name}").pl().select(list(ds.schema)).sort(list(ds.key))

    def meta(self) -> dict[str, pl.DataFrame]:
        return {
            t: self.con.execute(f"SELECT * FROM meta.{t} ORDER BY ALL").pl()
            for t in ("coverage", "writes", "runs")
        }

    def files(self, name: str = DAILY) -> set[Path]:
        """The Parquet files (data and delete files) the current snapshot uses for a table."""
        rows = self.con.execute("SELECT data_file, delete_file FROM ducklake_list_files('lake', ?)", [name])
        return {Path(f) for row in rows.fetchall() for f in row if f is not None}

    def duplicate_keys(self, name: str = DAILY) -> int:
        cols = ", ".join(dataset(name).key)
        row = self.con.execute(
            f"SELECT count(*) FROM (SELECT {cols} FROM {name} GROUP BY {cols} HAVING count(*) > 1)"
        ).fetchone()
        return int(row[0]) if row else -1


def with_run(frame: pl.DataFrame, run_id: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(run_id, pl.String).alias("run_id"))


def data_files(root: Path, name: str = DAILY) -> set[Path]:
    """The Parquet files on disk under the table's folder, whether the catalog knows them or not."""
    folder = root / "files" / "main" / name
    return set(folder.rglob("*.parquet")) if folder.exists() else set()


# --------------------------------------------------------------------------- 1. crash


@pytest.mark.slow
def test_writer_killed_mid_write_leaves_the_previous_snapshot_and_the_write_can_be_rerun(tmp_path, spawn):
    root = tmp_path / "lake"
    # a committed write: symbols 0..299 x 1000 days
    base_run = "base-run"
    base = with_run(daily_frame(symbols(0, 300), 1000, price=100), base_run)
    with Warehouse(warehouse=root) as wh:
        wh.write(DAILY, base.drop("run_id"), Run(base_run, flow="proc-test"))
    with Look(root) as look:
        before = look.table()
        meta_before = look.meta()
        files_before = data_files(root)
        assert files_before and look.files() == files_before
    assert_frame_equal(before, base.sort(KEY))

    # the write to kill: symbols 150..3149 x 1000 days = 3M rows, 150 symbols replacing base rows
    big_spec = frame_spec(150, 3000, 1000, price=7)
    killed_run = "killed-run"
    args = {"root": str(root), "dataset": DAILY, "frame": big_spec, "run_id": killed_run}
    writer = spawn("writer-to-kill", "write", **args)
    assert int(writer.expect("WRITING")) == 3_000_000  # printed right before write()

    # wait for this write's first new data file (its inserted rows; delete files come earlier), then kill
    deadline = time.monotonic() + TIMEOUT
    new: set[Path] = set()
    while not new:
        if writer.proc.poll() is not None:
            pytest.fail(
                f"the write ended ({writer.proc.returncode}) before any of its data files was seen; "
                f"stdout {writer.seen}; stderr:\n{writer.stderr()}"
            )
        if time.monotonic() > deadline:
            pytest.fail("no new data file within the timeout")
        new = {p for p in data_files(root) - files_before if not p.name.endswith("-delete.parquet")}
        if not new:
            time.sleep(0.002)
    still_running = writer.proc.poll() is None
    os.kill(writer.proc.pid, signal.SIGKILL)
    assert still_running, "the writer had already exited when its files appeared"
    assert writer.proc.wait(TIMEOUT) == -signal.SIGKILL
    tail = list(iter(writer.lines.get, None))
    assert not [line for line in writer.seen + tail if line.startswith("DONE")], "write() had returned"

    # the killed writer left files behind ...
    orphans = data_files(root) - files_before
    assert orphans, "the killed writer left no data file: the kill did not land mid-write"
    with sqlite3.connect(root / "catalog.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # ... which the catalog does not know and queries do not see: the lake is as before the write
    with Look(root) as look:
        assert look.files() == files_before
        assert_frame_equal(look.table(), before)
        meta_after = look.meta()
        killed_rows = look.con.execute(f"SELECT count(*) FROM {DAILY} WHERE run_id = ?", [killed_run])
        assert killed_rows.fetchone() == (0,)
    for name, frame in meta_before.items():
        assert_frame_equal(meta_after[name], frame)
        assert killed_run not in meta_after[name]["run_id"].to_list()

    # the lake stays writable: the same write again, in a new process, completes it
    rerun = spawn("writer-rerun", "write", **args)
    done = json.loads(rerun.expect("DONE"))
    assert rerun.finish() == 0
    big = with_run(spec_frame(big_spec), killed_run)
    assert (done["rows"], done["replaced"]) == (3_000_000, 150 * 1000)
    expected = pl.concat([base.filter(pl.col("symbol") < symbols(150, 1)[0]), big]).sort(KEY)
    assert expected.height == 3_150_000
    with Look(root) as look:
        assert_frame_equal(look.table(), expected)  # unique keys, so no duplicates either
        listed = look.files()
        m = look.meta()
    # the orphans are still on disk and still not part of the table
    assert orphans <= data_files(root)
    assert not (listed & orphans)

    # the ledger has each write once; coverage holds both writes' spans, merged per symbol
    assert m["writes"].sort("run_id").select("run_id", "dataset", "rows", "replaced").rows() == [
        (base_run, DAILY, base.height, 0),
        (killed_run, DAILY, big.height, 150 * 1000),
    ]
    cov = m["coverage"].filter(pl.col("dataset") == DAILY)
    assert sorted(cov["symbol"].to_list()) == symbols(0, 3150)  # one span per symbol
    assert dict(cov.group_by("run_id").len().iter_rows()) == {base_run: 150, killed_run: 3000}
    assert m["runs"].filter(pl.col("run_id") == killed_run).height == 1


# --------------------------------------------------------------------------- 2. readers


def whole_snapshot(obs: dict[str, Any], runs: list[str]) -> list[str]:
    """What is wrong with one observation, if it is not a committed state of the batches in ``runs``."""
    problems = []
    per_run, total = obs["per_run"], obs["total"]
    if total % BATCH:
        problems.append(f"total {total} is not a multiple of {BATCH}")
    for run_id, n in per_run.items():
        if run_id not in runs:
            problems.append(f"unknown run {run_id}")
        elif n != BATCH:
            problems.append(f"run {run_id} has {n} rows, not 0 or {BATCH}")
    # batches commit one after another: the runs seen are the first ones written
    if set(per_run) <= set(runs) and sorted(per_run) != runs[: len(per_run)]:
        problems.append(f"runs {sorted(per_run)} are not the first {len(per_run)} committed")
    return problems


def test_a_reader_polling_on_a_read_only_connection_never_blocks_writes_and_sees_whole_snapshots(
    tmp_path, spawn
):
    root = tmp_path / "lake"
    n_alone, n_beside = 2, 6
    runs = [batch_run(k) for k in range(n_alone + n_beside)]
    alone = []
    with Warehouse(warehouse=root) as wh:  # writes with no reader, for comparison
        for k in range(n_alone):
            t0 = time.monotonic()
            wh.write(DAILY, batch(k), Run(runs[k]))
            alone.append(time.monotonic() - t0)

    stop = tmp_path / "stop-reader"
    reader = spawn("reader", "poll", root=str(root), table=DAILY, stop=str(stop))
    reader.expect("OPEN")  # connected, and made its first observation
    writer = spawn("writer", "batches", root=str(root), ks=list(range(n_alone, n_alone + n_beside)))
    beside = [float(writer.expect(f"BATCH {k}").split()[0]) for k in range(n_alone, n_alone + n_beside)]
    writer_done = json.loads(writer.expect("DONE"))  # a 'database is locked' escaping write() fails here
    assert writer.finish() == 0
    stop.touch()
    report = json.loads(reader.expect("RESULT"))
    assert reader.finish() == 0
    print(
        f"write seconds alone {[round(t, 3) for t in alone]}, "
        f"beside a reader {[round(t, 3) for t in beside]}, "
        f"retried {writer_done['failed_attempts']}, reader observations {len(report['observations'])}"
    )

    assert report["errors"] == []
    observations = report["observations"]
    problems = {i: p for i, o in enumerate(observations) if (p := whole_snapshot(o, runs))}
    assert problems == {}
    totals = [o["total"] for o in observations]
    assert totals == sorted(totals), "a later observation saw an older snapshot"
    assert totals[0] >= n_alone * BATCH
    assert observations[-1] == {"per_run": dict.fromkeys(runs, BATCH), "total": len(runs) * BATCH}
    assert len(set(totals)) >= 2, "the reader saw one state only: it did not run beside the writes"


def test_a_reader_transaction_keeps_its_snapshot_while_writes_commit_beside_it(tmp_path, spawn):
    """Each reader transaction spans a commit by handshake: BEGIN, count, (a write commits), count, COMMIT."""
    root = tmp_path / "lake"
    signals = tmp_path / "signals"
    signals.mkdir()
    n = 4
    runs = [batch_run(k) for k in range(n + 1)]
    with Warehouse(warehouse=root) as wh:
        wh.write(DAILY, batch(0), Run(runs[0]))
    common = {"root": str(root), "signals": str(signals), "timeout": TIMEOUT}
    reader = spawn("txn-reader", "txn", table=DAILY, n=n, **common)
    writer = spawn("writer", "batches", ks=list(range(1, n + 1)), **common)
    json.loads(writer.expect("DONE"))  # every write committed while a reader transaction was open
    assert writer.finish() == 0
    report = json.loads(reader.expect("RESULT"))
    assert reader.finish() == 0

    def state(m: int) -> dict[str, Any]:  # the lake after the first m batches
        return {"per_run": dict.fromkeys(runs[:m], BATCH), "total": m * BATCH}

    transactions = report["transactions"]
    assert len(transactions) == n
    for k, txn in enumerate(transactions):
        # inside: the snapshot of BEGIN, before and after the write committed
        assert txn["inside"] == [state(k + 1)] * 3, f"transaction {k}"
        # after COMMIT the next statement sees the write
        assert txn["after"] == state(k + 2), f"transaction {k}"


# --------------------------------------------------------------------------- 3. two writers


WRITER_SYMBOLS, WRITER_DAYS = 100, 600


@pytest.mark.parametrize("setup", ["existing-table", "replacing-shared-files"])
def test_two_writer_processes_on_different_symbols_both_commit(tmp_path, spawn, setup):
    """Two processes write their own symbols of one dataset at once; both must succeed.

    (Both creating the table in their first write is the next test.)

    ``existing-table``: the table exists, empty;
    ``replacing-shared-files``: an earlier write put both writers' symbols in the same
    files, so both writes delete rows from the same files in overlapping transactions.
    """
    root = tmp_path / "lake"
    specs = {
        "writer-a": frame_spec(0, WRITER_SYMBOLS, WRITER_DAYS, price=200),
        "writer-b": frame_spec(WRITER_SYMBOLS, WRITER_SYMBOLS, WRITER_DAYS, price=300),
    }
    with Warehouse(warehouse=root) as wh:
        wh.con  # noqa: B018 - the lake and its meta tables
        if setup == "existing-table":
            wh.ensure(dataset(DAILY))
        if setup == "replacing-shared-files":
            wh.write(DAILY, daily_frame(symbols(0, 2 * WRITER_SYMBOLS), WRITER_DAYS), Run("old-run"))
    go = tmp_path / "go"
    writers = {
        name: spawn(
            name, "write", root=str(root), dataset=DAILY, frame=spec, run_id=f"{name}-run", go=f"{go}"
        )
        for name, spec in specs.items()
    }
    for child in writers.values():
        child.expect("READY")  # lake open, frame built: only write() is left
    go.touch()
    done = {name: json.loads(child.expect("DONE")) for name, child in writers.items()}
    assert [child.finish() for child in writers.values()] == [0, 0]
    for name, d in done.items():
        print(f"{setup} {name}: {d['seconds']:.3f} s, failed attempts (retried) {d['failed_attempts']}")

    expected = pl.concat([with_run(spec_frame(spec), f"{name}-run") for name, spec in specs.items()])
    expected = expected.sort(KEY)
    with Look(root) as look:
        assert look.duplicate_keys() == 0
        assert_frame_equal(look.table(), expected)
        m = look.meta()
    writes = m["writes"].filter(pl.col("run_id") != "old-run").sort("run_id")
    replaced = WRITER_SYMBOLS * WRITER_DAYS if setup == "replacing-shared-files" else 0
    assert writes.select("run_id", "rows", "replaced").rows() == [
        (f"{name}-run", WRITER_SYMBOLS * WRITER_DAYS, replaced) for name in specs
    ]
    cov = m["coverage"].filter(pl.col("dataset") == DAILY).sort("symbol")
    assert cov["symbol"].to_list() == symbols(0, 2 * WRITER_SYMBOLS)
    assert cov["run_id"].to_list() == ["writer-a-run"] * WRITER_SYMBOLS + ["writer-b-run"] * WRITER_SYMBOLS
    assert sorted(m["runs"]["run_id"].to_list()) == sorted(
        [f"{name}-run" for name in specs] + (["old-run"] if setup == "replacing-shared-files" else [])
    )


ENSURERS, ENSURE_ROUNDS = 4, 8


def test_writer_processes_creating_the_same_new_table_at_once_all_succeed(tmp_path, spawn):
    """``write`` starts with ``ensure``: first writes of a new dataset by several workers at once.

    Round i: the processes wait on one barrier file, then all ``ensure`` dataset i;
    each must create the table or find it created. The race is timing-dependent: with
    ``ensure`` looking the table up before its transaction begins, about half the rounds
    (4 processes) have a loser that fails with 'Table ... already exists'.
    """
    root = tmp_path / "lake"
    with Warehouse(warehouse=root) as wh:
        wh.con  # noqa: B018 - the lake and its meta tables; no dataset table yet
    names = list(datasets())[:ENSURE_ROUNDS]
    go = tmp_path / "go"
    go.mkdir()
    children = [
        spawn(f"ensurer-{j}", "ensure", root=str(root), go=str(go), names=names, timeout=TIMEOUT)
        for j in range(ENSURERS)
    ]
    for i in range(len(names)):
        for child in children:
            child.expect(f"READY {i}")
        (go / f"go-{i}").touch()
    results = [json.loads(child.expect("RESULT")) for child in children]
    assert [child.finish() for child in children] == [0] * ENSURERS

    failed = {
        (child.name, names[i]): outcome
        for child, result in zip(children, results, strict=True)
        for i, outcome in enumerate(result["outcomes"])
        if outcome != "ok"
    }
    assert failed == {}, f"{len(failed)} of {ENSURERS * len(names)} ensure() calls failed: {failed}"
    with Look(root) as look:
        for name in names:
            have = look.con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' "
                "AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
                [name],
            ).fetchall()
            assert [c for (c,) in have] == list(dataset(name).schema), name
