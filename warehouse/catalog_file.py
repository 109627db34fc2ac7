"""A lake's SQLite catalog file: is it whole, what does it record, and where its folder is now.

DuckLake keeps a lake's state in the catalog and its rows in Parquet files under the
data path. The catalog is the only record of which files hold live rows, so:

- a catalog that is missing, empty (0 bytes), cut short or not a DuckLake catalog
  while the data folder holds files is refused (``LakeError``), never replaced by a
  new one: a new catalog would take every file for an orphan;
- a catalog that lists data files while its data folder holds none is refused too
  (a catalog copied without its ``files/``);
- a lake folder that was moved or copied (the catalog records its old absolute data
  path) is the lake where it is now: ``relocate`` rewrites the recorded data path
  to the folder's own ``files/``, so no client, DuckDB's own included, reads or
  writes the files of the folder it was copied from.

The checks read the file's 100-byte SQLite header and a few catalog rows through a
read-only SQLite connection; they never write.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from warehouse.errors import LakeError

__all__ = ["CatalogFile", "examine", "holds_files", "relocate"]

log = logging.getLogger(__name__)

_MAGIC = b"SQLite format 3\x00"
_RESTORE = "restore the catalog from a backup (README: Safety), or move the lake folder aside"


@dataclass(frozen=True)
class CatalogFile:
    """What a whole DuckLake catalog records (``None`` from ``examine``: no lake there yet)."""

    path: Path
    data_path: str
    live_files: int  # data files of the current snapshot


def holds_files(data_path: str) -> bool:
    """Whether a local data folder holds any file (an object-store path: unknown, so False)."""
    if "://" in data_path:
        return False
    folder = Path(data_path)
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def examine(path: Path, data_path: str, *, shown: Path | None = None) -> CatalogFile | None:
    """The catalog at ``path`` if it is a whole DuckLake catalog; ``None`` if there is no lake yet.

    ``data_path`` is where the lake's files are; a damaged or missing catalog beside
    files there raises ``LakeError``, as does a catalog listing files while none are
    there. ``shown`` is the path named in messages (``path`` may be a private copy).
    """
    name = shown or path
    if not path.exists():
        if holds_files(data_path):
            raise LakeError(f"catalog {name} is missing but {data_path} holds data files: {_RESTORE}")
        return None
    if not path.is_file():
        raise LakeError(f"catalog {name} is not a file: move it aside")
    size = path.stat().st_size
    if size == 0:
        if holds_files(data_path):
            raise LakeError(f"catalog {name} is empty (0 bytes) but {data_path} holds data files: {_RESTORE}")
        return None
    _check_header(path, name)
    try:
        found = _read(path)
    except sqlite3.Error as exc:
        raise LakeError(f"catalog {name} is damaged ({exc}): {_RESTORE}") from None
    if found is None:
        if holds_files(data_path):
            raise LakeError(
                f"catalog {name} is not a DuckLake catalog but {data_path} holds data files: {_RESTORE}"
            )
        return None
    recorded, live = found
    if live and "://" not in data_path and not holds_files(data_path):
        raise LakeError(
            f"catalog {name} lists {live} data files but {data_path} holds none: "
            "copy or restore the whole lake folder (catalog and files/ together)"
        )
    return CatalogFile(path, recorded, live)


def _check_header(path: Path, name: Path, waits: int = 40) -> None:
    """The file is SQLite and as long as its header says (a checkpoint may be extending it: wait a bit)."""
    for attempt in range(waits):
        with path.open("rb") as f:
            head = f.read(100)
        if len(head) < 100 or not head.startswith(_MAGIC):
            raise LakeError(f"catalog {name} is not a SQLite database (damaged or overwritten): {_RESTORE}")
        page = int.from_bytes(head[16:18], "big")
        page = 65536 if page == 1 else page
        pages = int.from_bytes(head[28:32], "big")
        valid = head[24:28] == head[92:96]  # the size field is trusted only when these agree
        if not valid or pages * page <= path.stat().st_size:
            return
        if attempt < waits - 1:
            time.sleep(0.05)  # 2 s in all: a checkpoint writes the header's page first, then the rest
    raise LakeError(
        f"catalog {name} is cut short ({path.stat().st_size} of {pages * page} bytes; "
        f"a copy or disk that did not finish): {_RESTORE}"
    )


def _read(path: Path) -> tuple[str, int] | None:
    """(recorded data path, live data files), or None for a SQLite file without DuckLake's tables."""
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"ducklake_metadata", "ducklake_data_file"} <= tables:
            return None
        row = db.execute(
            "SELECT value FROM ducklake_metadata WHERE key = 'data_path' AND coalesce(scope, '') = ''"
        ).fetchone()
        live = db.execute("SELECT count(*) FROM ducklake_data_file WHERE end_snapshot IS NULL").fetchone()
        return (str(row[0]) if row else "", int(live[0]) if live else 0)
    finally:
        db.close()


def relocate(catalog: CatalogFile, data_path: str) -> None:
    """Record ``data_path`` as the lake's data path (its folder was moved or copied here).

    Only the root is rewritten: DuckLake stores every schema, table and file path
    relative to it. A path stored absolute would still point into the old folder,
    so such a catalog is refused instead.
    """
    db = sqlite3.connect(catalog.path, timeout=30)
    try:
        with db:  # one transaction
            absolute = 0
            for table in ("ducklake_schema", "ducklake_table", "ducklake_data_file", "ducklake_delete_file"):
                row = db.execute(f"SELECT count(*) FROM {table} WHERE NOT path_is_relative").fetchone()
                absolute += int(row[0]) if row else 0
            if absolute:
                raise LakeError(
                    f"catalog {catalog.path} was moved from {catalog.data_path} but names {absolute} paths "
                    f"absolutely: set KWH_DATA_PATH={catalog.data_path} to use the files where they are"
                )
            db.execute(
                "UPDATE ducklake_metadata SET value = ? WHERE key = 'data_path' AND coalesce(scope, '') = ''",
                [data_path],
            )
    except sqlite3.Error as exc:
        raise LakeError(f"catalog {catalog.path}: cannot record the lake's new place ({exc})") from None
    finally:
        db.close()
    log.warning(
        "lake moved: %s now uses its own files at %s (was %s)", catalog.path, data_path, catalog.data_path
    )
