"""Healing stream gaps from the tick chart: the trades the stream missed, inserted with ``source = 'heal'``.

The streaming worker records per symbol every time it was not receiving
(``meta.stream_gaps``). After the close, ``heal_gaps`` fetches the day's ticks
of each symbol with unhealed gaps from ka10079 (1-tick bars: one row per trade,
same times, prices and sizes as the 0B stream), gives each tick the cumulative
volume the stream's FID 13 would have shown (the running sum of sizes over the
day, in time order), and appends the ticks whose key (symbol, venue, date,
cumulative volume) is not in ``stock_trades`` yet, with the gaps marked healed,
in one transaction per symbol. Streamed rows are never touched; a second heal
finds nothing missing and inserts nothing.

How far back to page. ka10079 takes no date: it pages newest first from now,
so healing works for the current trading day. A tick's cumulative volume needs
the volume before the first tick fetched. Either page to the day's first tick
(offset 0), or stop at an *anchor*: the last second, a margin before the
earliest gap, in which the stream received trades. Outside gaps the stream got
every trade of that second, so its largest cumulative volume there is the
volume through that second's last tick, and the offset is that minus the sizes
fetched through that second. Late gaps in a liquid stock then cost a few pages
instead of the whole day. The anchor is checked, not trusted: every stored
trade in the fetched range must meet a tick with the same cumulative volume,
time, price and size; if not (the stream lost a trade it did not report), paging
goes on to the day's first tick from where it stopped, and a mismatch there is
an error (nothing written).

Columns the tick chart does not carry (side, cumulative turnover, best quotes,
the day's open/high/low, strength) are null or 0 (``side``: unknown); the change
and rate come from ka10079's ``pred_pre``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from connectors import KiwoomClient, Page, oldest_row
from flows.ingest import DAY_FINAL_AT
from schemas.calendar import KST
from schemas.normalize import normalize_pages
from warehouse import Commit, Rows, Run, StreamGap, Warehouse, dataset

__all__ = [
    "VENUE_SUFFIX",
    "HealError",
    "HealResult",
    "SymbolHeal",
    "align",
    "heal_gaps",
    "split_code",
    "tick_trades",
    "venue_code",
]

TICK_TR = "ka10079"
ANCHOR_MARGIN = timedelta(seconds=5)  # trades just before a recorded gap may have been lost in flight
_VENUES = {"_NX": "NXT", "_AL": "SOR"}  # request code suffix -> venue (no suffix: KRX)
VENUE_SUFFIX = {v: k for k, v in _VENUES.items()}


class HealError(Exception):
    """The tick chart and the stored trades disagree: no offset explains them; that symbol is not healed.

    ``result``: what the heal did for the other symbols (``heal_gaps`` goes on past a bad one).
    """

    def __init__(self, message: str, result: HealResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class SymbolHeal:
    """What healing one symbol-day did."""

    code: str
    ticks: int  # the day's ticks fetched
    inserted: int  # trades added with source 'heal'
    pages: int
    whole_day: bool  # paged to the day's first tick (else from an anchor)
    healed: int  # gaps marked healed
    skipped: str | None = None  # why nothing was done
    error: str | None = None  # a HealError: nothing written for this symbol


@dataclass
class HealResult:
    day: date
    symbols: list[SymbolHeal] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.inserted for s in self.symbols)

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": str(self.day),
            "rows": self.rows,
            "pages": sum(s.pages for s in self.symbols),
            "gaps_healed": sum(s.healed for s in self.symbols),
            "skipped": {s.code: s.skipped for s in self.symbols if s.skipped},
            "errors": {s.code: s.error for s in self.symbols if s.error},
        }


def split_code(code: str) -> tuple[str, str]:
    """``005930_NX`` -> (``005930``, ``NXT``); a plain code trades on KRX."""
    for suffix, venue in _VENUES.items():
        if code.endswith(suffix):
            return code[: -len(suffix)], venue
    return code, "KRX"


def venue_code(symbol: str, venue: str) -> str:
    """The request code of a symbol on a venue (the inverse of ``split_code``)."""
    return symbol + VENUE_SUFFIX.get(venue, "")


def tick_trades(ticks: pl.DataFrame, code: str, day: date, offset: int) -> pl.DataFrame:
    """Normalized ka10079 rows of ``code`` (pages newest first) as ``stock_trades`` rows of ``day``.

    In time order; ``offset`` is the day's cumulative volume before the first tick here.
    """
    schema = {c: t for c, t in dataset("stock_trades").schema.items() if c != "run_id"}
    if ticks.is_empty():
        return pl.DataFrame(schema=schema)
    symbol, venue = split_code(code)
    price, change = pl.col("cur_prc"), pl.col("pred_pre")
    base = price - change
    null = pl.lit(None)
    rows = (
        ticks.filter(pl.col("cntr_tm").dt.date() == day)
        .reverse()
        .select(  # pages and rows come newest first; reversed keeps a second's order
            symbol=pl.lit(symbol),
            venue=pl.lit(venue),
            date=pl.col("cntr_tm").dt.date(),
            ts=pl.col("cntr_tm"),
            price=price,
            price_dir=change.sign(),
            change=change,
            change_rate=pl.when(base > 0).then((change / base * 100).round(2)),
            size=pl.col("trde_qty"),
            side=pl.lit(0),
            cum_volume=pl.col("trde_qty").cum_sum() + offset,
            cum_turnover=null,
            best_ask=null,
            best_bid=null,
            open=null,
            high=null,
            low=null,
            strength=null,
            source=pl.lit("heal"),
            log_seq=null,
            received_at=null,
        )
    )
    return rows.cast(schema)  # type: ignore[arg-type]


def align(candidates: pl.DataFrame, stored: pl.DataFrame, whole: bool) -> pl.DataFrame:
    """Stored trades inside the fetched range that no tick explains (empty: the offset is right).

    The range ends before the newest fetched second (a live session may still add
    to it) and, unless ``whole`` (the day's first tick fetched), starts after the
    oldest (a page may have cut that second). No ticks at all explain no trade.
    """
    if candidates.is_empty():
        return stored
    lo, hi = candidates["ts"].min(), candidates["ts"].max()
    inside = stored.filter((pl.col("ts") >= lo if whole else pl.col("ts") > lo) & (pl.col("ts") < hi))
    ticks = candidates.select("cum_volume", t_ts="ts", t_price="price", t_size="size")
    joined = inside.join(ticks, on="cum_volume", how="left")
    bad = (
        pl.col("t_ts").is_null()
        | (pl.col("t_ts") != pl.col("ts"))
        | (pl.col("t_price") != pl.col("price"))
        | (pl.col("t_size") != pl.col("size"))
    )
    return joined.filter(bad).select(stored.columns)


def _anchor(stored: pl.DataFrame, before: datetime) -> tuple[datetime, int] | None:
    """The last second wholly before ``before`` in which trades were streamed, and the volume through it."""
    streamed = stored.filter((pl.col("source") == "stream") & (pl.col("ts") < before))
    if streamed.is_empty():
        return None
    last = streamed["ts"].max()
    assert isinstance(last, datetime)
    return last, int(streamed.filter(pl.col("ts") == last)["cum_volume"].max())  # type: ignore[arg-type]


def _stamp(at: datetime | date) -> str:
    return at.strftime("%Y%m%d%H%M%S") if isinstance(at, datetime) else at.strftime("%Y%m%d")


async def _fetch(
    client: KiwoomClient, code: str, bound: datetime | date, day: date, resume: str | None = None
) -> list[Page]:
    """ka10079 pages newest first until a page reaches rows older than ``bound``, or a day after ``day``."""
    oldest = oldest_row(TICK_TR)
    low, after = _stamp(bound), f"{day + timedelta(days=1):%Y%m%d}"

    def stop(page: Page) -> bool:
        first = oldest(page)
        newest = max(
            (str(r.get("cntr_tm") or "") for r in page.body.get("stk_tic_chart_qry") or ()), default=""
        )
        return first is None or first[: len(low)] < low or newest >= after

    body = {"stk_cd": code, "tic_scope": "1", "upd_stkpc_tp": "1"}
    return [p async for p in client.pages(TICK_TR, body, stop=stop, resume_key=resume)]


def _ticks(pages: Sequence[Page]) -> pl.DataFrame:
    return normalize_pages(TICK_TR, [p.raw for p in pages])


def _stored(wh: Warehouse, symbol: str, venue: str, day: date) -> pl.DataFrame:
    cols = "ts, cum_volume, price, size, source"
    if "stock_trades" not in wh.tables():
        return pl.DataFrame(
            schema={"ts": dataset("stock_trades").schema["ts"], "cum_volume": pl.Int64, "price": pl.Int64,
                    "size": pl.Int64, "source": pl.String}
        )  # fmt: skip
    return wh.sql(
        f"SELECT {cols} FROM stock_trades WHERE date = ? AND symbol = ? AND venue = ? ORDER BY cum_volume",
        [day, symbol, venue],
    )


def _unhealed(wh: Warehouse, day: date, symbols: Sequence[str] | None) -> dict[str, list[StreamGap]]:
    gaps = wh.stream_gaps(day).filter(pl.col("healed_run").is_null())
    if symbols is not None:
        gaps = gaps.filter(pl.col("symbol").is_in(list(symbols)))
    out: dict[str, list[StreamGap]] = {}
    for stream, symbol, start, end, reason in gaps.select(
        "stream", "symbol", "start_ts", "end_ts", "reason"
    ).iter_rows():
        out.setdefault(symbol, []).append(StreamGap(stream, symbol, start, end, reason))
    return out


def _healable(gaps: Sequence[StreamGap], covered_from: Any, now: datetime, day: date) -> list[StreamGap]:
    """The gaps the fetched ticks close: over (an open one once the day is final) and inside the range.

    ``covered_from`` ``None``: the whole day was fetched. A gap that began on an
    earlier day is closed with this day's part: the earlier days' trades were healed
    (as far as they could be) on their own evenings, and verify checks each day's sum.
    """
    final = datetime.combine(day, DAY_FINAL_AT, KST)
    return [
        g
        for g in gaps
        if (covered_from is None or g.start >= covered_from)
        and (now >= final if g.end is None else g.end <= now)
    ]


async def _heal_symbol(
    client: KiwoomClient,
    wh: Warehouse,
    day: date,
    code: str,
    gaps: Sequence[StreamGap],
    run: Run,
    now: datetime,
) -> SymbolHeal:
    symbol, venue = split_code(code)
    stored = _stored(wh, symbol, venue, day)
    day_start = datetime.combine(day, datetime.min.time(), KST)
    earliest = max(min(g.start for g in gaps), day_start)
    anchor = _anchor(stored, (earliest - ANCHOR_MARGIN).replace(microsecond=0))
    pages = await _fetch(client, code, anchor[0] if anchor else day, day)
    ticks = _ticks(pages)
    newest = ticks["cntr_tm"].max() if ticks.height else None
    if isinstance(newest, datetime) and newest.date() > day:
        reason = f"the tick chart now serves {newest.date()}: {day} can be healed only on its evening"
        return SymbolHeal(code, 0, 0, len(pages), False, 0, reason)
    # no anchor, or no older pages, or no ticks: these pages reach the day's first tick
    whole = anchor is None or not pages[-1].cont or ticks.is_empty()
    if whole:
        candidates = tick_trades(ticks, code, day, 0)
    else:
        assert anchor is not None
        on_day = pl.col("cntr_tm").is_between(datetime.combine(day, datetime.min.time(), KST), anchor[0])
        through = int(ticks.filter(on_day)["trde_qty"].sum())
        candidates = tick_trades(ticks, code, day, anchor[1] - through)
        if align(candidates, stored, whole).height:  # the anchor lied: page on to the day's first tick
            pages += await _fetch(client, code, day, day, resume=pages[-1].next_key)
            whole, candidates = True, tick_trades(_ticks(pages), code, day, 0)
    wrong = align(candidates, stored, whole)
    if wrong.height:
        sample = wrong.head(1).to_dicts()[0]
        raise HealError(
            f"{code} {day}: {wrong.height} stored trades match no tick of ka10079 (e.g. {sample}); "
            "nothing healed"
        )
    missing = candidates.join(stored.select("cum_volume"), on="cum_volume", how="anti")
    healed = _healable(gaps, None if whole else candidates["ts"].min(), now, day)
    if missing.height or healed:
        wh.commit(Commit(run, rows=[Rows("stock_trades", missing, replace=False)], healed=healed))
    return SymbolHeal(code, candidates.height, missing.height, len(pages), whole, len(healed))


async def heal_gaps(
    client: KiwoomClient,
    warehouse: Warehouse,
    day: date,
    symbols: Sequence[str] | None = None,
    run: Run | None = None,
    now: datetime | None = None,
) -> HealResult:
    """Heal ``day``'s unhealed stream gaps of ``symbols`` (default: every symbol with one) from ka10079.

    One transaction per symbol: its missing trades (append-only) and the gaps they
    close. A symbol whose stored trades the tick chart contradicts is left as it is
    and the others healed; then ``HealError`` (with the result) names them.
    ``run`` is the ledger's run (default: a new ``heal`` run, closed here); ``now``
    decides which gaps are over (default: the wall clock).
    """
    now = now or datetime.now(KST)
    own = run is None
    run = run or Run.new("heal", {"day": str(day), "symbols": list(symbols) if symbols else "gaps"})
    result = HealResult(day)
    todo = _unhealed(warehouse, day, symbols)
    if own and todo:
        warehouse.record_run(run, "running")
    try:
        for code, gaps in sorted(todo.items()):
            try:
                result.symbols.append(await _heal_symbol(client, warehouse, day, code, gaps, run, now))
            except HealError as exc:  # the other symbols are still healed; the run fails at the end
                result.symbols.append(SymbolHeal(code, 0, 0, 0, False, 0, error=str(exc)))
    except BaseException:
        if own and todo:
            warehouse.record_run(run, "failed", result.as_dict())
        raise
    errors = [s.error for s in result.symbols if s.error]
    if own and todo:
        warehouse.record_run(run, "failed" if errors else "ok", result.as_dict())
    if errors:
        raise HealError(f"{len(errors)} symbol(s) not healed: " + "; ".join(errors), result)
    return result
