"""schemas._scan, the C scanners: what they read, what they refuse, and that they hold up under threads."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading

import orjson
import pytest
from polars.testing import assert_frame_equal

import schemas
from schemas._scan import scan_pages, scan_real
from schemas.catalog import TR
from schemas.normalize import _wire_names
from schemas.scanned import column, page_strings

normalize_module = sys.modules["schemas.normalize"]


def texts(col: tuple) -> list[bytes | None]:
    offsets, data, valid, _nulls = col
    ends = list(memoryview(offsets).cast("i"))
    out: list[bytes | None] = [data[a:b] for a, b in itertools.pairwise(ends)]
    if valid is not None:
        out = [v if valid[i // 8] >> (i % 8) & 1 else None for i, v in enumerate(out)]
    return out


# ---- REAL frames ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"\xff"}}]}',  # not UTF-8
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"\xed\xa0\x80"}}]}',  # surrogate
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"\xc0\xaf"}}]}',  # overlong
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"\xc3"}}]}',  # cut short
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"09\t1"}}]}',  # control byte
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"09\\"1"}}]}',  # escape
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":90000}}]}',  # a number
        b'{"trnm":"REAL","data":[{"type":"ZZ","item":"005930","values":{}}]}',  # unknown type
        b'{"trnm":"PING","data":[]}',
        b'{"trnm":"REAL","data":[{"type":"0B","values":{"20":"090000"}}]}',  # no item
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{}}]}',  # the wanted FID missing
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"1","20":"2"}}]}',  # twice
        b'{"trnm":"REAL","data":[{"values":{"20":"1"},"type":"0B","item":"005930"}]}',  # values first
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"090000"}}',  # cut short
        b'{"trnm":"REAL","data":[]} trailing',
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"090000",}}]}',
        b"",
    ],
)
def test_scan_real_refuses_what_is_not_a_real_frame_as_expected(frame):
    assert scan_real([frame], {"0B": ("20",)}) is None
    # the same entry written properly is read
    assert scan_real(
        [b'{"trnm":"REAL","data":[{"type":"0B","item":"1","values":{"20":"2"}}]}'], {"0B": ("20",)}
    )


def test_scan_real_reads_strings_byte_for_byte_in_any_key_order_and_spacing():
    frame = (
        b' {"trnm" : "REAL" , "data" : [ {"type":"0B","name":"\xec\xa3\xbc","item":"005930",'
        b'"values":{"10":"+81500","20":"090000","9999":"\xf0\x9f\x98\x80"}},\n'
        b'{"item":"000660","type":"0B","values":{"20":"090001","10":""}}]} '
    )
    out = scan_real([b'{"trnm":"REAL","data":[]}', frame], {"0B": ("20", "10"), "0D": ("41",)})
    assert list(out) == ["0B"]
    entries, index, columns = out["0B"]
    assert entries == 2 and list(memoryview(index).cast("i")) == [1, 1]
    assert [texts(c) for c in columns] == [[b"005930", b"000660"], [b"090000", b"090001"], [b"+81500", b""]]
    assert column("price", 2, columns[2]).to_list() == ["+81500", ""]


def test_scan_real_refuses_bad_arguments():
    with pytest.raises(TypeError, match="frame 1 is not bytes"):
        scan_real([b"{}", "text"], {"0B": ("20",)})
    with pytest.raises(ValueError, match="twice"):
        scan_real([], {"0B": ("20", "20")})
    with pytest.raises(TypeError):
        scan_real([], {"0B": ["20"]})


# ---- REST pages ----------------------------------------------------------------------------

LISTS, ITEMS, SCALARS = ("chart", "chart_old"), ("dt", "cur_prc"), {"stk_cd": "stk_cd"}


def page(**body: object) -> bytes:
    return orjson.dumps(body)


def test_scan_pages_reads_items_scalars_and_return_codes():
    pages = [
        page(
            stk_cd="005930",
            chart=[{"dt": "20250908", "cur_prc": "+70100", "x": 1}, {"dt": "20250905"}],
            return_code=0,
            return_msg="정상",
        ),
        b' { "return_code" : -5 , "chart_old" : [ {"cur_prc" : null , "dt" : "20250904", '
        b'"y": [1, {"z": null}]} ] } ',
        page(stk_cd=None, chart=None, chart_old=[], extra={"a": [1.5e3, True, False]}),
    ]
    got = scan_pages(pages, LISTS, ITEMS, tuple(SCALARS))
    assert got is not None
    counts, codes, message, items, scalars = got
    assert list(memoryview(counts).cast("i")) == [2, 1, 0]
    assert list(memoryview(codes).cast("q")) == [0, -5, 0]
    assert texts(message) == ["정상".encode(), None, None]
    assert [texts(c) for c in items] == [
        [b"20250908", b"20250905", b"20250904"],
        [b"+70100", None, None],
    ]
    assert [texts(c) for c in scalars] == [[b"005930", None, None]]
    strings = page_strings(pages, LISTS, ITEMS, SCALARS)
    assert strings is not None and strings.items.to_dicts() == [
        {"dt": "20250908", "cur_prc": "+70100", "stk_cd": "005930"},
        {"dt": "20250905", "cur_prc": None, "stk_cd": "005930"},
        {"dt": "20250904", "cur_prc": None, "stk_cd": None},
    ]
    assert strings.codes.tolist() == [0, -5, 0] and strings.messages.to_list() == ["정상", None, None]


@pytest.mark.parametrize(
    "bad",
    [
        b"[]",
        b'{"chart":[{"dt":"1"}],"chart_old":[{"dt":"2"}]}',  # two lists
        b'{"chart":[1]}',  # an item that is not an object
        b'{"chart":[{"dt":20250908}]}',  # a number where a string is asked for
        b'{"chart":[{"dt":"1","dt":"2"}]}',  # a key twice
        b'{"stk_cd":"1","stk_cd":"2"}',
        b'{"return_code":"0"}',  # not a number
        b'{"return_code":1.5}',
        b'{"return_code":1234567890123456789}',  # 19 digits
        b'{"return_msg":5}',
        b'{"chart":[{"dt":"a\\nb"}]}',  # an escape
        b'{"extra":01}',  # not JSON
        b'{"extra":tru}',
        b'{"chart":[]} {}',
        b'{"chart":[{"dt":"1"}]',
    ],
)
def test_scan_pages_refuses_what_it_does_not_read(bad):
    assert scan_pages([page(chart=[{"dt": "1"}]), bad], LISTS, ITEMS, tuple(SCALARS)) is None


# ---- threads --------------------------------------------------------------------------------


def test_scans_in_threads_beside_python_allocations_give_the_same_columns():
    """The scans release the GIL: threads scanning at once, beside Python allocating, get the same."""
    entries = ",".join(
        f'{{"type":"0B","name":"체결","item":"{i:06d}","values":{{"20":"0900{i % 60:02d}","10":"+{i}"}}}}'
        for i in range(400)
    )
    frames = [f'{{"trnm":"REAL","data":[{entries}]}}'.encode()] * 50
    pages = [
        page(chart=[{"dt": str(20250000 + i), "cur_prc": f"-{i}"} for i in range(300)], return_code=0)
    ] * 50
    want_real = scan_real(frames, {"0B": ("20", "10")})
    want_pages = scan_pages(pages, LISTS, ITEMS, tuple(SCALARS))
    failures: list[str] = []

    def work(n: int) -> None:
        for _ in range(n):
            if scan_real(frames, {"0B": ("20", "10")}) != want_real:
                failures.append("real")
            if scan_pages(pages, LISTS, ITEMS, tuple(SCALARS)) != want_pages:
                failures.append("pages")

    def churn() -> None:
        for _ in range(200_000):
            _ = [str(i) for i in range(8)]

    threads = [threading.Thread(target=work, args=(6,)) for _ in range(3)] + [threading.Thread(target=churn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_the_scans_allocate_nothing_from_pythons_allocator_without_the_gil():
    """Python's debug allocator aborts the process when PyMem_Malloc and friends run without the GIL."""
    code = """
import orjson
from schemas._scan import scan_pages, scan_real
one = '{{"type":"0B","item":"{0:06d}","values":{{"20":"0900","10":"+{0}"}}}}'
entries = ",".join(one.format(i) for i in range(400))
assert scan_real([f'{{"trnm":"REAL","data":[{entries}]}}'.encode()] * 5, {"0B": ("20", "10")})
pages = [orjson.dumps({"chart": [{"dt": str(i)} for i in range(300)]})] * 5
assert scan_pages(pages, ("chart",), ("dt",), ())
print("scanned")
"""
    env = {**os.environ, "PYTHONMALLOC": "debug"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "scanned", done.stderr[-2000:]


CAT = schemas.catalog()
PAGED = sorted(t.id for t in CAT.trs.values() if t.transport == "rest" and t.example is not None and t.main)


def only_strings(tr: TR, body: dict) -> bool:
    """Whether every key the scanner is asked for holds a string or null in ``body``."""
    items, scalars = set(_wire_names(tr.main.items)), set(_wire_names(tr.response))
    lists = [body[k] for k in tr.main.keys if body.get(k)]
    values = [v for k, v in body.items() if k in scalars]
    values += [v for rows in lists for row in rows for k, v in row.items() if k in items]
    return all(v is None or isinstance(v, str) for v in values)


@pytest.mark.parametrize("api_id", PAGED)
def test_every_reference_example_page_reads_the_same_scanned_or_by_the_json_reader(api_id, monkeypatch):
    tr = CAT.tr(api_id)
    pages = [orjson.dumps(tr.example), orjson.dumps({**tr.example, "return_msg": "두 번째"})]
    took = []
    scanned = normalize_module.page_strings

    def spy(*a: object, **kw: object) -> object:
        took.append(scanned(*a, **kw) is not None)  # type: ignore[arg-type]
        return scanned(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(normalize_module, "page_strings", spy)
    fast = schemas.normalize_pages(api_id, pages)
    assert took and all(took) == only_strings(tr, tr.example)
    monkeypatch.setattr(normalize_module, "page_strings", lambda *a, **kw: None)
    assert_frame_equal(fast, schemas.normalize_pages(api_id, pages))
    assert fast.height == 2 * len(tr.example[tr.main.key])
