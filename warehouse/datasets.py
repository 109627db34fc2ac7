"""The dataset registry: what each warehouse table holds and how a TR's answer becomes its rows.

A dataset is data, not a module: name, source TRs and default request, the
``pl.Schema`` contract, primary key, time column, partitioning and column
comments. ``Dataset.rows(api_id, frame, request, fetched_at)`` turns a
normalized frame (wire names, typed by ``schemas.normalize``) into the
dataset's canonical columns, without ``run_id`` (the writer adds it).

Families:

- bars (``stock_bars_*``, ``sector_bars_*``, ``gold_bars_*``), here: canonical OHLCV
  columns, turnover in won, prices positive, index levels as real levels, and for tick
  and minute bars the KST trading ``date`` of ``ts``;
- the other TRs' series, intraday series, snapshots and reference lists
  (``warehouse.tr_datasets``): English columns (``schemas.columns``), the
  meaning-changing request options as readable columns;
- the realtime datasets of the streaming worker (``warehouse.stream_datasets``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from schemas.catalog import TR, Field, catalog
from schemas.columns import OPTION_VALUES, option_value, option_wire
from schemas.errors import InputError, UnknownNameError
from schemas.kinds import KST_TS
from warehouse.units import to_base_units, unit_note

__all__ = ["BAR_DATASETS", "Dataset", "dataset", "datasets", "default_request", "option_renames", "renames"]

RUN_ID = "run_id"
RUN_ID_COMMENT = "이 행을 쓴 실행(run)의 id"
_DATE_PARAMS = ("strt_dt", "end_dt", "base_dt", "dt", "date", "qry_dt")
_SYMBOL_PARAMS = ("stk_cd", "inds_cd")
# volumes saturate at 2**32 - 1 on the live server (ka10081 and some rankings)
SATURATED_VOLUME = 4_294_967_295


@dataclass(frozen=True)
class Dataset:
    name: str
    family: str  # stock_bars | sector_bars | gold_bars | investor | program | short | reference | realtime
    style: str  # bars | series | intraday | snapshot | reference | stream
    description: str
    sources: tuple[str, ...]  # TR ids, the first one the default
    schema: pl.Schema  # the contract, run_id included
    key: tuple[str, ...]
    time: str  # the time column: date, ts or fetched_at
    symbol: str | None  # the symbol column, if rows belong to one symbol
    options: tuple[str, ...]  # meaning-changing request options, as columns (part of the key)
    partition: tuple[str, ...]  # DuckLake partition expressions
    comments: Mapping[str, str]
    defaults: Mapping[str, Mapping[str, str]]  # per source TR: the request besides symbol and dates
    replace_by: tuple[str, ...]  # a write deletes existing rows matching these columns of the frame
    _build: Callable[[Dataset, str, pl.DataFrame, Mapping[str, str], datetime], pl.DataFrame] = field(
        repr=False, compare=False
    )
    wire: Mapping[str, str] = field(default_factory=dict)  # column -> the wire field or request option

    @property
    def columns(self) -> list[str]:
        return list(self.schema)

    def rows(
        self, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
    ) -> pl.DataFrame:
        """A normalized answer of ``api_id`` as this dataset's rows (everything but ``run_id``)."""
        if api_id not in self.sources:
            raise ValueError(
                f"{api_id} does not feed dataset {self.name} (sources: {', '.join(self.sources)})"
            )
        out = self._build(self, api_id, frame, request, fetched_at)
        return out.select(c for c in self.columns if c != RUN_ID)

    def option_values(self, api_id: str, request: Mapping[str, str]) -> dict[str, Any]:
        """The option columns' values for rows fetched with ``request`` (what coverage is keyed by)."""
        defaults = self.defaults[api_id]
        out: dict[str, Any] = {}
        for opt in self.options:
            if opt == "adjusted":
                first = self.defaults[self.sources[0]].get("upd_stkpc_tp", "1")
                out[opt] = request.get("upd_stkpc_tp", defaults.get("upd_stkpc_tp", first)) == "1"
            elif opt == "tic_scope":
                out[opt] = int(request.get("tic_scope") or defaults.get("tic_scope") or 1)
            else:
                # an option left out of the request is "" (keys are never null)
                wire = self.wire.get(opt, opt)
                sent = request[wire] if wire in request else defaults.get(wire)
                out[opt] = option_value(api_id, wire, sent or "")
        return out

    def request(
        self,
        api_id: str | None = None,
        symbol: str | None = None,
        start: date | None = None,
        end: date | None = None,
        **options: str,
    ) -> dict[str, str]:
        """A request body for a source TR: its defaults, the options given, the symbol and the window.

        Chart and trend TRs page back from ``end`` (``base_dt``, ``dt``, ``date``);
        range TRs take ``strt_dt``/``end_dt``. Dates the TR does not take are ignored.
        An option is a request field (``amt_qty_tp='2'``) or a readable column (``measure='quantity'``).
        """
        api_id = api_id or self.sources[0]
        options = option_wire(api_id, options)
        tr = catalog().tr(api_id)
        names = {s["name"] for s in tr.request}
        unknown = set(options) - names
        if unknown:
            raise InputError(f"{api_id} takes no request field {sorted(unknown)} (it takes {sorted(names)})")
        body = dict(self.defaults[api_id])
        body.update(options)
        param = symbol_param(tr)
        if param:
            if not symbol:
                raise InputError(f"dataset {self.name} ({api_id}) needs a symbol ({param})")
            body[param] = symbol
        if end is not None:
            for name in ("base_dt", "end_dt", "dt", "date"):
                if name in names and name not in _ENUM_DATE_PARAMS.get(api_id, ()):
                    body[name] = f"{end:%Y%m%d}"
        if start is not None and "strt_dt" in names:
            body["strt_dt"] = f"{start:%Y%m%d}"
        return body


