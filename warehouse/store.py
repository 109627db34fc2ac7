"""Idempotent, transactional writes to the lake; coverage; the run ledger; maintenance.

``Warehouse.write(dataset, frame, run)`` is one DuckLake transaction:

1. delete the rows whose key the frame carries (bounded by the frame's time
   range and symbols, so DuckLake prunes files by their statistics),
2. insert the frame sorted by symbol and time,
3. merge the frame's time span into ``meta.coverage``,
4. append a row to the ledger ``meta.writes`` (and open the run in ``meta.runs``).

A crash at any point leaves the previous snapshot: the catalog commit is
the last step. Another writer holding the catalog makes the transaction
run again from the start (it is idempotent, so that is safe).
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from schemas.calendar import KST, trading_days
from warehouse.datasets import RUN_ID, Dataset, dataset, datasets
from warehouse.lake import LAKE, LakeConfig, WarehouseError, open_lake, retry_transaction

__all__ = ["Cursor", "Run", "Span", "Warehouse", "WriteResult", "connect", "options_key"]

_META = {
    "coverage": {
        "dataset": "VARCHAR",
        "symbol": "VARCHAR",
        "options": "VARCHAR",
        "start_date": "DATE",
        "end_date": "DATE",
        "run_id": "VARCHAR",
        "updated_at": "TIMESTAMPTZ",
    },
    "writes": {
        "run_id": "VARCHAR",
        "dataset": "VARCHAR",
        "rows": "BIGINT",
        "replaced": "BIGINT",
        "symbols": "INTEGER",
        "start_date": "DATE",
        "end_date": "DATE",
        "committed_at": "TIMESTAMPTZ",
    },
    "cursors": {
        "dataset": "VARCHAR",
        "symbol": "VARCHAR",
        "options": "VARCHAR",
        "api_id": "VARCHAR",
        "next_key": "VARCHAR",
        "below": "DATE",
        "run_id": "VARCHAR",
        "updated_at": "TIMESTAMPTZ",
    },
    "runs": {
        "run_id": "VARCHAR",
        "flow": "VARCHAR",
        "status": "VARCHAR",
        "started_at": "TIMESTAMPTZ",
        "finished_at": "TIMESTAMPTZ",
        "params": "VARCHAR",
        "summary": "VARCHAR",
    },
}
_META_COMMENTS = {
    "coverage": "수집 범위: dataset, symbol, options(JSON) 별로 받아 둔 날짜 구간 (달력일, 양끝 포함)",
    "writes": "적재 원장: write 한 번에 한 행, 데이터와 같은 트랜잭션에서 기록",
    "runs": "실행 원장: flow 실행마다 한 행 (시작, 끝, 상태, 요약 JSON)",
    "cursors": "이어받기 위치: 끝나지 않은 창의 next-key (below 이후 날짜는 이미 기록됨)",
}
_SQL_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Int8: "TINYINT",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
    pl.Time: "TIME",
}


def sql_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            raise WarehouseError("naive datetimes are not stored; give them a time zone")
        return "TIMESTAMPTZ"
    try:
        return _SQL_TYPES[type(dtype)]
    except KeyError:
        raise WarehouseError(f"no SQL type for {dtype}") from None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _now() -> datetime:
    return datetime.now(UTC)


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """One DuckDB connection is not safe for concurrent use: every method holds the warehouse's lock."""

    @functools.wraps(method)
    def wrapper(self: Warehouse, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Run:
    """One flow run; its id goes on every row it writes."""

    id: str
    flow: str = "manual"
    started_at: datetime = field(default_factory=_now)
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, flow: str = "manual", params: Mapping[str, Any] | None = None) -> Run:
        now = _now()
        return cls(f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}", flow, now, dict(params or {}))


@dataclass(frozen=True)
class Span:
    """Days fetched for one symbol and option set (both ends included)."""

    symbol: str  # "" for datasets without a symbol
    options: str  # options_key(...)
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise WarehouseError(f"span for {self.symbol!r} starts {self.start} after it ends {self.end}")


@dataclass(frozen=True)
class Cursor:
    """Where an unfinished paged fetch stopped: ``next_key`` leads to the rows older than ``below``.

    Written with the rows it follows, in the same transaction; ``next_key=None`` removes it.
    """

    api_id: str
    symbol: str
    options: str
    next_key: str | None
    below: date | None = None


@dataclass(frozen=True)
class WriteResult:
    dataset: str
    rows: int
    replaced: int
    spans: tuple[Span, ...]


