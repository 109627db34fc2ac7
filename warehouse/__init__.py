"""The warehouse: dataset registry, DuckLake storage, coverage, the run ledger, maintenance.

>>> from warehouse import connect
>>> con = connect()          # read-only; every dataset by its plain name   # doctest: +SKIP
>>> con.sql("SELECT symbol, date, close FROM stock_bars_daily LIMIT 5").pl()  # doctest: +SKIP
"""

from warehouse.datasets import BAR_DATASETS, Dataset, dataset, datasets, default_request
from warehouse.lake import LakeConfig, WarehouseError
from warehouse.store import Cursor, Run, Span, Warehouse, WriteResult, connect, options_key

__all__ = [
    "BAR_DATASETS",
    "Cursor",
    "Dataset",
    "LakeConfig",
    "Run",
    "Span",
    "Warehouse",
    "WarehouseError",
    "WriteResult",
    "connect",
    "dataset",
    "datasets",
    "default_request",
    "options_key",
]
