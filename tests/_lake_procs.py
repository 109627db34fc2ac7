"""Child-process side of tests/test_warehouse_processes.py (also its frame builders).

Run as a script (``python tests/_lake_procs.py COMMAND JSON``), it is a writer or a
reader on a real lake in its own OS process; it talks to the test through
stdout lines and marker files, never through mocks:

- ``write``: build a daily-bar frame (vectorized Polars), optionally wait for a "go"
  file, print ``WRITING`` right before ``Warehouse.write`` and ``DONE {json}``
  after it returns.
- ``batches``: write numbered batches of known size, one run id each, optionally
  handshaken through files with a ``txn`` reader.
- ``poll``: open ``warehouse.connect(read_only=True)`` once and query it until a
  stop file appears; print the observations as one ``RESULT {json}`` line.
- ``txn``: the same connection, but each observation is a transaction
  ``BEGIN; SELECT ...; (wait for the test to commit a write); SELECT ...; COMMIT``
  handshaken through files, so every transaction spans a commit by construction.
- ``ensure``: rounds of ``Warehouse.ensure`` (table creation), each started on a
  barrier file shared with other processes.

Writers report the attempts ``retry_transaction`` ran again (a pass-through wrapper
that only records the errors), so the test output shows which retries happened.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

DAILY = "stock_bars_daily"
START = date(2020, 1, 1)


def symbols(first: int, count: int) -> list[str]:
    return [f"{i:06d}" for i in range(first, first + count)]


def daily_frame(syms: list[str], days: int, *, start: date = START, price: int = 100) -> pl.DataFrame:
    """``len(syms) * days`` daily bars (calendar days), built without per-row Python.

    Prices depend on ``price`` so two frames over the same keys differ in every row.
    """
    dates = pl.date_range(start, start + timedelta(days=days - 1), eager=True).alias("date")
    frame = pl.DataFrame({"symbol": syms}).join(dates.to_frame(), how="cross")
    i = pl.int_range(0, pl.len(), dtype=pl.Int64)
    return frame.select(
        "symbol",
        "date",
        pl.lit(True).alias("adjusted"),
        (i % 997 + price).alias("open"),
        (i % 997 + price + 5).alias("high"),
        (i % 997 + price - 1).alias("low"),
        (i % 991 + price).alias("close"),
        (i * 7 % 100_003).alias("volume"),
        (i * 7 % 100_003 * (price + 1)).alias("turnover"),
    )


def _frame(spec: dict[str, Any]) -> pl.DataFrame:
    return daily_frame(
        symbols(spec["sym0"], spec["nsym"]),
        spec["days"],
        start=date.fromisoformat(spec.get("start", START.isoformat())),
        price=spec.get("price", 100),
    )


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _wait(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {path.name} after {timeout}s")
        time.sleep(0.002)


def _count_attempts() -> list[str]:
    """Record every failed attempt of the warehouse's transactions (a pass-through, behaviour unchanged)."""
    import warehouse.store as store

    failures: list[str] = []
    real = getattr(store, "retry_transaction", None)
    if real is None:  # the store no longer retries through this function: nothing to record
        return failures

    def counting(fn: Any, con: Any, *a: Any, **kw: Any) -> Any:
        def attempt() -> Any:
            try:
                return fn()
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}"[:300])
                raise

        return real(attempt, con, *a, **kw)

    store.retry_transaction = counting
    return failures


def cmd_write(args: dict[str, Any]) -> None:
    from warehouse import Run, Warehouse

    failures = _count_attempts()
    frame = _frame(args["frame"])
    wh = Warehouse(warehouse=args["root"])
    wh.con  # noqa: B018 - open the lake (and its meta tables) before the clock starts
    if args.get("go"):
        go = Path(args["go"])
        _say("READY")
        while not go.exists():
            time.sleep(0.002)
    run = Run(args["run_id"], flow="proc-test")
    _say(f"WRITING {frame.height}")
    t0 = time.monotonic()
    result = wh.write(args["dataset"], frame, run)
    elapsed = time.monotonic() - t0
    wh.close()
    done = {"rows": result.rows, "replaced": result.replaced, "seconds": elapsed, "failed_attempts": failures}
    _say("DONE " + json.dumps(done))


BATCH_SYMBOLS, BATCH_DAYS = 40, 500
BATCH = BATCH_SYMBOLS * BATCH_DAYS  # rows per batch


