"""The warehouse: dataset registry, DuckLake storage, coverage, the run ledger, maintenance.

>>> from warehouse import connect
>>> con = connect()          # read-only; every dataset by its plain name   # doctest: +SKIP
>>> con.sql("SELECT symbol, date, close FROM daily LIMIT 5").pl()  # doctest: +SKIP
>>> import warehouse
>>> warehouse.read("stock_bars_minute", "삼성전자", "2025-12-29", columns=["ts", "close"])  # doctest: +SKIP

Both find the lake through ``KWH_WAREHOUSE`` or the project's ``.env`` (``lake``).

Modules, one job each: ``lake`` (where the lake is, opening it, retrying
conflicts), ``datasets`` (the registry), ``tables`` (table definitions and DDL),
``writer`` (checking frames, replacing keys), ``coverage`` (days fetched),
``progress`` (fetch cursors, stream log positions), ``ledger`` (runs and writes),
``commit`` (the transaction seam), ``reading`` (rows by symbol and day, names for codes),
``views`` (the ``kst_date`` macro and the views every user connection gets), ``migrate``
(older lakes brought to the registry's columns in place), ``maintenance``, ``ticklog`` (the
durable log of realtime frames; ``ticklog_format``: its files) and ``store`` (the
``Warehouse`` handle).
"""

from warehouse.commit import Commit, CommitResult, Rows, WriteResult
from warehouse.coverage import Span, options_key
from warehouse.datasets import BAR_DATASETS, Dataset, dataset, datasets, default_request
from warehouse.lake import LakeConfig, WarehouseError
from warehouse.ledger import Run
from warehouse.progress import Cursor, StreamGap, StreamPosition
from warehouse.store import Warehouse, connect, read

__all__ = [
    "BAR_DATASETS",
    "Commit",
    "CommitResult",
    "Cursor",
    "Dataset",
    "LakeConfig",
    "Rows",
    "Run",
    "Span",
    "StreamGap",
    "StreamPosition",
    "Warehouse",
    "WarehouseError",
    "WriteResult",
    "connect",
    "dataset",
    "datasets",
    "default_request",
    "options_key",
    "read",
]
