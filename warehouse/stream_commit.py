"""The stream committer: durable log records -> typed rows -> one lake transaction with the log position.

It reads only from the tick log (never from the socket), from the stream's
committed position up to what the log has made durable, and commits each
micro-batch as one ``Commit``: the ``stock_trades``/``stock_orderbook`` rows, the
gaps the batch's gap records report, and the position after its last record.
After a crash, the next committer starts at the committed position, so a
record is in the lake exactly once (DESIGN.md decision 9).

Log records are the frames the realtime session yielded (REAL frames, and the
odd malformed or unexpected frame, kept as evidence) plus the worker's own gap
records (``{"trnm":"KWH_GAP",...}``). A REAL frame that does not normalize is
rejected on its own: the rest of its batch commits, the reject is counted,
logged and written to ``rejected.jsonl`` beside the log. Nothing is dropped
silently.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import polars as pl

from schemas.errors import SchemaError
from schemas.realtime_fast import decode_realtime
from warehouse.commit import Commit, Rows
from warehouse.datasets import dataset
from warehouse.ledger import Run
from warehouse.progress import StreamGap, StreamPosition
from warehouse.store import Warehouse
from warehouse.stream_datasets import SOURCE_COLUMNS, book_rows, trade_rows
from warehouse.stream_keys import TRADES, TradeKeys
from warehouse.ticklog import Position, Record, TickLog

__all__ = ["GAP_TRNM", "Batch", "CommitterStats", "StreamCommitter", "gap_record"]

log = logging.getLogger(__name__)
GAP_TRNM = "KWH_GAP"
_GAP_PREFIX = b'{"trnm":"KWH_GAP"'
_DATASET = {"0B": (TRADES, trade_rows), "0D": ("stock_orderbook", book_rows)}


def gap_record(start_ns: int, end_ns: int | None, reason: str, symbols: Sequence[str]) -> bytes:
    """The log record of a gap: the worker writes it in the log like a frame, so it commits exactly once."""
    body = {
        "trnm": GAP_TRNM,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "reason": reason,
        "symbols": list(symbols),
    }
    return orjson.dumps(body)


@dataclass
class CommitterStats:
    commits: int = 0
    records: int = 0
    entries: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    rejected: int = 0
    other: int = 0  # frames that are neither REAL nor gaps (kept in the log, not stored)
    duplicates: int = 0  # trades sent twice (same cumulative volume), stored once
    replaced_trades: int = 0  # trades at or under a stored key of their symbol-day: put by keyed delete
    key_reloads: int = 0  # times the stored trade keys were read again (another writer committed)
    last_commit_s: float = 0.0
    commit_lag_s: float = 0.0  # receive -> committed, of the newest record of the last commit

    def as_dict(self) -> dict[str, object]:
        out = {k: v for k, v in self.__dict__.items() if k != "rows"}
        out["rows"] = dict(self.rows)
        return out


@dataclass
class Batch:
    """One micro-batch, decoded and ready to commit: the records from ``start`` up to ``end``."""

    start: Position | None  # the committed position it follows
    end: Position  # the position after its last record: committed with its rows
    records: int
    last_seq: int
    last_received_ns: int
    rows: list[Rows]
    gaps: list[StreamGap]
    counts: Counter[str]  # entries, other, duplicates, rejected: added to the stats once committed
    payload_bytes: int


class StreamCommitter:
    """Commits ``log`` into ``wh`` under stream name ``stream``, one micro-batch per ``commit_once``.

    ``commit_once`` is ``prepare`` (read records after a position, decode, build rows: no lake
    access) then ``apply`` (one transaction); the worker runs the two in separate threads so the
    next batch decodes while the last one commits. Batches are applied in log order only.
    """

    def __init__(
        self,
        wh: Warehouse,
        tick_log: TickLog,
        stream: str,
        run: Run,
        *,
        day: date | None = None,
        max_records: int = 20_000,
        max_bytes: int = 64 << 20,
    ) -> None:
        self.wh = wh
        self.log = tick_log
        self.stream = stream
        self.run = run
        self.day = day  # a replayed session: times are put on this date, not on the arrival date
        self.max_records = max_records
        self.max_bytes = max_bytes  # a batch's frames; decoded, the stored columns take less than this
        self.stats = CommitterStats()
        found = wh.stream_position(stream)
        self.position = Position(found.segment, found.offset) if found else None
        first = next(iter(tick_log.read(self.position)), None)
        self.next_seq = first.seq if first else tick_log.next_seq  # the first record not committed
        self.rejects_path = Path(tick_log.folder) / "rejected.jsonl"
        self.keys = TradeKeys(wh)  # which trades append, which replace their keys

    def pending(self, after: Position | None = None) -> bool:
        """Whether the log holds durable records after ``after`` (default: the committed position)."""
        after = after or self.position
        return after is None or after < self.log.durable

    def commit_once(self, stop: Position | None = None) -> int:
        """Commit the next batch of durable records (up to ``stop``); the number of records committed."""
        batch = self.prepare(self.position, stop)
        return self.apply(batch) if batch is not None else 0

    def drain(self, stop: Position | None = None) -> int:
        """Commit until nothing durable (before ``stop``) is left; the records committed."""
        total = 0
        while n := self.commit_once(stop):
            total += n
        return total

    def prepare(self, start: Position | None, stop: Position | None = None) -> Batch | None:
        """The durable records after ``start`` (up to ``stop``), at most ``max_records`` and about
        ``max_bytes`` of frames, decoded into rows; None when there are none. Touches no lake."""
        records: list[Record] = []
        size = 0
        for rec in self.log.read(start, stop):
            records.append(rec)
            size += len(rec.payload)
            if len(records) >= self.max_records or size >= self.max_bytes:
                break
        if not records:
            return None
        counts: Counter[str] = Counter()
        rows, gaps = self._rows(records, counts)
        last = records[-1]
        return Batch(start, last.next, len(records), last.seq, last.received_ns, rows, gaps, counts, size)

    def apply(self, batch: Batch) -> int:
        """Commit a prepared batch: its rows and the position after it in one transaction."""
        if batch.start != self.position:
            raise RuntimeError(f"batch from {batch.start} applied at committed position {self.position}")
        started = time.perf_counter()
        after = batch.end
        rows: list[Rows] = []
        fresh = None
        for r in batch.rows:  # tables first: creating one is a commit of its own
            self.wh.ensure(dataset(r.dataset))
        trusted = self.keys.check()  # nobody else committed since our last commit
        for r in batch.rows:
            if r.dataset != TRADES:
                rows.append(r)
                continue
            fresh, stale = self.keys.split(r.frame)
            rows += [Rows(TRADES, part, replace=part is stale) for part in (fresh, stale) if part.height]
        commit = Commit(
            self.run,
            rows=rows,
            positions=[StreamPosition(self.stream, after.segment, after.offset, verified=trusted)],
            gaps=batch.gaps,
        )
        result = self.wh.commit(commit)
        self.keys.committed(self.run, fresh)
        self.position = after
        self.next_seq = batch.last_seq + 1
        self.log.release(self.position)
        s = self.stats
        s.commits += 1
        s.records += batch.records
        s.gaps += len(batch.gaps)
        s.entries += batch.counts["entries"]
        s.other += batch.counts["other"]
        s.duplicates += batch.counts["duplicates"]
        s.rejected += batch.counts["rejected"]
        s.replaced_trades += sum(r.frame.height for r in rows if r.dataset == TRADES and r.replace)
        s.key_reloads = self.keys.reloads + self.keys.recommits
        for w in result.writes:
            s.rows[w.dataset] += w.rows
        s.last_commit_s = time.perf_counter() - started
        s.commit_lag_s = max(0.0, time.time() - batch.last_received_ns / 1e9)
        return batch.records

    # ---- records to rows -------------------------------------------------------------------
    def _rows(self, records: list[Record], counts: Counter[str]) -> tuple[list[Rows], list[StreamGap]]:
        real: list[Record] = []
        gaps: list[StreamGap] = []
        for rec in records:  # per record, not per entry: cheap prefix checks
            if rec.payload.startswith(_GAP_PREFIX):
                gaps.extend(self._gaps(rec))
            else:  # a REAL frame, or not: the batch decoder decides and names the bad ones
                real.append(rec)
        frames = self._normalize(real, counts)
        rows = []
        for code, frame in frames.items():
            if code not in _DATASET:
                counts["other"] += frame.height
                continue
            name, build = _DATASET[code]
            built = build(frame)
            if name == TRADES:
                unique = built.unique(subset=["symbol", "venue", "date", "cum_volume"], keep="last")
                counts["duplicates"] += built.height - unique.height
                built = unique
            # a book row's key holds its log record: new after the committed position, nothing to
            # replace; a trade may come twice (the same cumulative volume): ``apply`` splits them
            rows.append(Rows(name, built, coverage=None, replace=name == TRADES))
            counts["entries"] += frame.height
        return rows, gaps

    def _normalize(self, real: list[Record], counts: Counter[str]) -> dict[str, pl.DataFrame]:
        if not real:
            return {}
        try:
            return self._normalize_batch(real)
        except SchemaError:
            pass  # find the bad frames one by one (the error path only)
        good = []
        for rec in real:
            try:
                self._normalize_batch([rec])
            except SchemaError as exc:
                self._reject(rec, str(exc))
                counts["rejected"] += 1
                continue
            good.append(rec)
        return self._normalize_batch(good) if good else {}

    def _normalize_batch(self, recs: list[Record]) -> dict[str, pl.DataFrame]:
        payloads = [r.payload for r in recs]
        received = [r.received_ns for r in recs]
        seqs = [r.seq for r in recs]
        if self.day is not None:
            frames = decode_realtime(payloads, columns=SOURCE_COLUMNS, seqs=seqs, day=self.day)
        else:
            frames = decode_realtime(payloads, columns=SOURCE_COLUMNS, seqs=seqs, received_ns=received)
        by_seq = pl.DataFrame(
            {"log_seq": seqs, "received_ns": received}, schema={"log_seq": pl.Int64, "received_ns": pl.Int64}
        )
        return {
            code: f.rename({"seq": "log_seq"}).join(by_seq, on="log_seq", how="left", maintain_order="left")
            for code, f in frames.items()
        }

    def _gaps(self, rec: Record) -> list[StreamGap]:
        body = orjson.loads(rec.payload)
        start = datetime.fromtimestamp(body["start_ns"] / 1e9, UTC)
        end = datetime.fromtimestamp(body["end_ns"] / 1e9, UTC) if body.get("end_ns") is not None else None
        return [StreamGap(self.stream, s, start, end, body["reason"]) for s in body["symbols"]]

    def _reject(self, rec: Record, why: str) -> None:
        log.warning("log record %d rejected: %s", rec.seq, why)
        entry = {
            "seq": rec.seq,
            "received_ns": rec.received_ns,
            "why": why,
            "payload": rec.payload[:2000].decode("utf-8", "replace"),
        }
        with self.rejects_path.open("ab") as fh:
            fh.write(orjson.dumps(entry) + b"\n")
