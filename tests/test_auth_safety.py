"""Smaller safety points of the connector, against the simulator on a real socket (``SimServer``).

- A next-key HTTP cannot carry (control characters: h11's ``LocalProtocolError``;
  non-ASCII: ``UnicodeEncodeError``) is refused at once (``RequestRefused``), never retried
  as a connection failure: the simulator sees no request for it.
- The token cache folder is tightened to 0700 when it existed before (a shared one is
  left alone); expired token files of other hosts and ports, and temporary files a crash
  left, are deleted when a token is saved.
- ``KiwoomAuth`` itself refuses order paths and order TRs: no token is issued or sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from connectors import KiwoomClient, OrderRefused, RequestRefused, Settings
from connectors.auth import KiwoomAuth
from schemas.calendar import KST
from simulator.app import SimConfig, Simulator
from simulator.server import SimServer

BODY = {"stk_cd": "005930", "base_dt": "20251230", "upd_stkpc_tp": "1"}


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(Simulator(SimConfig(rate_limit=None))) as srv:
        yield srv


def settings(srv: SimServer, cache: Path | None) -> Settings:
    return Settings.load(base_url=srv.base_url, env={}, env_file=None, token_cache=cache)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ----------------------------------------------------------------------------- next-key


@pytest.mark.parametrize("key", ["abc\ndef", "abc\x00def", "키-000123"], ids=["newline", "nul", "non-ascii"])
def test_a_next_key_http_cannot_carry_is_refused_not_retried(server: SimServer, key: str) -> None:
    async def go() -> KiwoomClient:
        async with KiwoomClient(settings(server, None)) as kw:
            assert (await kw.request("ka10081", BODY)).body["return_code"] == 0
            with pytest.raises(RequestRefused, match="not sendable"):
                await kw.request("ka10081", BODY, next_key=key)
            with pytest.raises(RequestRefused):
                async for _ in kw.pages("ka10081", BODY, resume_key=key):
                    pass
            return kw

    started = time.monotonic()
    kw = asyncio.run(go())
    assert time.monotonic() - started < 5, "no backoff: nothing was retried"
    assert kw.stats.retries == 0 and kw.stats.errors == 2
    assert server.sim.stats["ka10081"] == 1, "only the good request reached the server"


# ----------------------------------------------------------------------------- token cache


def test_a_token_cache_folder_that_existed_is_tightened_to_0700(server: SimServer, tmp_path: Path) -> None:
    cache = tmp_path / "tokens"
    cache.mkdir()
    cache.chmod(0o755)
    asyncio.run(_issue(settings(server, cache)))
    assert mode(cache) == 0o700
    (token,) = cache.glob("token-*.json")
    assert mode(token) == 0o600


def test_a_shared_folder_is_left_alone_and_the_token_file_is_private(
    server: SimServer, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "notes.txt").write_text("someone else's")
    asyncio.run(_issue(settings(server, shared)))
    assert mode(shared) == 0o755, "a folder holding other files is not ours to change"
    (token,) = shared.glob("token-*.json")
    assert mode(token) == 0o600


def test_expired_token_files_of_other_hosts_do_not_accumulate(tmp_path: Path) -> None:
    """Simulators on random ports each leave a token file: once expired, the next save deletes it."""
    cache = tmp_path / "tokens"
    with SimServer(Simulator(SimConfig(rate_limit=None, token_lifetime=timedelta(seconds=1)))) as short:
        asyncio.run(_issue(settings(short, cache)))
    (first,) = cache.glob("token-*.json")
    now = datetime.now(KST)
    later = {"token": "t", "expires": (now + timedelta(days=1)).isoformat(), "issued": now.isoformat()}
    valid = cache / "token-10.0.0.1_9-fingerprint.json"
    valid.write_text(json.dumps(later))
    broken = cache / "token-10.0.0.2_9-fingerprint.json"
    broken.write_text("{not json")
    old_tmp, new_tmp = cache / "token-a.tmp11.22", cache / "token-b.tmp33.44"
    old_tmp.write_text("{}")
    new_tmp.write_text("{}")
    two_hours_ago = time.time() - 7200
    os.utime(old_tmp, (two_hours_ago, two_hours_ago))
    time.sleep(2.1)  # the first token expires (whole seconds, Korean time)
    with SimServer(Simulator(SimConfig(rate_limit=None))) as other:
        asyncio.run(_issue(settings(other, cache)))
    left = {p.name for p in cache.iterdir()}
    assert first.name not in left and broken.name not in left and old_tmp.name not in left
    assert valid.name in left and new_tmp.name in left, "a valid token and a save in progress stay"
    assert len([n for n in left if n.endswith(".json")]) == 2


async def _issue(s: Settings) -> None:
    async with KiwoomClient(s) as kw:
        await kw.ensure_token()


# ----------------------------------------------------------------------------- orders


@pytest.mark.parametrize(
    ("path", "api_id"),
    [("/api/dostk/ordr", "kt10000"), ("/api/dostk/crdordr", "ka10001"), ("/api/dostk/stkinfo", "kt10006")],
    ids=["order-tr-on-its-path", "query-id-on-an-order-path", "order-id-on-a-query-path"],
)
def test_the_auth_refuses_order_requests_itself(
    server: SimServer, tmp_path: Path, path: str, api_id: str
) -> None:
    async def go() -> httpx.Response:
        auth = KiwoomAuth(settings(server, tmp_path / "tokens"))
        async with httpx.AsyncClient(base_url=server.base_url, auth=auth) as http:
            with pytest.raises(OrderRefused, match="never trades"):
                await http.post(path, content=b"{}", headers={"api-id": api_id})
            assert server.sim.stats["au10001"] == 0 and server.sim.stats["requests"] == 0, "nothing was sent"
            assert auth.token is None, "no token was issued for it"
            return await http.post(
                "/api/dostk/stkinfo",
                content=orjson.dumps({"stk_cd": "005930"}),
                headers={"api-id": "ka10001"},
            )

    answer = asyncio.run(go())
    assert answer.status_code == 200 and answer.json()["return_code"] == 0, "queries still carry their token"
