"""The lake is never lost, never misread: damaged, moved, copied, read-only, and errors of the environment.

Real OS processes, nothing mocked: the simulator (``kwh sim``) and ``kwh`` commands run by
the one harness of ``tests/_flow_procs.py``. One lake is built once by a real ``kwh
backfill``; every test works on its own copy of it and compares checksums of files
before and after.

- A catalog that is 0 bytes, cut in half, overwritten in the middle or missing, beside
  the lake's data files, is refused by every command (one line, exit 1) and nothing is
  written: not the catalog, not a data file, compaction included.
- Read commands (``status``, ``sql``, ``compact --dry-run``, ``warehouse.connect``) change
  no byte of the catalog; compaction keeps files the catalog does not list unless told.
- A lake folder copied (or moved) elsewhere reads and writes its own files only: a
  backfill into the copy leaves every byte of the original as it was.
- A lake another user can only read (``chmod -R a-w``, run as ``nobody``) and a lake on
  a read-only bind mount answer ``kwh sql``, ``kwh status``, ``compact --dry-run``,
  ``backfill --dry-run`` and ``warehouse.connect()``; a write says in one line why it cannot.
- Environment errors are one line naming the path and what to do, exit 2 (bad input) or
  1 (environment), never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flow_procs import KWH, Proc, clean_env, start_sim, wait_http
from _mounts import needs_mount, read_only_bind

from simulator.server import free_port

pytestmark = pytest.mark.slow

TIMEOUT = 240.0
SYMBOLS = "005930,000660"
FIRST = ("2025-01-02", "2025-06-30")  # the base lake
MORE = ("2025-07-01", "2025-09-30")  # written into copies
NOBODY = 65534


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    url: str
    base: Path  # the lake every test copies
    rows: int  # its stock_bars_daily rows

    def kwh(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str]:
        name = f"kwh-{args[0]}-{os.urandom(3).hex()}"
        proc = Proc(cwd or self.tmp, name, [*KWH, *args], env or self.env)
        code = proc.wait(TIMEOUT)
        return code, proc.output()

    def kwh_all(self, commands: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
        """``kwh`` with each of ``commands`` at once (none may write: the callers check every byte)."""
        return together({what: [*KWH, *args] for what, args in commands.items()}, self.tmp, self.env)

    def backfill_args(self, lake: Path, window: tuple[str, str] = MORE, *extra: str) -> list[str]:
        start, end = window
        return [
            "backfill", "-d", "stock_bars_daily", "--symbols", SYMBOLS, "--start", start, "--end", end,
            "--base-url", self.url, "-w", str(lake), *extra,
        ]  # fmt: skip

    def backfill(self, lake: Path, window: tuple[str, str] = MORE, *extra: str) -> tuple[int, str]:
        return self.kwh(*self.backfill_args(lake, window, *extra))

    def count(self, lake: Path) -> int:
        """stock_bars_daily's rows, read in this process (``kwh sql`` itself: the read tests)."""
        import warehouse

        con = warehouse.connect(read_only=True, warehouse=lake)
        try:
            return int(con.execute("SELECT count(*) FROM stock_bars_daily").fetchone()[0])  # type: ignore[index]
        finally:
            con.close()

    def copy(self, name: str) -> Path:
        target = self.tmp / name
        shutil.copytree(self.base, target)
        return target


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("safety")
    env = {**clean_env(tmp), "KIWOOM_RATE": "50"}
    sim, url = start_sim(tmp, env, stocks=30, seed=7)
    try:
        assert wait_http(url + "/_sim/stats", sim, 60), f"simulator did not start:\n{sim.output()}"
        partial = Stack(tmp, env, url, tmp / "base", 0)
        code, out = partial.backfill(partial.base, FIRST)
        assert code == 0, out
        rows = partial.count(partial.base)
        assert rows > 200
        assert any((partial.base / "files").rglob("*.parquet"))
        yield Stack(tmp, env, url, partial.base, rows)
    finally:
        sim.kill()


