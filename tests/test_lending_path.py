"""The stock-lending TRs: sent to /api/dostk/slb, falling back once to the reference's /api/dostk/slbt."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import schemas
from connectors import KiwoomClient, RateLimiter, RateLimits, Settings, UnknownApi

BODY = {"dbrt_trde_trnsn": [], "return_code": 0, "return_msg": ""}
WRONG_PATH = {
    "return_code": 2,
    "return_msg": "입력 값을 확인해 주세요[1504:해당 URI에서는 지원하는 API ID가 아닙니다]",
}
REQUEST = {"strt_dt": "20250401", "end_dt": "20250430", "all_tp": "1"}


def _serve(paths: set[str], seen: list[str]):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"token": "t", "expires_dt": "29991231235959", "return_code": 0})
        seen.append(request.url.path)
        return httpx.Response(200, json=BODY if request.url.path in paths else WRONG_PATH)

    return handler


def _requests(paths: set[str], n: int) -> list[str]:
    seen: list[str] = []
    settings = Settings.load(base_url="http://kiwoom.test", env={}, env_file=None, token_cache=None)

    async def go() -> None:
        transport = httpx.MockTransport(_serve(paths, seen))
        async with KiwoomClient(
            settings, transport=transport, limiter=RateLimiter(RateLimits(total=None))
        ) as kw:
            for _ in range(n):
                page = await kw.request("ka10068", REQUEST)
                assert page.body["return_code"] == 0

    asyncio.run(go())
    return seen


def test_the_catalog_sends_lending_trs_to_slb_and_knows_the_printed_path():
    for api_id in ("ka10068", "ka10069", "ka20068", "ka90012"):
        tr = schemas.catalog().tr(api_id)
        assert (tr.path, tr.path_fallback) == ("/api/dostk/slb", "/api/dostk/slbt")


def test_a_server_on_slb_is_asked_there_only():
    assert _requests({"/api/dostk/slb"}, 3) == ["/api/dostk/slb"] * 3


def test_a_server_on_slbt_costs_one_refused_request_then_is_remembered():
    assert _requests({"/api/dostk/slbt"}, 3) == ["/api/dostk/slb", *["/api/dostk/slbt"] * 3]


def test_a_tr_served_on_neither_path_is_an_error_not_a_loop():
    with pytest.raises(UnknownApi, match="1504"):
        _requests(set(), 1)
