"""Where the lake's DuckDB extensions come from: the pinned duckdb-ext packages, never a download."""

from __future__ import annotations

from pathlib import Path

import pytest

import warehouse.lake as lake
from warehouse import Warehouse
from warehouse.errors import LakeError


def test_the_packaged_extensions_load_without_a_download_or_a_signature_hash(tmp_path: Path) -> None:
    folder = lake._extension_dir()
    assert folder is not None, "the duckdb-ext packages are in requirements.lock"
    with Warehouse(warehouse=tmp_path / "lake") as wh:
        settings = dict(wh.con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
        loaded = {
            name
            for (name,) in wh.con.execute(
                "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
            ).fetchall()
        }
    assert settings["extension_directory"] == folder
    assert settings["allow_unsigned_extensions"] == "true"
    assert settings["autoinstall_known_extensions"] == "false"
    assert {"ducklake", "sqlite_scanner"} <= loaded


def test_a_broken_package_is_a_one_line_error_not_an_install(tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "extensions"
    empty.mkdir()
    monkeypatch.setattr(lake, "_extension_dir", lambda: str(empty))
    with pytest.raises(LakeError, match="'ducklake' does not load from the duckdb-ext packages") as err:
        Warehouse(warehouse=tmp_path / "lake").con  # noqa: B018
    assert "\n" not in str(err.value) and "make venv" in str(err.value)
