"""Bring an existing lake's tables up to the registry's columns, in place, in one transaction.

A lake written by an older version differs from ``warehouse.datasets`` in two known ways:

- columns were renamed to English (``datasets.renames()``: dataset -> {old: new}),
  and a request option stored as a wire code became a readable one (``amt_qty_tp='1'``
  -> ``measure='amount'``, ``datasets.option_renames()``);
- tick and minute bars gained ``date``, the KST trading day of ``ts``.

``migrate(con)`` renames the columns (and translates the option codes), adds ``date``
filled from ``ts`` (the rows are rewritten in symbol and time order, so file statistics
still prune), renames the option keys that ``meta.coverage`` and ``meta.cursors`` record
for those datasets, and writes a ``meta.runs`` row (flow ``migrate``) with what changed:
all in one transaction, checked to keep every table's row count. A lake that is current
is left alone, so running it again changes nothing. ``Warehouse`` runs it whenever it
opens a lake for writing; a read-only open never writes (``warehouse.views`` reads old
column names where it needs to).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from warehouse.coverage import options_key
from warehouse.datasets import Dataset, datasets, option_renames, renames
from warehouse.lake import LAKE, WarehouseError
from warehouse.ledger import Run, replace_run
from warehouse.tables import atomic, ident, sql_type, text
from warehouse.views import KST_DATE, lake_columns

__all__ = ["Change", "migrate", "plan"]

FLOW = "migrate"


@dataclass(frozen=True)
class Change:
    """What one dataset table needs: columns to rename (with option codes to translate) and to fill."""

    dataset: str
    renamed: dict[str, str] = field(default_factory=dict)  # old -> new
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # new column -> {wire code: value}
    filled: dict[str, str] = field(default_factory=dict)  # new column -> SQL computing it from the row

    def summary(self, rows: int) -> dict[str, object]:
        return {"renamed": self.renamed, "translated": sorted(self.values), "added": sorted(self.filled)} | {
            "rows": rows
        }


def plan(con: duckdb.DuckDBPyConnection) -> list[Change]:
    """What ``migrate`` would change: one entry per dataset table that differs from the registry."""
    out = []
    moved = renames()
    for name, have in lake_columns(con).items():
        ds = datasets().get(name)
        if ds is None:
            continue
        change = _change(ds, have, moved.get(name, {}))
        if change.renamed or change.filled:
            out.append(change)
    return out


def _change(ds: Dataset, have: list[str], moved: dict[str, str]) -> Change:
    renamed = {old: new for old, new in moved.items() if old in have and old != new}
    # a name may be free only once another column has moved away from it
    clash = [new for new in renamed.values() if new in have and new not in renamed]
    if clash:
        raise WarehouseError(
            f"cannot migrate {ds.name}: it has {', '.join(clash)} already and old columns to rename to "
            "that name; merge them by hand (nothing was changed)"
        )
    codes = option_renames().get(ds.name, {})
    values = {new: dict(codes[new]) for new in renamed.values() if new in codes}
    filled = {}
    if "date" in ds.schema and "ts" in ds.schema and "date" not in have and "ts" in have:
        filled["date"] = KST_DATE
    return Change(ds.name, renamed, values, filled)


def migrate(con: duckdb.DuckDBPyConnection) -> list[Change]:
    """Apply ``plan(con)`` in one transaction, recorded in ``meta.runs``; the changes made (none: current).

    The caller retries it on a catalog conflict (it plans again inside, so that is safe).
    A lake attached read-only (``LakeConfig.reading()``: ``kwh status``, dry runs) is left as
    it is: a reader never writes.
    """
    ro = con.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = ?", [LAKE]).fetchone()
    if ro and ro[0]:
        return []

    def body() -> list[Change]:
        changes = plan(con)
        if not changes:
            return []
        summary = {c.dataset: c.summary(_apply(con, c)) for c in changes}
        replace_run(con, Run.new(FLOW), "ok", summary)
        return changes

    return atomic(con, body)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _apply(con: duckdb.DuckDBPyConnection, change: Change) -> int:
    ds = datasets()[change.dataset]
    table = ident(ds.name)
    before = _count(con, table)
    for old, new in _rename_order(ds.name, lake_columns(con)[ds.name], change.renamed):
        con.execute(f"ALTER TABLE {table} RENAME COLUMN {ident(old)} TO {ident(new)}")
    for col in change.filled:
        con.execute(f"ALTER TABLE {table} ADD COLUMN {ident(col)} {sql_type(ds.schema[col])}")
    translate = {col: _case(col, codes) for col, codes in change.values.items()}
    if change.filled:
        # rewrite every row with the new columns filled, in the writer's order, then drop the
        # old rows (the only ones whose filled column is still NULL: it comes from a key column)
        replace = ", ".join(f"{sql} AS {ident(c)}" for c, sql in (translate | change.filled).items())
        order = ", ".join(ident(c) for c in (ds.symbol, ds.time) if c)
        con.execute(
            f"INSERT INTO {table} BY NAME SELECT * REPLACE ({replace}) FROM {table}"
            + (f" ORDER BY {order}" if order else "")
        )
        first = ident(next(iter(change.filled)))
        con.execute(f"DELETE FROM {table} WHERE {first} IS NULL")
    elif translate:
        con.execute(f"UPDATE {table} SET {', '.join(f'{ident(c)} = {sql}' for c, sql in translate.items())}")
    for col in (*change.renamed.values(), *change.filled):
        con.execute(f"COMMENT ON COLUMN {table}.{ident(col)} IS {text(ds.comments.get(col, col))}")
    after = _count(con, table)
    if after != before:
        raise WarehouseError(
            f"migrating {ds.name} would leave {after:,} rows of {before:,}; nothing was changed"
        )
    _rename_option_keys(con, change)
    return after


def _rename_order(name: str, have: list[str], renamed: dict[str, str]) -> list[tuple[str, str]]:
    """The renames in an order where each target name is free when its turn comes.

    Not through temporary names: DuckLake 0.3 breaks a table whose column is renamed
    twice in one transaction (the first new name stays behind as an empty column).
    """
    names, todo, out = set(have), dict(renamed), []
    while todo:
        ready = [old for old, new in todo.items() if new not in names]
        if not ready:
            raise WarehouseError(f"cannot migrate {name}: its renames {todo} go round in a circle")
        for old in ready:
            new = todo.pop(old)
            names.discard(old)
            names.add(new)
            out.append((old, new))
    return out


def _case(col: str, codes: dict[str, str]) -> str:
    """The readable value of a wire code (a value not in ``codes``, already readable or "", is kept)."""
    whens = " ".join(f"WHEN {text(k)} THEN {text(v)}" for k, v in codes.items())
    return f"CASE {ident(col)} {whens} ELSE {ident(col)} END"


def _rename_option_keys(con: duckdb.DuckDBPyConnection, change: Change) -> None:
    """Coverage and fetch cursors record option sets by column name and value: rename them too."""
    if not change.renamed:
        return
    for table in ("meta.coverage", "meta.cursors"):
        keys = con.execute(
            f"SELECT DISTINCT options FROM {table} WHERE dataset = ?", [change.dataset]
        ).fetchall()
        for (old_key,) in keys:
            new_key = _options_key(old_key, change)
            if new_key != old_key:
                con.execute(
                    f"UPDATE {table} SET options = ? WHERE dataset = ? AND options = ?",
                    [new_key, change.dataset, old_key],
                )


def _options_key(key: str, change: Change) -> str:
    out = {}
    for name, value in json.loads(key).items():
        new = change.renamed.get(name, name)
        codes = change.values.get(new, {})
        out[new] = codes.get(value, value) if isinstance(value, str) else value
    return options_key(out)
