"""The realtime datasets: 0B trades and 0D order-book snapshots as the streaming worker stores them.

Rows come from ``schemas.normalize_realtime`` frames (canonical English columns)
with the tick log's record number (``log_seq``) and receive time added by the
worker. Prices are positive with a direction column, ``size`` is absolute
with the aggressor in ``side`` (+1 buyer-, -1 seller-initiated), cumulative
volume is in shares and cumulative turnover in won (FID 14 arrives in 백만원,
so it is exact to the million). ``date`` is the trading day in Korea.

Keys make a replay of the log idempotent: a trade is identified by its
symbol, venue, day and cumulative volume (every trade raises it); a book
snapshot by the log record it came in and its place in that frame.
Trades the daily flow heals from the tick chart (ka10079) carry
``source = 'heal'`` and the cumulative volume the stream would have shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from schemas.calendar import TZ_NAME
from schemas.catalog import catalog
from schemas.errors import UnitOverflowError
from schemas.kinds import KST_TS
from warehouse.units import field_unit

if TYPE_CHECKING:
    from warehouse.datasets import Dataset

__all__ = ["SOURCE_COLUMNS", "STREAM_DATASETS", "stream_datasets"]

_LEVELS = range(1, 11)

_TRADE_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "symbol": (pl.String(), "종목코드 (거래소 접미사 없이)"),
    "venue": (pl.String(), "거래소: KRX, NXT (_NX), SOR (_AL)"),
    "date": (pl.Date(), "거래일 (Asia/Seoul)"),
    "ts": (KST_TS, "체결시간 (Asia/Seoul): 실시간 HHMMSS를 거래일에 붙인 시각"),
    "price": (pl.Int64(), "체결가 (원, 양수)"),
    "price_dir": (pl.Int8(), "체결가의 전일종가 대비 방향 (+1 상승, -1 하락, 0 보합)"),
    "change": (pl.Int64(), "전일대비 (원, 부호 있음)"),
    "change_rate": (pl.Float64(), "등락율 (%)"),
    "size": (pl.Int64(), "체결량 (주, 절대값)"),
    "side": (pl.Int8(), "체결 방향: +1 매수 주도, -1 매도 주도, 0 알 수 없음"),
    "cum_volume": (pl.Int64(), "누적거래량 (주)"),
    "cum_turnover": (pl.Int64(), "누적거래대금 (원; 키움은 백만원 단위로 보내므로 백만원 단위까지 정확)"),
    "best_ask": (pl.Int64(), "최우선 매도호가 (원)"),
    "best_bid": (pl.Int64(), "최우선 매수호가 (원)"),
    "open": (pl.Int64(), "시가 (원)"),
    "high": (pl.Int64(), "고가 (원)"),
    "low": (pl.Int64(), "저가 (원)"),
    "strength": (pl.Float64(), "체결강도 (%)"),
    "source": (pl.String(), "출처: stream (실시간 0B) 또는 heal (틱차트 ka10079로 메운 공백)"),
    "log_seq": (pl.Int64(), "틱 로그의 레코드 번호 (heal은 NULL)"),
    "received_at": (KST_TS, "수신 시각 (Asia/Seoul; heal은 NULL)"),
}
_BOOK_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "symbol": _TRADE_COLUMNS["symbol"],
    "venue": _TRADE_COLUMNS["venue"],
    "date": _TRADE_COLUMNS["date"],
    "ts": (KST_TS, "호가시간 (Asia/Seoul)"),
    "log_seq": (pl.Int64(), "틱 로그의 레코드 번호"),
    "entry": (pl.Int32(), "그 레코드(프레임) 안에서 이 종목 호가의 순서, 0부터"),
    **{f"ask_px_{i}": (pl.Int64(), f"매도호가{i} (원)") for i in _LEVELS},
    **{f"ask_qty_{i}": (pl.Int64(), f"매도호가수량{i} (주)") for i in _LEVELS},
    **{f"bid_px_{i}": (pl.Int64(), f"매수호가{i} (원)") for i in _LEVELS},
    **{f"bid_qty_{i}": (pl.Int64(), f"매수호가수량{i} (주)") for i in _LEVELS},
    "ask_qty_total": (pl.Int64(), "매도호가 총잔량 (주)"),
    "bid_qty_total": (pl.Int64(), "매수호가 총잔량 (주)"),
    "exp_price": (pl.Int64(), "예상체결가 (원)"),
    "exp_qty": (pl.Int64(), "예상체결수량 (주)"),
    "received_at": (KST_TS, "수신 시각 (Asia/Seoul)"),
}
RUN_ID = ("run_id", (pl.String(), "이 행을 쓴 실행(run)의 id"))

# The normalized columns (catalog names) each type's rows are built from: all the committer decodes.
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "0B": (
        "price", "change", "change_rate", "size", "cum_volume", "cum_turnover",
        "best_ask", "best_bid", "open", "high", "low", "strength",
    ),
    "0D": tuple(c for c in _BOOK_COLUMNS if c.startswith(("ask_", "bid_", "exp_"))),
}  # fmt: skip


def _common() -> dict[str, pl.Expr]:
    return {
        "symbol": pl.col("item"),
        "venue": pl.col("item_venue"),
        "date": pl.col("ts").dt.date(),
        "ts": pl.col("ts"),
    }


def _received() -> pl.Expr:
    return (
        pl.from_epoch(pl.col("received_ns"), "ns")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(TZ_NAME)
        .dt.cast_time_unit("us")
    )


def trade_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """A normalized 0B frame (with ``log_seq`` and ``received_ns``) as ``stock_trades`` rows."""
    factor = _turnover_factor()
    too_big = frame.get_column("cum_turnover").abs() > (2**63 - 1) // factor
    if too_big.any():
        raise UnitOverflowError("0B", "14", frame.get_column("cum_turnover").filter(too_big)[0], factor)
    cols = {
        **_common(),
        **{c: pl.col(c) for c in ("price", "price_dir", "change", "change_rate", "size")},
        "side": pl.col("size_side"),
        "cum_volume": pl.col("cum_volume"),
        "cum_turnover": pl.col("cum_turnover") * factor,
        **{c: pl.col(c) for c in ("best_ask", "best_bid", "open", "high", "low", "strength")},
        "source": pl.lit("stream"),
        "log_seq": pl.col("log_seq"),
        "received_at": _received(),
    }
    return frame.select(**cols).cast({c: t for c, (t, _) in _TRADE_COLUMNS.items()})


def book_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """A normalized 0D frame (with ``log_seq`` and ``received_ns``) as ``stock_orderbook`` rows."""
    cols: dict[str, pl.Expr] = {
        **_common(),
        "log_seq": pl.col("log_seq"),
        "entry": pl.int_range(pl.len(), dtype=pl.Int32).over("log_seq"),
    }
    cols |= {c: pl.col(c) for c in _BOOK_COLUMNS if c not in cols and c != "received_at"}
    cols["received_at"] = _received()
    return frame.select(**cols).cast({c: t for c, (t, _) in _BOOK_COLUMNS.items()})


def _turnover_factor() -> int:
    unit = field_unit(catalog().realtime_type("0B").by_fid()["14"], {})
    if unit is None:
        raise ValueError("0B FID 14 (cumulative turnover) has no unit in the catalog")
    return unit.factor


def _schema(columns: Mapping[str, tuple[pl.DataType, str]]) -> pl.Schema:
    return pl.Schema({**{c: t for c, (t, _) in columns.items()}, RUN_ID[0]: RUN_ID[1][0]})


def _comments(columns: Mapping[str, tuple[pl.DataType, str]]) -> dict[str, str]:
    return {**{c: text for c, (_, text) in columns.items()}, RUN_ID[0]: RUN_ID[1][1]}


def _trade_build(
    ds: Dataset, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
) -> pl.DataFrame:
    return trade_rows(frame)


def _book_build(
    ds: Dataset, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
) -> pl.DataFrame:
    return book_rows(frame)


def stream_datasets() -> list[Dataset]:
    """The two realtime datasets, as ``warehouse.datasets.Dataset`` entries."""
    from warehouse.datasets import Dataset  # here: the registry imports this module

    trades = Dataset(
        name="stock_trades",
        family="realtime",
        style="stream",
        description="Realtime trades (0B 주식체결) from the streaming worker, healed from ka10079",
        sources=("0B",),
        schema=_schema(_TRADE_COLUMNS),
        key=("symbol", "venue", "date", "cum_volume"),
        time="ts",
        symbol="symbol",
        options=(),
        partition=("year(date)", "month(date)", "day(date)"),
        comments=_comments(_TRADE_COLUMNS),
        defaults={"0B": {}},
        replace_by=("symbol", "venue", "date", "cum_volume"),
        _build=_trade_build,
    )
    book = Dataset(
        name="stock_orderbook",
        family="realtime",
        style="stream",
        description="Realtime order book, 10 levels (0D 주식호가잔량) from the streaming worker",
        sources=("0D",),
        schema=_schema(_BOOK_COLUMNS),
        key=("symbol", "venue", "date", "log_seq", "entry"),
        time="ts",
        symbol="symbol",
        options=(),
        partition=("year(date)", "month(date)", "day(date)"),
        comments=_comments(_BOOK_COLUMNS),
        defaults={"0D": {}},
        replace_by=("symbol", "venue", "date", "log_seq", "entry"),
        _build=_book_build,
    )
    return [trades, book]


STREAM_DATASETS = ("stock_trades", "stock_orderbook")