def options_key(options: Mapping[str, Any]) -> str:
    """The canonical text of an option set, as coverage stores it."""
    return json.dumps({k: options[k] for k in sorted(options)}, separators=(",", ":"), ensure_ascii=False)


def _merge(spans: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _subtract(window: tuple[date, date], covered: Sequence[tuple[date, date]]) -> list[tuple[date, date]]:
    start, end = window
    out: list[tuple[date, date]] = []
    cursor = start
    for lo, hi in covered:
        if hi < cursor or lo > end:
            continue
        if lo > cursor:
            out.append((cursor, min(end, lo - timedelta(days=1))))
        cursor = max(cursor, hi + timedelta(days=1))
        if cursor > end:
            break
    if cursor <= end:
        out.append((cursor, end))
    return out


def _trading_trim(ranges: Iterable[tuple[date, date]]) -> list[tuple[date, date, int]]:
    """Each range shrunk to its first and last trading day, with its trading-day count; empty ones dropped."""
    out = []
    for lo, hi in ranges:
        days = trading_days(lo, hi)
        if days:
            out.append((days[0], days[-1], len(days)))
    return out


class Warehouse:
    """The lake, opened for writing. One per process is enough; writes are serialized by a lock."""

    def __init__(self, config: LakeConfig | None = None, *, warehouse: str | Path | None = None) -> None:
        self.config = config or LakeConfig.load(warehouse)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()
        self._ready: set[str] = set()

    def __repr__(self) -> str:
        return f"Warehouse({self.config.describe()})"

    # ------------------------------------------------------------------ connection

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self._con = open_lake(self.config)
                retry_transaction(self._create_meta, self._con, also=("already exists",))
            return self._con

    @_locked
    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._ready.clear()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create_meta(self) -> None:
        con = self._con
        assert con is not None
        have = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'meta'", [LAKE]
        ).fetchone()
        if have and have[0] == len(_META):
            return
        con.execute("BEGIN")
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        for table, cols in _META.items():
            body = ", ".join(f"{c} {t}" for c, t in cols.items())
            con.execute(f"CREATE TABLE IF NOT EXISTS meta.{table} ({body})")
        existing = {
            r[0]: r[1]
            for r in con.execute(
                "SELECT table_name, comment FROM duckdb_tables() "
                "WHERE database_name = ? AND schema_name = 'meta'",
                [LAKE],
            ).fetchall()
        }
        for table, comment in _META_COMMENTS.items():
            if existing.get(table) != comment:
                con.execute(f"COMMENT ON TABLE meta.{table} IS {_text(comment)}")
        con.execute("COMMIT")

    @_locked
    def tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'", [LAKE]
        ).fetchall()
        return {r[0] for r in rows}

    @_locked
    def ensure(self, ds: Dataset) -> None:
        """Create the dataset's table (partitioned, commented), or add columns the registry gained."""
        if ds.name in self._ready:
            return

        def create() -> None:
            con = self.con
            # look inside the transaction: a table another process creates meanwhile is either
            # visible here or makes this commit conflict (retried)
            con.execute("BEGIN")
            have = dict(
                con.execute(
                    "SELECT column_name, data_type FROM duckdb_columns() "
                    "WHERE database_name = ? AND schema_name = 'main' AND table_name = ?",
                    [LAKE, ds.name],
                ).fetchall()
            )
            if not have:
                cols = ", ".join(f"{_ident(c)} {sql_type(t)}" for c, t in ds.schema.items())
                con.execute(f"CREATE TABLE {_ident(ds.name)} ({cols})")
                if ds.partition:
                    con.execute(
                        f"ALTER TABLE {_ident(ds.name)} SET PARTITIONED BY ({', '.join(ds.partition)})"
                    )
                con.execute(f"COMMENT ON TABLE {_ident(ds.name)} IS {_text(ds.description)}")
                for col, comment in ds.comments.items():
                    con.execute(f"COMMENT ON COLUMN {_ident(ds.name)}.{_ident(col)} IS {_text(comment)}")
            else:
                for col, dtype in ds.schema.items():
                    if col not in have:
                        con.execute(
                            f"ALTER TABLE {_ident(ds.name)} ADD COLUMN {_ident(col)} {sql_type(dtype)}"
                        )
                    elif have[col].split("(")[0] != sql_type(dtype).split("(")[0] and not (
                        have[col].startswith("TIMESTAMP WITH TIME ZONE") and sql_type(dtype) == "TIMESTAMPTZ"
                    ):
                        raise WarehouseError(
                            f"{ds.name}.{col} is {have[col]} in the lake "
                            f"but {sql_type(dtype)} in the registry"
                        )
            con.execute("COMMIT")

        with self._lock:
            retry_transaction(create, self.con, also=("already exists",))
            self._ready.add(ds.name)

    # ------------------------------------------------------------------ writing

    def _conform(self, ds: Dataset, frame: pl.DataFrame, run: Run) -> pl.DataFrame:
        want = {c: t for c, t in ds.schema.items() if c != RUN_ID}
        extra = [c for c in frame.columns if c not in ds.schema]
        missing = [c for c in want if c not in frame.columns]
        if extra or missing:
            raise WarehouseError(
                f"frame does not fit dataset {ds.name}: "
                + "; ".join(
                    p
                    for p in (f"missing {missing}" if missing else "", f"unknown {extra}" if extra else "")
                    if p
                )
            )
        wrong = [f"{c} is {frame.schema[c]}, expected {t}" for c, t in want.items() if frame.schema[c] != t]
        if wrong:
            raise WarehouseError(f"frame does not fit dataset {ds.name}: {'; '.join(wrong)}")
        out = frame.select(*want).with_columns(pl.lit(run.id, pl.String).alias(RUN_ID))
        nulls = [c for c in ds.key if out[c].null_count()]
        if nulls:
            raise WarehouseError(f"dataset {ds.name}: key columns {nulls} have nulls; nothing written")
        dup = out.filter(out.select(ds.key).is_duplicated())
        if dup.height:
            sample = dup.select(ds.key).head(1).to_dicts()[0]
            raise WarehouseError(
                f"dataset {ds.name}: {dup.height} rows share a key within one write "
                f"(e.g. {sample}); nothing written"
            )
        return out

    def _spans(self, ds: Dataset, frame: pl.DataFrame) -> list[Span]:
        if frame.is_empty():
            return []
        day = pl.col(ds.time)
        if frame.schema[ds.time] != pl.Date:
            day = day.dt.convert_time_zone("Asia/Seoul").dt.date()
        group = ([ds.symbol] if ds.symbol else []) + list(ds.options)
        spans = (
            frame.group_by(group or pl.lit(1).alias("_all"))
            .agg(day.min().alias("start"), day.max().alias("end"))
            .to_dicts()
        )
        return [
            Span(
                str(s[ds.symbol]) if ds.symbol else "",
                options_key({o: s[o] for o in ds.options}),
                s["start"],
                s["end"],
            )
            for s in spans
        ]

    @_locked
    def write(
        self,
        name: str,
        frame: pl.DataFrame,
        run: Run,
        coverage: Sequence[Span] | None = None,
        cursor: Cursor | None = None,
    ) -> WriteResult:
        """Replace the frame's keys in ``name``, record coverage and the ledger: one transaction.

        ``coverage`` says which days were fetched (a window with no rows is still
        covered); by default each symbol and option set covers its rows' first to
        last day.
        """
        ds = dataset(name)
        rows = self._conform(ds, frame, run)
        spans = list(coverage) if coverage is not None else self._spans(ds, rows)
        if rows.is_empty() and not spans and cursor is None:
            return WriteResult(ds.name, 0, 0, ())
        self.ensure(ds)
        order = [c for c in (ds.symbol, ds.time) if c]
        arrow = rows.sort(order).to_arrow() if order else rows.to_arrow()

        def transaction() -> int:
            con = self.con
            con.execute("BEGIN")
            replaced = 0
            if rows.height:
                con.register("_incoming", arrow)
                try:
                    replaced = self._replace(con, ds, rows)
                    con.execute(f"INSERT INTO {_ident(ds.name)} BY NAME SELECT * FROM _incoming")
                finally:
                    con.unregister("_incoming")
            self._record_coverage(con, ds, spans, run)
            if cursor is not None:
                self._record_cursor(con, ds, cursor, run)
            self._record_write(con, ds, rows, replaced, spans, run)
            con.execute("COMMIT")
            return replaced

        with self._lock:
            replaced = retry_transaction(transaction, self.con)
        return WriteResult(ds.name, rows.height, replaced, tuple(spans))

    def _replace(self, con: duckdb.DuckDBPyConnection, ds: Dataset, rows: pl.DataFrame) -> int:
        table = _ident(ds.name)
        where: list[str] = []
        params: list[Any] = []
        if ds.time in ds.replace_by:
            where.append(f"{_ident(ds.time)} BETWEEN ? AND ?")
            params += [rows[ds.time].min(), rows[ds.time].max()]
        if ds.symbol and ds.symbol in ds.replace_by:
            where.append(f"{_ident(ds.symbol)} IN (SELECT DISTINCT {_ident(ds.symbol)} FROM _incoming)")
        cols = ", ".join(_ident(c) for c in ds.replace_by)
        tuple_ = f"({cols})" if len(ds.replace_by) > 1 else cols
        where.append(f"{tuple_} IN (SELECT {cols} FROM _incoming)")
        result = con.execute(f"DELETE FROM {table} WHERE {' AND '.join(where)}", params).fetchone()
        return int(result[0]) if result else 0

    def _record_coverage(
        self, con: duckdb.DuckDBPyConnection, ds: Dataset, spans: Sequence[Span], run: Run
    ) -> None:
        if not spans:
            return
        pairs = sorted({(s.symbol, s.options) for s in spans})
        pair_frame = pl.DataFrame(pairs, schema={"symbol": pl.String, "options": pl.String}, orient="row")
        con.register("_pairs", pair_frame.to_arrow())
        try:
            existing = con.execute(
                "SELECT symbol, options, start_date, end_date FROM meta.coverage "
                "WHERE dataset = ? AND (symbol, options) IN (SELECT symbol, options FROM _pairs)",
                [ds.name],
            ).fetchall()
            con.execute(
                "DELETE FROM meta.coverage WHERE dataset = ? "
                "AND (symbol, options) IN (SELECT symbol, options FROM _pairs)",
                [ds.name],
            )
        finally:
            con.unregister("_pairs")
        ranges: dict[tuple[str, str], list[tuple[date, date]]] = defaultdict(list)
        for symbol, options, start, end in existing:
            ranges[(symbol, options)].append((start, end))
        for s in spans:
            ranges[(s.symbol, s.options)].append((s.start, s.end))
        now = _now()
        merged = [
            (ds.name, symbol, options, lo, hi, run.id, now)
            for (symbol, options), spans_ in ranges.items()
            for lo, hi in _merge(spans_)
        ]
        frame = pl.DataFrame(
            merged,
            schema={
                "dataset": pl.String,
                "symbol": pl.String,
                "options": pl.String,
                "start_date": pl.Date,
                "end_date": pl.Date,
                "run_id": pl.String,
                "updated_at": pl.Datetime("us", "UTC"),
            },
            orient="row",
        )
        con.register("_coverage", frame.to_arrow())
        try:
            con.execute("INSERT INTO meta.coverage BY NAME SELECT * FROM _coverage")
        finally:
            con.unregister("_coverage")

    def _record_cursor(self, con: duckdb.DuckDBPyConnection, ds: Dataset, cursor: Cursor, run: Run) -> None:
        where = [ds.name, cursor.symbol, cursor.options, cursor.api_id]
        con.execute(
            "DELETE FROM meta.cursors WHERE dataset = ? AND symbol = ? AND options = ? AND api_id = ?", where
        )
        if cursor.next_key is not None:
            con.execute(
                "INSERT INTO meta.cursors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [*where, cursor.next_key, cursor.below, run.id, _now()],
            )

    @_locked
    def cursor(self, name: str, symbol: str, options: str, api_id: str) -> Cursor | None:
        """The saved position of an unfinished fetch, if any."""
        row = self.con.execute(
            "SELECT next_key, below FROM meta.cursors WHERE dataset = ? AND symbol = ? AND options = ? "
            "AND api_id = ?",
            [dataset(name).name, symbol, options, api_id],
        ).fetchone()
        return Cursor(api_id, symbol, options, row[0], row[1]) if row else None

    def _record_write(
        self,
        con: duckdb.DuckDBPyConnection,
        ds: Dataset,
        rows: pl.DataFrame,
        replaced: int,
        spans: Sequence[Span],
        run: Run,
    ) -> None:
        start = min((s.start for s in spans), default=None)
        end = max((s.end for s in spans), default=None)
        symbols = len({s.symbol for s in spans})
        con.execute(
            "INSERT INTO meta.writes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run.id, ds.name, rows.height, replaced, symbols, start, end, _now()],
        )
        known = con.execute("SELECT count(*) FROM meta.runs WHERE run_id = ?", [run.id]).fetchone()
        if not known or not known[0]:
            self._insert_run(con, run, "running", None, {})

    # ------------------------------------------------------------------ run ledger

    @staticmethod
    def _insert_run(
        con: duckdb.DuckDBPyConnection,
        run: Run,
        status: str,
        finished: datetime | None,
        summary: Mapping[str, Any],
    ) -> None:
        con.execute(
            "INSERT INTO meta.runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                run.id,
                run.flow,
                status,
                run.started_at,
                finished,
                json.dumps(dict(run.params), default=str, ensure_ascii=False),
                json.dumps(dict(summary), default=str, ensure_ascii=False),
            ],
        )

    @_locked
    def record_run(self, run: Run, status: str, summary: Mapping[str, Any] | None = None) -> None:
        """Open (status ``running``) or close (``ok``, ``failed``, ...) a run in ``meta.runs``."""
        finished = None if status == "running" else _now()

        def transaction() -> None:
            con = self.con
            con.execute("BEGIN")
            con.execute("DELETE FROM meta.runs WHERE run_id = ?", [run.id])
            self._insert_run(con, run, status, finished, summary or {})
            con.execute("COMMIT")

        with self._lock:
            retry_transaction(transaction, self.con)

    @_locked
    def runs(self, limit: int = 20) -> pl.DataFrame:
        return self.con.execute(
            "SELECT r.*, coalesce(w.rows, 0) AS rows_written FROM meta.runs r "
            "LEFT JOIN (SELECT run_id, sum(rows) AS rows FROM meta.writes GROUP BY run_id) w USING (run_id) "
            "ORDER BY started_at DESC LIMIT ?",
            [limit],
        ).pl()

    # ------------------------------------------------------------------ coverage

    @_locked
    def coverage(self, name: str | None = None) -> pl.DataFrame:
        sql = "SELECT dataset, symbol, options, start_date, end_date FROM meta.coverage"
        params: list[Any] = []
        if name is not None:
            sql += " WHERE dataset = ?"
            params.append(dataset(name).name)
        return self.con.execute(sql + " ORDER BY ALL", params).pl()

    @_locked
    def covered(self, name: str, symbol: str, options: Mapping[str, Any]) -> list[tuple[date, date]]:
        rows = self.con.execute(
            "SELECT start_date, end_date FROM meta.coverage WHERE dataset = ? AND symbol = ? AND options = ? "
            "ORDER BY start_date",
            [dataset(name).name, symbol, options_key(options)],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    @_locked
    def missing(
        self, name: str, symbol: str, options: Mapping[str, Any], start: date, end: date
    ) -> list[tuple[date, date]]:
        """The parts of [start, end] not yet fetched, trimmed to trading days (what a backfill must fetch)."""
        if start > end:
            raise WarehouseError(f"window starts {start} after it ends {end}")
        holes = _subtract((start, end), _merge(self.covered(name, symbol, options)))
        return [(lo, hi) for lo, hi, _ in _trading_trim(holes)]

    @_locked
    def gaps(self, name: str | None = None) -> pl.DataFrame:
        """Trading days inside each covered stretch's hull that were never fetched."""
        cov = self.coverage(name)
        out = []
        for (ds_name, symbol, options), group in cov.group_by(
            ["dataset", "symbol", "options"], maintain_order=True
        ):
            if dataset(str(ds_name)).style in ("snapshot", "reference"):
                continue
            spans = list(zip(group["start_date"], group["end_date"], strict=True))
            merged = _merge(spans)
            hull = (merged[0][0], merged[-1][1])
            for lo, hi, n in _trading_trim(_subtract(hull, merged)):
                out.append((ds_name, symbol, options, lo, hi, n))
        return pl.DataFrame(
            out,
            schema={
                "dataset": pl.String,
                "symbol": pl.String,
                "options": pl.String,
                "gap_start": pl.Date,
                "gap_end": pl.Date,
                "trading_days": pl.Int64,
            },
            orient="row",
        )

    # ------------------------------------------------------------------ reading

    @_locked
    def sql(self, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        return self.con.execute(query, params or []).pl()

    @_locked
    def read(
        self,
        name: str,
        symbols: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pl.DataFrame:
        """A dataset's rows, optionally for some symbols and days, in key order."""
        ds = dataset(name)
        if ds.name not in self.tables():
            return pl.DataFrame(schema=ds.schema)
        where: list[str] = []
        params: list[Any] = []
        if symbols is not None and ds.symbol:
            where.append(f"{_ident(ds.symbol)} IN (SELECT unnest(?))")
            params.append(list(symbols))
        col = _ident(ds.time)
        dated = ds.schema[ds.time] == pl.Date
        # timestamps are bounded by KST midnights, so file statistics prune (no cast per row)
        if start is not None:
            where.append(f"{col} >= ?")
            params.append(start if dated else datetime.combine(start, time(), KST))
        if end is not None:
            where.append(f"{col} {'<=' if dated else '<'} ?")
            params.append(end if dated else datetime.combine(end + timedelta(days=1), time(), KST))
        sql = f"SELECT * FROM {_ident(ds.name)}" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY " + ", ".join(_ident(c) for c in ds.key)
        return self.con.execute(sql, params).pl().select(list(ds.schema))

    @_locked
    def status(self) -> pl.DataFrame:
        """Per dataset in the lake: rows, symbols, first and last time, last write and run, gap days."""
        have = self.tables()
        gaps = self.gaps()
        gap_days = dict(gaps.group_by("dataset").agg(pl.col("trading_days").sum()).iter_rows())
        last = {
            r[0]: (r[1], r[2])
            for r in self.con.execute(
                "SELECT dataset, max(committed_at), arg_max(run_id, committed_at) "
                "FROM meta.writes GROUP BY dataset"
            ).fetchall()
        }
        out = []
        for name, ds in datasets().items():
            if name not in have:
                continue
            sym = f"count(DISTINCT {_ident(ds.symbol)})" if ds.symbol else "NULL"
            n, n_sym, first, latest = self.con.execute(
                f"SELECT count(*), {sym}, min({_ident(ds.time)}), max({_ident(ds.time)}) FROM {_ident(name)}"
            ).fetchone() or (0, None, None, None)
            written, run_id = last.get(name, (None, None))
            out.append(
                (
                    name,
                    n,
                    n_sym,
                    _when(first),
                    _when(latest),
                    written,
                    run_id,
                    int(gap_days.get(name, 0)),
                )
            )
        return pl.DataFrame(
            out,
            schema={
                "dataset": pl.String,
                "rows": pl.Int64,
                "symbols": pl.Int64,
                "first": pl.String,
                "last": pl.String,
                "last_write": pl.Datetime("us", "UTC"),
                "last_run": pl.String,
                "gap_days": pl.Int64,
            },
            orient="row",
        )

    # ------------------------------------------------------------------ maintenance

    @_locked
    def compact(self, older_than: timedelta = timedelta(days=7), dry_run: bool = False) -> dict[str, int]:
        """Merge small files, expire snapshots older than ``older_than`` and delete files no one needs.

        Files of expired snapshots (and orphans from crashed writers) are deleted only
        once they are ``older_than`` too, so a long-running reader is not cut off.
        ``dry_run`` counts what would be expired and deleted and changes nothing.
        """
        cutoff = _now() - older_than
        flag = ", dry_run => true" if dry_run else ""

        def count(sql: str, *params: Any) -> int:
            return len(self.con.execute(sql, list(params)).fetchall())

        with self._lock:
            before = self._file_count()
            rewritten = merged = 0
            if not dry_run:
                rewritten = count(f"CALL ducklake_rewrite_data_files('{LAKE}')")
                merged = count(f"CALL ducklake_merge_adjacent_files('{LAKE}')")
            expired = count(f"CALL ducklake_expire_snapshots('{LAKE}', older_than => ?{flag})", cutoff)
            cleaned = count(f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => ?{flag})", cutoff)
            orphans = count(f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => ?{flag})", cutoff)
            after = self._file_count()
        return {
            "files_before": before,
            "files_after": after,
            "rewritten": rewritten,
            "merged": merged,
            "snapshots_expired": expired,
            "files_deleted": cleaned + orphans,
        }

    def _file_count(self) -> int:
        row = self.con.execute(
            f"SELECT coalesce(sum(file_count), 0) FROM ducklake_table_info('{LAKE}')"
        ).fetchone()
        return int(row[0]) if row else 0


def _when(value: date | datetime | None) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")
    return None if value is None else str(value)


def connect(
    read_only: bool = True,
    warehouse: str | Path | None = None,
    catalog: str | None = None,
    data_path: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on which every dataset is a plain table name (``.pl()`` gives Polars).

    >>> con = connect()                                  # doctest: +SKIP
    >>> con.sql("SELECT * FROM stock_bars_daily WHERE symbol = '005930'").pl()   # doctest: +SKIP
    """
    config = LakeConfig.load(warehouse, catalog, data_path)
    if read_only:
        return open_lake(config, read_only=True)
    with Warehouse(config) as wh:
        wh.con  # noqa: B018 - creates the meta tables on a new lake
    return open_lake(config)