def batch(k: int) -> pl.DataFrame:
    """Batch ``k``: its own symbols, so a batch adds exactly BATCH rows."""
    return daily_frame(symbols(k * BATCH_SYMBOLS, BATCH_SYMBOLS), BATCH_DAYS, price=100 + k)


def batch_run(k: int) -> str:
    return f"batch-{k:02d}"


def cmd_batches(args: dict[str, Any]) -> None:
    """Write ``batch(k)`` for k in ``ks``, one write (and run id) each; print ``BATCH k seconds`` after each.

    With ``signals``, the i-th write waits for ``begun-i`` first and touches ``written-i`` after.
    """
    from warehouse import Run, Warehouse

    failures = _count_attempts()
    signals = Path(args["signals"]) if args.get("signals") else None
    wh = Warehouse(warehouse=args["root"])
    wh.con  # noqa: B018
    for i, k in enumerate(args["ks"]):
        frame = batch(k)
        if signals is not None:
            _wait(signals / f"begun-{i}", args["timeout"])
        t0 = time.monotonic()
        wh.write(DAILY, frame, Run(batch_run(k), flow="proc-test"))
        _say(f"BATCH {k} {time.monotonic() - t0:.4f}")
        if signals is not None:
            (signals / f"written-{i}").touch()
    wh.close()
    _say("DONE " + json.dumps({"failed_attempts": failures}))


_PER_RUN = (
    "SELECT coalesce(list(run_id ORDER BY run_id), []), coalesce(list(c ORDER BY run_id), []) "
    "FROM (SELECT run_id, count(*) AS c FROM {table} GROUP BY run_id)"
)


def _observe(con: Any, table: str) -> dict[str, Any]:
    """Two statements, each its own snapshot (unless inside a transaction): rows per run id, total rows."""
    runs, counts = con.execute(_PER_RUN.format(table=table)).fetchone()
    total = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return {"per_run": dict(zip(runs, counts, strict=True)), "total": total}


def cmd_poll(args: dict[str, Any]) -> None:
    from warehouse import connect

    stop = Path(args["stop"])
    con = connect(read_only=True, warehouse=args["root"])
    _say("OPEN")
    observations: list[dict[str, Any]] = []
    errors: list[str] = []
    while True:
        last = stop.exists()  # one more observation after the stop file, to see the final state
        try:
            observations.append(_observe(con, args["table"]))
        except Exception as exc:  # reported, the test fails on it
            errors.append(f"{type(exc).__name__}: {exc}")
        if last:
            break
        time.sleep(args.get("pause", 0.0))
    con.close()
    _say("RESULT " + json.dumps({"observations": observations, "errors": errors}))


def cmd_txn(args: dict[str, Any]) -> None:
    """For k < n: BEGIN, observe, touch ``begun-k``, wait for ``written-k``, observe twice, COMMIT, observe"""
    from warehouse import connect

    signals = Path(args["signals"])
    table = args["table"]
    con = connect(read_only=True, warehouse=args["root"])
    transactions: list[dict[str, Any]] = []
    for k in range(args["n"]):
        con.execute("BEGIN TRANSACTION")
        inside = [_observe(con, table)]
        (signals / f"begun-{k}").touch()
        _wait(signals / f"written-{k}", args["timeout"])
        inside.append(_observe(con, table))
        inside.append(_observe(con, table))
        con.execute("COMMIT")
        after = _observe(con, table)
        transactions.append({"inside": inside, "after": after})
    con.close()
    _say("RESULT " + json.dumps({"transactions": transactions}))


def cmd_ensure(args: dict[str, Any]) -> None:
    """Round i: print ``READY i``, wait for ``go-i``, ``ensure`` dataset ``names[i]``; report each outcome."""
    from warehouse import Warehouse, dataset

    failures = _count_attempts()
    go = Path(args["go"])
    wh = Warehouse(warehouse=args["root"])
    wh.con  # noqa: B018
    outcomes: list[str] = []
    seconds: list[float] = []
    for i, name in enumerate(args["names"]):
        _say(f"READY {i}")
        _wait(go / f"go-{i}", args["timeout"])
        t0 = time.monotonic()
        try:
            wh.ensure(dataset(name))
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}"[:300])
        seconds.append(round(time.monotonic() - t0, 4))
    wh.close()
    _say("RESULT " + json.dumps({"outcomes": outcomes, "seconds": seconds, "failed_attempts": failures}))


COMMANDS = {
    "write": cmd_write,
    "batches": cmd_batches,
    "poll": cmd_poll,
    "txn": cmd_txn,
    "ensure": cmd_ensure,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](json.loads(sys.argv[2]))
