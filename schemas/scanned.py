"""The C scanners' results (``schemas/_scan``) as Polars: string columns, frame numbers, page rows.

``schemas._scan`` reads JSON in one pass without the GIL and hands back Arrow-style
buffers; this module is the one place that turns them into Polars objects:

- ``scan_real`` (REAL frames) is used by ``schemas.realtime_fast``;
- ``scan_pages`` (REST pages) by ``schemas.normalize.normalize_pages`` through
  ``page_strings`` below.

A column is ``(offsets, data, validity, nulls)``: int32 offsets, the UTF-8 bytes
(checked by the scanner), a validity bitmap or None. Building the Series copies once
into Polars' own layout; nothing runs per row in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from schemas._scan import scan_pages, scan_real

__all__ = ["PageStrings", "column", "int32s", "page_strings", "scan_real"]

Column = tuple[bytes, bytes, bytes | None, int]


def column(name: str, rows: int, col: Column) -> pl.Series:
    """One scanned column as a ``String`` Series of ``rows`` values."""
    offsets, data, valid, nulls = col
    arrow = pa.StringArray.from_buffers(
        rows, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(valid) if valid else None, nulls
    )
    return pl.Series(name, arrow)


def int32s(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, np.int32)


class PageStrings:
    """What ``scan_pages`` read of a run of pages: the items' strings and each page's return code."""

    def __init__(self, items: pl.DataFrame, codes: np.ndarray, messages: pl.Series) -> None:
        self.items = items  # a row per item: the item keys, then the scalars of its page
        self.codes = codes  # return_code per page (0 when absent)
        self.messages = messages  # return_msg per page


def page_strings(
    pages: Sequence[bytes],
    lists: Sequence[str],
    items: Sequence[str],
    scalars: Mapping[str, str],
) -> PageStrings | None:
    """The items of ``pages`` (in the first of ``lists`` each holds) as strings, each with its
    page's ``scalars`` (wire key -> column name) alongside; None when a page is not one the
    scanner reads (the caller then reads the pages with the general JSON reader)."""
    found = scan_pages(list(pages), tuple(lists), tuple(items), tuple(scalars))
    if found is None:
        return None
    counts, codes, message, item_cols, scalar_cols = found
    per_page = int32s(counts)
    rows = int(per_page.sum())
    page_of = pl.Series(np.repeat(np.arange(len(pages), dtype=np.int32), per_page))
    frame = pl.DataFrame(
        [
            *(column(name, rows, col) for name, col in zip(items, item_cols, strict=True)),
            *(
                column(name, len(pages), col).gather(page_of)
                for name, col in zip(scalars.values(), scalar_cols, strict=True)
            ),
        ]
    )
    return PageStrings(frame, np.frombuffer(codes, np.int64), column("return_msg", len(pages), message))