# --------------------------------------------------------------------------- helpers


def default_request(api_id: str) -> dict[str, str]:
    """The reference's request example without symbol and date fields, repaired to allowed values."""
    tr = catalog().tr(api_id)
    example = dict(tr.raw.get("request_example") or {})
    body: dict[str, str] = {}
    for spec in tr.request:
        name, allowed = spec["name"], spec.get("allowed")
        if name in _SYMBOL_PARAMS or (name in _DATE_PARAMS and name not in _ENUM_DATE_PARAMS.get(api_id, ())):
            continue
        value = str(example.get(name, ""))
        if allowed and value not in allowed and (value or spec.get("required")):
            value = next(iter(allowed))
        if value or spec.get("required"):
            body[name] = value
    return body


# ka10131's ``dt`` is a period choice (1, 3, 5 ... days), not a date.
_ENUM_DATE_PARAMS = {"ka10131": ("dt",)}


def fields_of(api_id: str) -> dict[str, Field]:
    return {f.column or f.name: f for f in catalog().tr(api_id).row_fields()}


def symbol_param(tr: TR) -> str | None:
    names = {s["name"] for s in tr.request}
    return next((p for p in _SYMBOL_PARAMS if p in names), None)


def to_date(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return col.dt.date() if isinstance(dtype, pl.Datetime) else col


def lit_str(value: str | None) -> pl.Expr:
    return pl.lit(value, pl.String)


def check_symbol(ds: Dataset, request: Mapping[str, str], param: str) -> str:
    symbol = request.get(param)
    if not symbol:
        raise ValueError(f"dataset {ds.name}: the request has no {param} (the symbol of these rows)")
    return symbol


# --------------------------------------------------------------------------- bars

_BAR_INTERVALS = ("tick", "minute", "daily", "weekly", "monthly", "yearly")
_BAR_SOURCES: dict[str, dict[str, tuple[str, ...]]] = {
    "stock": {
        "tick": ("ka10079",),
        "minute": ("ka10080",),
        "daily": ("ka10081",),
        "weekly": ("ka10082",),
        "monthly": ("ka10083",),
        "yearly": ("ka10094",),
    },
    "sector": {
        "tick": ("ka20004",),
        "minute": ("ka20005",),
        "daily": ("ka20006",),
        "weekly": ("ka20007",),
        "monthly": ("ka20008",),
        "yearly": ("ka20019",),
    },
    "gold": {
        "tick": ("ka50079", "ka50091"),
        "minute": ("ka50080", "ka50092"),
        "daily": ("ka50081",),
        "weekly": ("ka50082",),
        "monthly": ("ka50083",),
    },
}
_BAR_LABEL = {"stock": "주식", "sector": "업종", "gold": "금현물"}
_BAR_PARTITION = {
    "tick": ("year(ts)", "month(ts)", "day(ts)"),
    "minute": ("year(ts)", "month(ts)"),
    "daily": ("year(date)",),
    "weekly": ("year(date)",),
    "monthly": (),
    "yearly": (),
}
_BAR_COMMENTS = {
    "symbol": "종목코드 (업종은 업종코드)",
    "ts": "체결시간 (Asia/Seoul): 봉의 끝 시각, 틱은 체결 시각",
    "date": "일자 (주봉/월봉/년봉은 기간의 첫 거래일이 아닌 키움이 주는 기준일)",
    "trading_date": "거래일 (Asia/Seoul): ts의 한국 날짜, 일별 집계는 GROUP BY date",
    "tic_scope": "틱/분 범위 (요청 tic_scope: 1, 3, 5, 10, 30 ...)",
    "adjusted": "수정주가 적용 여부 (요청 upd_stkpc_tp = 1)",
    "seq": "같은 체결시간(초) 안의 순번, 0부터 시간순",
    "open": "시가",
    "high": "고가",
    "low": "저가",
    "close": "종가 (틱/분봉은 현재가)",
    "volume": "거래량",
    "turnover": "거래대금 (원)",
    RUN_ID: RUN_ID_COMMENT,
}


def _bar_wire(api_id: str, intraday: bool) -> dict[str, str]:
    """The wire field of each bar column of ``api_id`` (turnover only where the chart sends it)."""
    fields = fields_of(api_id)
    out = {"ts": "cntr_tm"} if intraday else {"date": "dt"}
    close = "cur_prc" if "cur_prc" in fields else "cntr_pric"
    out |= {"open": "open_pric", "high": "high_pric", "low": "low_pric", "close": close}
    out["volume"] = "trde_qty" if "trde_qty" in fields else "acc_trde_qty"
    money = next((n for n in ("trde_prica", "acc_trde_prica") if n in fields), None)
    if money and not intraday:
        out["turnover"] = money
    return out


def _bar_build(
    ds: Dataset, api_id: str, frame: pl.DataFrame, request: Mapping[str, str], fetched_at: datetime
) -> pl.DataFrame:
    fields = fields_of(api_id)
    param = "inds_cd" if "inds_cd" in {s["name"] for s in catalog().tr(api_id).request} else "stk_cd"
    symbol = check_symbol(ds, request, param)
    intraday = ds.time == "ts"
    wire = _bar_wire(api_id, intraday)
    volume = wire["volume"]
    cols: dict[str, pl.Expr] = {"symbol": lit_str(symbol)}
    if intraday:
        cols["ts"] = pl.col("cntr_tm").cast(KST_TS)
        # the KST trading day of ts: a daily aggregate is a plain GROUP BY date
        cols["date"] = pl.col("cntr_tm").cast(KST_TS).dt.date()
    else:
        cols["date"] = to_date(pl.col("dt"), frame.schema["dt"])
    options = ds.option_values(api_id, request)
    if "tic_scope" in options:
        cols["tic_scope"] = pl.lit(options["tic_scope"], pl.Int16)
    if "adjusted" in options:
        cols["adjusted"] = pl.lit(options["adjusted"], pl.Boolean)
    price_type = ds.schema["close"]
    for out in ("open", "high", "low", "close"):
        cols[out] = pl.col(wire[out]).cast(price_type)
    cols["volume"] = pl.when(~pl.col("__saturated")).then(pl.col(volume).cast(pl.Int64))
    if "turnover" in wire:
        if fields[wire["turnover"]].unit is None:
            raise ValueError(f"{api_id}.{wire['turnover']} has no known unit; cannot express turnover in won")
        cols["turnover"] = pl.col(wire["turnover"]).cast(pl.Int64)
    else:
        cols["turnover"] = pl.lit(None, pl.Int64)
    saturated = (pl.col(volume) == SATURATED_VOLUME).fill_null(False).alias("__saturated")
    bars = to_base_units(api_id, frame.with_columns(saturated), fields.values(), request).select(**cols)
    if "seq" in ds.schema:
        # pages come newest first; seq numbers the trades of one second in time order
        bars = bars.reverse().with_columns(seq=pl.int_range(pl.len(), dtype=pl.Int32).over("ts")).reverse()
    return bars


def _bar_dataset(family: str, interval: str, sources: tuple[str, ...]) -> Dataset:
    intraday = interval in ("tick", "minute")
    prices: pl.DataType = pl.Float64() if family == "sector" else pl.Int64()
    takes = {s["name"] for s in catalog().tr(sources[0]).request}
    cols: dict[str, pl.DataType] = {"symbol": pl.String()}
    cols["ts" if intraday else "date"] = KST_TS if intraday else pl.Date()
    if intraday:
        cols["date"] = pl.Date()
    options: list[str] = []
    if "tic_scope" in takes:
        cols["tic_scope"] = pl.Int16()
        options.append("tic_scope")
    if "upd_stkpc_tp" in takes:
        cols["adjusted"] = pl.Boolean()
        options.append("adjusted")
    if interval == "tick":
        cols["seq"] = pl.Int32()
    cols |= {c: prices for c in ("open", "high", "low", "close")}
    cols |= {"volume": pl.Int64(), "turnover": pl.Int64(), RUN_ID: pl.String()}
    time_col = "ts" if intraday else "date"
    key = ("symbol", *options, time_col) + (("seq",) if interval == "tick" else ())
    defaults = {}
    for api in sources:
        body = default_request(api)
        if "upd_stkpc_tp" in body:
            body["upd_stkpc_tp"] = "1"
        if "tic_scope" in body:
            body["tic_scope"] = "1"
        defaults[api] = body
    comments = {c: _BAR_COMMENTS[c] for c in cols}
    if intraday:
        comments["date"] = _BAR_COMMENTS["trading_date"]
    wire = _bar_wire(sources[0], intraday)
    notes = {unit_note(fields_of(api)[_bar_wire(api, intraday)["volume"]], api) for api in sources}
    if len(notes) != 1:
        raise ValueError(f"{family}_bars_{interval}: its sources send volume in different units {notes}")
    comments["volume"] = f"거래량 ({notes.pop()}); 서버가 포화값 4294967295(2^32-1)를 보내면 NULL"
    if "turnover" not in wire:
        comments["turnover"] = "거래대금 (원); 틱/분봉 차트는 보내지 않아 항상 NULL"
    if family == "sector":
        comments |= {c: f"{_BAR_COMMENTS[c]} (지수, 실제 지수값)" for c in ("open", "high", "low", "close")}
    return Dataset(
        name=f"{family}_bars_{interval}",
        family=f"{family}_bars",
        style="bars",
        description=f"{_BAR_LABEL[family]} {interval} bars from {', '.join(sources)}",
        sources=sources,
        schema=pl.Schema(cols),
        key=key,
        time=time_col,
        symbol="symbol",
        options=tuple(options),
        partition=_BAR_PARTITION[interval],
        comments=comments,
        defaults=defaults,
        replace_by=key,
        _build=_bar_build,
        wire=wire,
    )


@functools.cache
def _registry() -> dict[str, Dataset]:
    out: dict[str, Dataset] = {}
    for family, intervals in _BAR_SOURCES.items():
        for interval in _BAR_INTERVALS:
            if interval in intervals:
                ds = _bar_dataset(family, interval, intervals[interval])
                out[ds.name] = ds
    from warehouse.stream_datasets import stream_datasets  # they build Dataset entries of this module
    from warehouse.tr_datasets import SPECS, tr_dataset

    for spec in SPECS:
        out[spec.name] = tr_dataset(spec)

    out |= {ds.name: ds for ds in stream_datasets()}
    return out


BAR_DATASETS = tuple(
    f"{family}_bars_{interval}"
    for family, ivs in _BAR_SOURCES.items()
    for interval in _BAR_INTERVALS
    if interval in ivs
)


@functools.cache
def renames() -> dict[str, dict[str, str]]:
    """Per TR dataset, each column's former (wire) name -> its English name, where they differ.

    What a lake written before the English names needs: ``ALTER TABLE t RENAME COLUMN old TO new``.
    Stream and bar datasets were never renamed.
    """
    from warehouse.tr_datasets import SPECS

    out: dict[str, dict[str, str]] = {}
    for spec in SPECS:
        ds = _registry()[spec.name]
        moved = {ds.wire[c]: c for c in ds.columns if c in ds.wire and c not in (ds.symbol, ds.time)}
        out[spec.name] = {old: new for old, new in moved.items() if old != new}
    return out


@functools.cache
def option_renames() -> dict[str, dict[str, dict[str, str]]]:
    """Per TR dataset, each readable option column -> its former wire code -> its value now.

    After ``renames()``, ``UPDATE t SET measure = CASE measure WHEN '1' THEN 'amount' ... END``;
    coverage and cursor keys (``options_key``) hold the same codes under the wire names.
    """
    from warehouse.tr_datasets import SPECS

    out: dict[str, dict[str, dict[str, str]]] = {}
    for spec in SPECS:
        ds = _registry()[spec.name]
        values = {
            opt: dict(OPTION_VALUES[(spec.api_id, ds.wire[opt])])
            for opt in ds.options
            if (spec.api_id, ds.wire.get(opt, opt)) in OPTION_VALUES
        }
        if values:
            out[spec.name] = values
    return out


def datasets() -> dict[str, Dataset]:
    """Every dataset by name."""
    return dict(_registry())


def dataset(name: str) -> Dataset:
    try:
        return _registry()[name]
    except KeyError:
        known = ", ".join(sorted(_registry()))
        raise UnknownNameError(f"unknown dataset {name!r}; known: {known}") from None
