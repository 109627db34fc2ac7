"""Every response example of the reference normalizes, except the ones the catalog lists as broken."""

from __future__ import annotations

import json

import pytest

import schemas
from schemas import build_catalog
from schemas.reference import parse_example, parse_example_blocks

CAT = schemas.catalog()
REST_WITH_EXAMPLE = sorted(
    tr.id for tr in CAT.trs.values() if tr.transport == "rest" and tr.example is not None
)
BROKEN = sorted(tr.id for tr in CAT.trs.values() if tr.example_broken)


def test_example_counts(capsys):
    with capsys.disabled():
        print(
            f"\nreference examples: {len(REST_WITH_EXAMPLE)} REST examples normalize; "
            f"{len(BROKEN)} listed as broken in the reference: "
            + "; ".join(f"{i}: {CAT.tr(i).example_broken}" for i in BROKEN)
        )
    assert len(REST_WITH_EXAMPLE) >= 170
    # exactly the reviewed list is excluded, and an excluded TR keeps no example to test
    assert set(BROKEN) == set(build_catalog.BROKEN_EXAMPLES)
    assert all(CAT.tr(i).example is None for i in BROKEN)


@pytest.mark.parametrize("api_id", REST_WITH_EXAMPLE)
def test_reference_example_normalizes(api_id):
    tr = CAT.tr(api_id)
    frame = schemas.normalize(api_id, tr.example)
    assert frame.schema == schemas.output_schema(api_id)
    if tr.main:
        assert frame.height == len(tr.example[tr.main.key])
        assert frame.equals(schemas.normalize_pages(api_id, [json.dumps(tr.example).encode()]))
    else:
        assert frame.height == (1 if tr.response else 0)


@pytest.mark.parametrize("code", sorted(c for c, rt in CAT.realtime.items() if rt.raw.get("example")))
def test_realtime_example_normalizes(code):
    frames = schemas.normalize_realtime([CAT.realtime_type(code).raw["example"]])
    assert list(frames) == [code]
    assert frames[code].height >= 1


def test_example_parser_repairs_what_the_pdf_broke():
    value, repairs = parse_example("{\n 'a': '1',\n 'b': [ {'c': '2'}, ],\n}")
    assert value == {"a": "1", "b": [{"c": "2"}]} and repairs
    # a page break closes the brackets early; the next block continues the list
    value, repairs = parse_example_blocks(['{"rows": [{"x": "1"},\n {"x": "2"}\n]\n}', '{"x": "3"}\n]\n}'])
    assert value == {"rows": [{"x": "1"}, {"x": "2"}, {"x": "3"}]}
    assert repairs == ["joined 2 page-broken blocks (next item)"]
    with pytest.raises(ValueError):
        parse_example("not json at all")
