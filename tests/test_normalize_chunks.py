"""``normalize_pages`` converts a chunk of pages at a time: same frame, same errors, bounded memory."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import schemas
from schemas import BodyShapeError, FieldValueError

NORMALIZE = sys.modules["schemas.normalize"]
ROOT = Path(__file__).resolve().parents[1]


def page(rows: list[dict[str, str]], code: str = "005930") -> bytes:
    body = {"stk_cd": code, "stk_dt_pole_chart_qry": rows, "return_code": 0, "return_msg": "ok"}
    return json.dumps(body).encode()


def row(day: int, **kw: str) -> dict[str, str]:
    base = {
        "cur_prc": "+70100",
        "trde_qty": "9263135",
        "trde_prica": "648525",
        "dt": f"202509{day:02d}",
        "open_pric": "-69800",
        "high_pric": "70500",
        "low_pric": "69600",
        "pred_pre": "+600",
        "pred_pre_sig": "2",
        "trde_tern_rt": "+0.16",
    }
    return {**base, **kw}


def pages_with(bad: dict[int, dict[str, str]] | None = None) -> list[bytes]:
    """Six pages of three rows (the third empty); ``bad`` puts values into a row by its number."""
    out, n = [], 0
    for p in range(6):
        rows = []
        for d in range(3 if p != 2 else 0):
            rows.append(row(d + 1, **(bad or {}).get(n, {})))
            n += 1
        out.append(page(rows, code=f"{p:06d}"))
    return out


@pytest.fixture
def one_page_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NORMALIZE, "_CHUNK_BYTES", 1)


@contextlib.contextmanager
def one_chunk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: every input is one chunk, as before chunking."""
    with monkeypatch.context() as m:
        m.setattr(NORMALIZE, "_CHUNK_BYTES", 1 << 40)
        yield


def whole(pages: list[bytes], monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    with one_chunk(monkeypatch):
        return schemas.normalize_pages("ka10081", pages)


def test_chunks_give_the_frame_of_one_pass_and_of_the_dict_path(one_page_chunks, monkeypatch):
    pages = pages_with()
    chunked = schemas.normalize_pages("ka10081", pages)
    assert chunked.height == 15
    assert_frame_equal(chunked, whole(pages, monkeypatch))
    assert_frame_equal(chunked, pl.concat([schemas.normalize("ka10081", json.loads(p)) for p in pages]))
    codes = chunked["stk_cd"].unique(maintain_order=True).to_list()
    assert codes == ["000000", "000001", "000003", "000004", "000005"]


def test_pages_come_from_a_generator_in_chunks(one_page_chunks):
    pages = pages_with()
    assert schemas.normalize_pages("ka10081", iter(pages)).height == 15


def error_of(pages: list[bytes]) -> str:
    with pytest.raises((FieldValueError, BodyShapeError)) as info:
        schemas.normalize_pages("ka10081", pages)
    return f"{type(info.value).__name__}: {info.value}"


def test_bad_value_names_its_row_in_the_whole_input(one_page_chunks, monkeypatch):
    pages = pages_with({10: {"trde_qty": "12x"}})
    got = error_of(pages)
    assert got == "FieldValueError: ka10081.trde_qty: '12x' is not a valid qty (row 10)"
    with one_chunk(monkeypatch):
        assert error_of(pages) == got


def test_the_first_field_in_field_order_wins_across_chunks(one_page_chunks, monkeypatch):
    # a later field bad in the first chunk, an earlier field bad in a later chunk
    pages = pages_with({4: {"trde_tern_rt": "nan"}, 13: {"cur_prc": "7O100"}, 14: {"cur_prc": "x"}})
    got = error_of(pages)
    assert got == "FieldValueError: ka10081.cur_prc: '7O100' is not a valid price (row 13)"
    with one_chunk(monkeypatch):
        assert error_of(pages) == got


def test_a_broken_later_page_comes_before_a_bad_value(one_page_chunks, monkeypatch):
    pages = [*pages_with({4: {"dt": "2025-09-01"}}), b'{"stk_dt_pole_chart_qry": [ {"cur_prc": ']
    got = error_of(pages)
    assert got.startswith("BodyShapeError: ka10081: page 7 is not a ka10081 body")
    with one_chunk(monkeypatch):
        assert error_of(pages) == got


PEAK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import schemas

    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    rows = [
        {"cur_prc": f"+{70000 + i % 997}", "trde_qty": str(9000000 + i), "trde_prica": str(640000 + i),
         "dt": f"2025{1 + i % 12:02d}{1 + i % 28:02d}", "open_pric": f"-{69000 + i % 991}",
         "high_pric": str(71000 + i % 89), "low_pric": str(68000 + i % 83), "pred_pre": f"-{i % 1500}",
         "pred_pre_sig": "5", "trde_tern_rt": f"+{i % 500 / 100:.2f}"}
        for i in range(900)
    ]
    pages = [
        json.dumps({"stk_cd": f"{p:06d}", "stk_dt_pole_chart_qry": rows, "return_code": 0}).encode()
        for p in range(334)
    ]
    schemas.normalize_pages("ka10081", pages[:2])
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts here
    base = status("VmRSS")
    frame = schemas.normalize_pages("ka10081", pages)
    print(json.dumps({"growth": status("VmHWM") - base, "frame": frame.estimated_size()}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_normalizing_300k_rows_grows_the_process_by_a_few_times_the_frame():
    # before chunking: 6.4x the frame; now about 1.7x (bench/results/normalize.md)
    out = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, cwd=ROOT, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["growth"] <= 3.5 * got["frame"], got