def together(commands: dict[str, list[str]], cwd: Path, env: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Start every command, then wait for each: (exit code, output) by name."""
    procs = {
        what: Proc(cwd, f"{what.replace(' ', '_')}-{os.urandom(3).hex()}", argv, env)
        for what, argv in commands.items()
    }
    return {what: (proc.wait(TIMEOUT), proc.output()) for what, proc in procs.items()}


def sums(folder: Path, skip: tuple[str, ...] = ("-wal", "-shm")) -> dict[str, str]:
    """sha256 of every file under ``folder`` (SQLite's -wal/-shm side files aside)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(skip)
    }


def one_line_error(out: str) -> str:
    """The command's error: exactly one line starting ``error:`` and no traceback."""
    assert "Traceback" not in out and "╭" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    return errors[0]


def recorded_data_path(lake: Path) -> str:
    with closing(sqlite3.connect(f"{(lake / 'catalog.sqlite').as_uri()}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT value FROM ducklake_metadata WHERE key = 'data_path'").fetchone()
    return str(row[0])


# ----------------------------------------------------------------------------- 1. damaged catalogs


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _scribbled(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : 2 * len(data) // 3] = b"\xab" * (2 * len(data) // 3 - len(data) // 3)
    path.write_bytes(bytes(data))


def _missing(path: Path) -> None:
    path.unlink()


DAMAGE = {
    "empty": (_empty, "is empty (0 bytes)"),
    "half": (_half, "is cut short"),
    "scribbled": (_scribbled, "is damaged (database disk image is malformed)"),
    "missing": (_missing, "is missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_catalog_beside_data_files_is_refused_by_every_command(stack: Stack, damage: str) -> None:
    lake = stack.copy(f"damaged-{damage}")
    for side in lake.glob("catalog.sqlite-*"):
        side.unlink()
    hurt, says = DAMAGE[damage]
    hurt(lake / "catalog.sqlite")
    before = sums(lake)
    data_files = [k for k in before if k.endswith(".parquet")]
    assert data_files
    commands = {
        "status": ["status", "-w", str(lake)],
        "compact --delete-orphans": ["compact", "-w", str(lake), "--older-than", "0s", "--delete-orphans"],
        "backfill": stack.backfill_args(lake),
    }
    if damage in ("empty", "half"):  # every command (the others: a few, the checks are the same)
        commands |= {
            "sql": ["sql", "-w", str(lake), "SELECT count(*) FROM stock_bars_daily"],
            "compact": ["compact", "-w", str(lake), "--older-than", "0s"],
            "compact --dry-run": ["compact", "-w", str(lake), "--dry-run"],
            "backfill --dry-run": [*commands["backfill"], "--dry-run"],
            "daily": ["daily", "--symbols", SYMBOLS, "--base-url", stack.url, "-w", str(lake)],
        }
    for what, (code, out) in stack.kwh_all(commands).items():
        line = one_line_error(out)
        assert code == 1, f"{what}: {out}"
        assert str(lake / "catalog.sqlite") in line and says in line, f"{what}: {line}"
    assert sums(lake) == before, "no byte of the catalog or of a data file changed"
    assert (lake / "catalog.sqlite").exists() == (damage != "missing"), "no catalog was created"


def test_connect_refuses_a_damaged_catalog(stack: Stack) -> None:
    import warehouse
    from warehouse.errors import LakeError

    lake = stack.copy("damaged-connect")
    _half(lake / "catalog.sqlite")
    before = sums(lake)
    with pytest.raises(LakeError, match="is cut short"):
        warehouse.connect(warehouse=lake)
    with pytest.raises(LakeError, match="is cut short"):
        warehouse.Warehouse(warehouse=lake).con  # noqa: B018 - a writer refuses it too
    assert sums(lake) == before


def test_read_commands_never_write(stack: Stack) -> None:
    import warehouse

    lake = stack.copy("read-only-commands")
    before = sums(lake)
    assert recorded_data_path(lake) == f"{stack.base / 'files'}/"
    for args in (["status"], ["compact", "--dry-run"], ["sql", "SELECT count(*) FROM stock_bars_daily"]):
        code, out = stack.kwh(*args[:1], "-w", str(lake), *args[1:])
        assert code == 0, out
    con = warehouse.connect(warehouse=lake)
    assert con.execute("SELECT count(*) FROM stock_bars_daily").fetchone() == (stack.rows,)
    con.close()
    assert sums(lake) == before, "reads change nothing, not even the copied lake's recorded path"
    assert recorded_data_path(lake) == f"{stack.base / 'files'}/"


def test_compaction_keeps_files_the_catalog_does_not_list_unless_told(stack: Stack) -> None:
    """A catalog restored from a backup does not list the files written since: they are kept."""
    lake = stack.copy("restored")
    backup = stack.tmp / "restored-catalog-backup.sqlite"
    # closed, not only committed: an open handle in this process would share SQLite's locks with
    # the reads of this process after the restore (the counts) and make them fail with a disk I/O error
    with closing(sqlite3.connect(lake / "catalog.sqlite")) as src, closing(sqlite3.connect(backup)) as dst:
        src.backup(dst)
    listed = parquet(lake)
    code, out = stack.backfill(lake)
    assert code == 0, out
    assert stack.count(lake) > stack.rows
    orphans = parquet(lake) - listed
    assert orphans, "the backfill wrote new files"
    for side in lake.glob("catalog.sqlite-*"):
        side.unlink()
    shutil.copyfile(backup, lake / "catalog.sqlite")  # the restore: the newer files are orphans now
    code, out = stack.kwh("compact", "-w", str(lake), "--older-than", "0s")
    assert code == 0, out
    assert "not in the catalog and were kept" in out and "--delete-orphans" in out, out
    assert orphans <= parquet(lake), "every file the restored catalog does not list is still there"
    assert stack.count(lake) == stack.rows
    code, out = stack.kwh("compact", "-w", str(lake), "--older-than", "0s", "--delete-orphans")
    assert code == 0, out
    assert not orphans & parquet(lake), "--delete-orphans deletes them"
    assert stack.count(lake) == stack.rows, "the restored catalog's own rows survive"


def parquet(lake: Path) -> set[str]:
    return {str(p.relative_to(lake)) for p in (lake / "files").rglob("*.parquet")}


# ----------------------------------------------------------------------------- 2. moved and copied lakes


def test_a_copied_lake_reads_and_writes_only_its_own_files(stack: Stack) -> None:
    import duckdb

    from warehouse.lake import _extension_dir

    original = stack.copy("original")
    code, out = stack.backfill(original, ("2025-06-02", "2025-06-30"))  # adopt it: a lake of its own
    assert code == 0, out
    assert recorded_data_path(original) == f"{original / 'files'}/"
    rows = stack.count(original)
    copy = stack.tmp / "elsewhere" / "copy"
    shutil.copytree(original, copy)
    before = sums(original)

    assert stack.count(copy) == rows, "the copy reads where it is"
    code, out = stack.backfill(copy)
    assert code == 0, out
    assert stack.count(copy) > rows
    assert sums(original) == before, "not one byte of the original changed"
    assert stack.count(original) == rows
    assert recorded_data_path(copy) == f"{copy / 'files'}/", "the copy's catalog names its own files"
    new = parquet(copy) - parquet(original)
    assert new and all((copy / f).exists() for f in new)

    # any DuckDB client (no DATA_PATH given) now finds the copy's files, never the original's
    con = duckdb.connect(
        config={"extension_directory": _extension_dir() or "", "autoload_known_extensions": False}
    )
    con.execute("LOAD ducklake; LOAD sqlite")
    con.execute(f"ATTACH 'ducklake:sqlite:{copy / 'catalog.sqlite'}' AS c (READ_ONLY)")
    files = [
        r[0]
        for r in con.execute("SELECT data_file FROM ducklake_list_files('c', 'stock_bars_daily')").fetchall()
    ]
    con.close()
    assert files and all(f.startswith(f"{copy}/files/") for f in files), files


def test_a_moved_lake_opens_where_it_is(stack: Stack) -> None:
    lake = stack.copy("before-move")
    moved = stack.tmp / "after-move"
    lake.rename(moved)
    code, out = stack.kwh("status", "-w", str(moved))
    assert code == 0 and "stock_bars_daily" in out, out
    code, out = stack.backfill(moved)
    assert code == 0, out
    assert stack.count(moved) > stack.rows
    assert not lake.exists(), "nothing was written at the old place"


def test_kwh_data_path_naming_another_lakes_files_is_refused(stack: Stack) -> None:
    original = stack.copy("shared-original")
    copy = stack.copy("shared-copy")
    before = sums(original)
    env = {**stack.env, "KWH_DATA_PATH": f"{original / 'files'}/"}
    code, out = stack.kwh("status", "-w", str(copy), env=env)
    assert code == 1 and "unset KWH_DATA_PATH" in one_line_error(out), out
    code, out = stack.kwh(*stack.backfill_args(copy), env=env)
    assert code == 1 and str(copy) in one_line_error(out), out
    assert sums(original) == before


# ----------------------------------------------------------------------------- 3. read-only lakes

CONNECT = (
    "import sys, warehouse; con = warehouse.connect(warehouse=sys.argv[1]); "
    "print('ROWS', con.execute('SELECT count(*) FROM stock_bars_daily').fetchone()[0])"
)


def _read_only_checks(stack: Stack, lake: Path, prefix: list[str], home: Path, env: dict[str, str]) -> None:
    """Reads answer, a write says why it cannot in one line, and nothing changes."""
    before = sums(lake)
    commands = {
        "sql": [*KWH, "sql", "-w", str(lake), "-f", "csv", "SELECT count(*) AS n FROM stock_bars_daily"],
        "status": [*KWH, "status", "-w", str(lake)],
        "compact": [*KWH, "compact", "-w", str(lake), "--dry-run"],
        "connect": [sys.executable, "-c", CONNECT, str(lake)],
        "dry-run": [*KWH, *stack.backfill_args(lake, MORE, "--dry-run")],
        "backfill": [*KWH, *stack.backfill_args(lake)],
    }
    ran = together({what: [*prefix, *argv] for what, argv in commands.items()}, home, env)
    code, out = ran["sql"]
    assert code == 0 and out.strip().splitlines()[-1] == str(stack.rows), out
    code, out = ran["status"]
    assert code == 0 and "stock_bars_daily" in out, out
    code, out = ran["compact"]
    assert code == 0 and "dry run" in out, out
    code, out = ran["connect"]
    assert code == 0 and f"ROWS {stack.rows}" in out, out
    code, out = ran["dry-run"]
    assert code == 0 and "dry run: would fetch" in out, out
    code, out = ran["backfill"]
    assert code == 1 and "read-only" in one_line_error(out) and str(lake) in one_line_error(out), out
    assert sums(lake) == before


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can enter (pytest's own are 0700), with a world-writable TMPDIR."""
    folder = Path(tempfile.mkdtemp(prefix="kwh-safety-"))
    folder.chmod(0o755)
    (folder / "tmp").mkdir()
    (folder / "tmp").chmod(0o1777)
    try:
        yield folder
    finally:
        for p in [folder, *folder.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o200)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_lake_this_user_cannot_write_answers_reads(stack: Stack, shared_dir: Path) -> None:
    lake = shared_dir / "lake"
    shutil.copytree(stack.base, lake)
    for p in [lake, *lake.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)  # chmod -R a-w
    prefix: list[str] = []
    if os.geteuid() == 0:  # root writes anyway: read as nobody
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv cannot drop to another user")
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {**stack.env, "TMPDIR": str(shared_dir / "tmp"), "HOME": str(shared_dir / "tmp")}
    env["KIWOOM_TOKEN_CACHE"] = str(shared_dir / "tmp" / "tokens")
    _read_only_checks(stack, lake, prefix, shared_dir, env)
    assert not list((shared_dir / "tmp").glob("kwh-catalog-*")), "the temporary catalog copies are gone"


@needs_mount
def test_a_lake_on_a_read_only_mount_answers_reads(stack: Stack) -> None:
    with read_only_bind(stack.copy("to-mount"), stack.tmp / "mounted") as mnt:
        _read_only_checks(stack, mnt, [], stack.tmp, stack.env)


# ----------------------------------------------------------------------------- 7. environment errors


def test_a_warehouse_path_that_is_a_file_is_bad_input(stack: Stack) -> None:
    file = stack.tmp / "not-a-folder"
    file.write_text("x")
    commands = {
        "status": ["status", "-w", str(file)],
        "sql": ["sql", "-w", str(file), "SELECT 1"],
        "compact": ["compact", "-w", str(file)],
        "backfill": stack.backfill_args(file),
    }
    for code, out in stack.kwh_all(commands).values():
        line = one_line_error(out)
        assert code == 2 and str(file) in line and "is a file" in line, out
    assert file.read_text() == "x"


def test_an_unreachable_prefect_api_is_one_line(stack: Stack) -> None:
    api = f"http://127.0.0.1:{free_port()}/api"
    env = {**stack.env, "PREFECT_API_URL": api}
    code, out = stack.kwh(*stack.backfill_args(stack.tmp / "prefect-down"), env=env)
    line = one_line_error(out)
    assert code == 1 and "Prefect API is not reachable" in line and api in line, out


def test_a_lake_opened_through_a_symlink_is_not_a_move(stack: Stack) -> None:
    from warehouse import Warehouse

    lake = stack.copy("linked")
    with Warehouse(warehouse=lake) as wh:
        wh.con  # noqa: B018 - the copy adopts its own place
    link = stack.tmp / "link-to-linked"
    link.symlink_to(lake)
    catalog = sums(lake)["catalog.sqlite"]
    with Warehouse(warehouse=link) as wh:
        assert wh.sql("SELECT count(*) AS n FROM stock_bars_daily")["n"][0] == stack.rows
    assert sums(lake)["catalog.sqlite"] == catalog, "the same folder under another name: nothing rewritten"
    assert recorded_data_path(lake) == f"{lake / 'files'}/"
