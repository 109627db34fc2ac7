"""Where the lake is and how to open it: a DuckDB connection with DuckLake attached.

Configuration (arguments win over the environment, the environment over ``.env``):

- ``KWH_WAREHOUSE``: the lake folder (default ``data``). The SQLite catalog is
  ``<folder>/catalog.sqlite`` and the Parquet files go to ``<folder>/files/``.
- ``KWH_CATALOG``: another catalog, as DuckLake spells it after ``ducklake:``,
  e.g. ``postgres:dbname=kwh host=127.0.0.1`` or ``sqlite:/srv/lake.sqlite``.
- ``KWH_DATA_PATH``: another data path (a folder, or ``s3://bucket/prefix/`` with
  the httpfs extension installed).

The project folder is the checkout of this project holding the working directory
(the nearest folder upwards with this project's ``pyproject.toml``; a notebook in
``notebooks/`` finds the checkout above it), else the working directory. Its
``.env`` (the file the command line reads) may set the variables above; a relative
folder there or in the environment, and the default ``data``, are taken relative to
the project folder. So ``kwh`` run in the checkout and a notebook started in
``notebooks/`` open the same lake.

Extensions load from the ``duckdb-ext-*`` packages (offline) when they are
installed, without DuckDB's per-load signature hash (see ``_attach``); otherwise
DuckDB's own ``INSTALL`` (signed, from DuckDB's repository) is used.

Safety (``open_lake``): a damaged or missing catalog beside data files is refused,
never re-created (``catalog_file``); a read-only open never writes the catalog; a
lake folder in the default layout may be moved or copied and uses its own
``files/`` wherever it is. Errors are ``WarehouseError`` (bad input) and
``LakeError`` (the lake on disk), one line each (``warehouse.errors``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
import sysconfig
import tempfile
import time
import tomllib
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import duckdb
from dotenv import dotenv_values

from schemas.calendar import TZ_NAME
from warehouse.catalog_file import CatalogFile, examine, holds_files, relocate
from warehouse.errors import LakeError, WarehouseError

__all__ = [
    "LAKE",
    "LakeConfig",
    "LakeError",
    "WarehouseError",
    "open_lake",
    "project_dir",
    "retry_transaction",
]

LAKE = "lake"  # the attached catalog's name; datasets are lake.main.<name>
_CATALOG_EXTENSIONS = {"sqlite": "sqlite", "postgres": "postgres", "mysql": "mysql"}
# The SQLite catalogs this process has open through DuckDB, and the connections holding them. The
# checks before an open read the file with Python's ``sqlite3`` and plain reads: a second copy of
# SQLite, whose closing of the file drops every POSIX lock DuckDB's copy holds on it (in WAL mode,
# the one telling other processes a connection still uses the WAL; another process may then reset
# the WAL index under this one: "database disk image is malformed"). So they run only at the
# process's first open of a catalog, while nothing else here holds it.
_LIVE: dict[Path, weakref.WeakSet[duckdb.DuckDBPyConnection]] = {}

T = TypeVar("T")


@dataclass(frozen=True)
class LakeConfig:
    root: Path
    catalog: str
    data_path: str
    read_only: bool = False  # every open of this lake is read-only (``kwh status``, ``kwh sql``)

    @classmethod
    def load(
        cls,
        warehouse: str | Path | None = None,
        catalog: str | None = None,
        data_path: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> LakeConfig:
        """Arguments, else ``env`` (default: the environment over the project's ``.env``).

        A ``warehouse`` argument is relative to the working directory; ``KWH_WAREHOUSE``
        and the default ``data`` are relative to the project folder (``project_dir``).
        """
        base = project_dir()
        if env is None:
            dotenv = {k: v for k, v in dotenv_values(base / ".env").items() if v is not None}
            env = {**dotenv, **os.environ}
        if warehouse:
            root = Path(warehouse).expanduser().absolute()
        else:
            root = base / Path(env.get("KWH_WAREHOUSE") or "data").expanduser()
        catalog = catalog or env.get("KWH_CATALOG") or f"sqlite:{root / 'catalog.sqlite'}"
        if catalog.startswith("ducklake:"):
            catalog = catalog.removeprefix("ducklake:")
        data_path = data_path or env.get("KWH_DATA_PATH") or f"{root / 'files'}/"
        return cls(root=root, catalog=catalog, data_path=data_path)

    @property
    def scheme(self) -> str:
        head, sep, _ = self.catalog.partition(":")
        return head if sep and head in _CATALOG_EXTENSIONS else "duckdb"

    def sqlite_path(self) -> Path | None:
        return Path(self.catalog.partition(":")[2]) if self.scheme == "sqlite" else None

    def exists(self) -> bool:
        """Whether a catalog is there; a file where the lake folder should be is a ``WarehouseError``,
        data files without their catalog a ``LakeError``."""
        _check_folder(self, read_only=True)
        path = self.sqlite_path()
        if path is None:
            return True
        if not path.exists():
            examine(path, self.data_path)  # raises beside data files
            return False
        return True

    def reading(self) -> LakeConfig:
        """The same lake, opened read-only whoever opens it (a ``Warehouse`` too)."""
        return replace(self, read_only=True)

    def planning(self) -> LakeConfig:
        """For a plan (``--dry-run``, checking input): read-only when a lake is there, so a plan
        of a read-only lake works and writes nothing; as it is for a lake still to be created."""
        return self.reading() if self.exists() else self

    @property
    def own_files(self) -> bool:
        """The default layout: the catalog and ``files/`` in the lake folder, which may be moved or copied."""
        return (
            self.catalog == f"sqlite:{self.root / 'catalog.sqlite'}"
            and self.data_path == f"{self.root / 'files'}/"
        )

    def describe(self) -> str:
        """For messages: the catalog without anything that looks like a password."""
        parts = [p for p in self.catalog.split() if not p.lower().startswith("password=")]
        return f"catalog {' '.join(parts)}, data {self.data_path}"


def project_dir(cwd: Path | None = None) -> Path:
    """The checkout of this project holding ``cwd`` (default: the working directory), else ``cwd``."""
    here = (cwd or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if _is_project(folder / "pyproject.toml"):
            return folder
    return here


def _is_project(pyproject: Path) -> bool:
    try:
        with pyproject.open("rb") as f:
            return bool(tomllib.load(f).get("project", {}).get("name") == "kiwoom-warehouse")
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _extension_dir() -> str | None:
    folder = Path(sysconfig.get_paths()["purelib"]) / "duckdb_ext" / "extensions"
    return str(folder) if folder.is_dir() else None


def _load(con: duckdb.DuckDBPyConnection, name: str, packaged: bool) -> None:
    try:
        con.execute(f"LOAD {name}")
    except duckdb.Error as exc:
        if packaged:  # never downloaded when the packages are there: a broken install is an error
            raise LakeError(
                f"DuckDB extension {name!r} does not load from the duckdb-ext packages: reinstall them "
                f"(make venv; pinned in requirements.lock) ({str(exc).splitlines()[0]})"
            ) from exc
        try:
            con.execute(f"INSTALL {name}")
            con.execute(f"LOAD {name}")
        except duckdb.Error as exc:
            raise LakeError(
                f"DuckDB extension {name!r} is not available: install the duckdb-ext-{name} package "
                f"(pinned in requirements.lock for ducklake and sqlite) ({str(exc).splitlines()[0]})"
            ) from exc


def _prepare_sqlite(path: Path) -> None:
    """A new SQLite catalog in WAL mode, so readers never block the writer's commit."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # closed here, not left to the collector: a sqlite3 connection sits in a reference cycle
        # (its statement cache), and closing it later, once DuckDB holds the catalog, would drop
        # DuckDB's locks on it (see _LIVE)
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    except (OSError, sqlite3.Error) as exc:
        raise LakeError(f"cannot create the catalog {path} ({exc}): check the folder's permissions") from None


def _readable_copy(path: Path) -> Path | None:
    """A private copy of a SQLite catalog in a folder this process cannot write, else None.

    SQLite in WAL mode cannot open a database read-only where it cannot create the
    ``-shm`` file (a read-only mount, a snapshot, another user's lake): the copy
    (with its ``-wal``, so the last commits are there) is opened instead. Nobody
    writes such a lake, so the copy is the lake as it is.
    """
    shm = path.with_name(path.name + "-shm")
    if os.access(path.parent, os.W_OK) and (not shm.exists() or os.access(shm, os.W_OK)):
        return None
    folder = Path(tempfile.mkdtemp(prefix="kwh-catalog-"))
    try:
        for suffix in ("", "-wal"):
            src = path.with_name(path.name + suffix)
            if src.exists():
                shutil.copyfile(src, folder / src.name)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise LakeError(f"cannot read the catalog {path} ({exc}): check the lake's permissions") from None
    return folder / path.name


def _check_folder(config: LakeConfig, read_only: bool) -> None:
    """The lake folder is a folder, and writable for a write."""
    for folder in {config.root, *(p.parent for p in (config.sqlite_path(),) if p is not None)}:
        if folder.exists() and not folder.is_dir():
            raise WarehouseError(f"the warehouse path {folder} is a file, not a folder: give a lake folder")
    path = config.sqlite_path()
    if read_only or path is None or not path.parent.exists():
        return
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LakeError(
            f"the lake {path.parent} is read-only for this user: writing needs write access to it "
            "(kwh sql, kwh status and warehouse.connect() read it as it is)"
        )


def _check_catalog(config: LakeConfig, opened: Path | None, read_only: bool) -> None:
    """Refuse a damaged catalog, and make a moved or copied lake use its own files (``catalog_file``)."""
    path = config.sqlite_path()
    if path is None:
        return
    found: CatalogFile | None = examine(opened or path, config.data_path, shown=path)
    if found is None:
        if read_only:
            raise WarehouseError(f"no warehouse at {config.root}: nothing has been written there yet")
        return
    if found.data_path in ("", config.data_path) or _same_folder(found.data_path, config.data_path):
        return
    if config.own_files:
        if not read_only:
            relocate(found, config.data_path)
        return
    if holds_files(f"{config.root / 'files'}/"):
        raise LakeError(
            f"the lake {config.root} holds its own files/ but KWH_DATA_PATH points to {config.data_path}: "
            "unset KWH_DATA_PATH (a copied lake must not use another lake's files)"
        )
    if not read_only:
        raise LakeError(
            f"catalog {path} records its files at {found.data_path}, not {config.data_path}: "
            f"set KWH_DATA_PATH={found.data_path}, or move the files there"
        )


def _same_folder(a: str, b: str) -> bool:
    """One folder under two spellings (a symlink, a bind mount): not a move."""
    if "://" in a or "://" in b:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is not there: the lake was moved
        return False


def open_lake(config: LakeConfig, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with the lake attached as ``lake`` and in use.

    ``read_only`` (or ``config.read_only``): nothing is created or written; a lake in a
    folder this user cannot write is read through a temporary copy of its SQLite catalog
    (``_readable_copy``), deleted with the connection. A damaged catalog is refused
    (``LakeError``), never replaced; a lake folder moved or copied uses its own files.
    """
    read_only = read_only or config.read_only
    sqlite_path = config.sqlite_path()
    _check_folder(config, read_only)
    live = _LIVE.setdefault(sqlite_path.absolute(), weakref.WeakSet()) if sqlite_path else None
    if live:  # open in this process already, and checked then: never touch the file beside it
        con = _attach(config, config.catalog, read_only)
        live.add(con)
        return con
    if read_only and not config.exists():  # (a missing catalog beside data files raises in exists())
        raise WarehouseError(f"no warehouse at {config.root}: nothing has been written there yet")
    copy = _readable_copy(sqlite_path) if read_only and sqlite_path is not None else None
    try:
        _check_catalog(config, copy, read_only)
        catalog = f"sqlite:{copy}" if copy is not None else config.catalog
        if not read_only:
            if sqlite_path is not None:
                _prepare_sqlite(sqlite_path)
            if "://" not in config.data_path:
                Path(config.data_path).mkdir(parents=True, exist_ok=True)
        con = _attach(config, catalog, read_only)
    except BaseException:
        if copy is not None:
            shutil.rmtree(copy.parent, ignore_errors=True)
        raise
    if copy is not None:
        weakref.finalize(con, shutil.rmtree, copy.parent, True)
    elif live is not None:
        live.add(con)
    return con


def _attach(config: LakeConfig, catalog: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    settings: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    ext = _extension_dir()
    if ext:
        settings["extension_directory"] = ext
        # The pinned duckdb-ext-* packages, installed by pip with DuckDB itself: DuckDB would hash
        # each 50 MB file again on every LOAD to check its signature (0.3 s a connection, every
        # command and notebook). Nothing is installed or downloaded at run time from here on.
        settings["allow_unsigned_extensions"] = True
    con = duckdb.connect(":memory:", config=settings)
    try:
        con.execute(f"SET TimeZone = '{TZ_NAME}'")
        _load(con, "ducklake", packaged=ext is not None)
        if config.scheme != "duckdb":
            _load(con, _CATALOG_EXTENSIONS[config.scheme], packaged=ext is not None)
        options = [f"DATA_PATH '{_quote(config.data_path)}'"]
        if read_only or config.own_files:
            # a lake read where it was copied or mounted, or a moved lake folder: its files are here now
            options.append("OVERRIDE_DATA_PATH TRUE")
        if read_only:
            options.append("READ_ONLY")
        try:
            retry_transaction(
                lambda: con.execute(f"ATTACH 'ducklake:{_quote(catalog)}' AS {LAKE} ({', '.join(options)})"),
                con=None,
            )
        except duckdb.Error as exc:
            raise _attach_error(config, exc) from None
        con.execute(f"USE {LAKE}")
    except BaseException:
        con.close()
        raise
    return con


def _attach_error(config: LakeConfig, exc: duckdb.Error) -> LakeError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lower = text.lower()
    if "malformed" in lower or "not a database" in lower or "failed to load ducklake" in lower:
        hint = "the catalog is damaged: restore it from a backup (README: Safety)"
    elif "unable to open" in lower or "permission" in lower or "read-only" in lower or "readonly" in lower:
        hint = "check that this user may read the lake folder (and write it, for a write)"
    else:
        hint = "see the message above"
    return LakeError(f"cannot open the lake ({config.describe()}): {text}: {hint}")


def _quote(text: str) -> str:
    return text.replace("'", "''")


_RETRYABLE = ("database is locked", "conflict", "busy")


def is_retryable(exc: BaseException, also: tuple[str, ...] = ()) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(marker in text for marker in (*_RETRYABLE, *also))


def retry_transaction(
    fn: Callable[[], T],
    con: duckdb.DuckDBPyConnection | None,
    attempts: int = 30,
    base_delay: float = 0.02,
    max_delay: float = 1.0,
    also: tuple[str, ...] = (),
) -> T:
    """Run ``fn`` (a whole transaction) again when another writer holds the catalog.

    Two writers on one SQLite catalog collide now and then (``database is
    locked``, DuckLake's ``Transaction conflict``). A write is idempotent, so
    running the whole transaction again is safe. Any other error propagates.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except duckdb.Error as exc:
            if con is not None:
                with contextlib.suppress(duckdb.Error):  # nothing open to roll back
                    con.execute("ROLLBACK")
            if not is_retryable(exc, also) or attempt == attempts - 1:
                raise
            time.sleep(min(max_delay, base_delay * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
