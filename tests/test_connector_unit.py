"""Connector pieces without a server: classification, settings, secrets, the limiter, the token cache."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from connectors import (
    ApiError,
    AuthError,
    ConfigError,
    InvalidRequest,
    MalformedResponse,
    OrderRefused,
    RateLimited,
    RateLimiter,
    RateLimits,
    RequestRefused,
    Secret,
    ServerError,
    Settings,
    Token,
    TokenCache,
    UnknownApi,
    UnknownSymbol,
    check_query_tr,
    classify,
)
from connectors.auth import KST
from connectors.ratelimit import CALM


@pytest.mark.parametrize(
    ("body", "status", "expected", "code"),
    [
        ({"return_code": 0, "return_msg": "정상"}, 200, None, None),
        (
            {"return_code": 3, "return_msg": "인증에 실패했습니다[8005:Token이 유효하지 않습니다]"},
            200,
            AuthError,
            8005,
        ),
        (
            {"return_code": 5, "return_msg": "요청 제한[1700:허용된 요청 개수를 초과하였습니다]"},
            200,
            RateLimited,
            1700,
        ),
        ({"return_code": 5, "return_msg": "x[1701:total]"}, 200, RateLimited, 1701),
        ({"return_code": 5, "return_msg": "x CODE=1702 group"}, 200, RateLimited, 1702),
        # the trap: 1634 reads like the rate-limit message but is permanent
        (
            {"return_code": 5, "return_msg": "허용된 요청 개수를 초과하였습니다[1634:종목 100개 초과]"},
            200,
            InvalidRequest,
            1634,
        ),
        (
            {"return_code": 2, "return_msg": "입력[1511:필수 입력 값에 값이 존재하지 않습니다 stk_cd]"},
            200,
            InvalidRequest,
            1511,
        ),
        ({"return_code": 2, "return_msg": "[1517:형식]"}, 200, InvalidRequest, 1517),
        ({"return_code": 1902, "return_msg": "종목 정보가 없습니다"}, 200, UnknownSymbol, 1902),
        ({"return_code": 2, "return_msg": "[1505:API ID 없음]"}, 200, UnknownApi, 1505),
        ({"return_code": 2, "return_msg": "[1504:URI]"}, 200, UnknownApi, 1504),
        ({"return_code": 2, "return_msg": "[8030:실전/모의]"}, 200, AuthError, 8030),
        ({"return_code": 7, "return_msg": "알 수 없는 오류"}, 200, ApiError, None),
        ({"return_code": 2, "return_msg": "[1999:예기치 못한 에러]"}, 200, ServerError, 1999),
        ({"return_code": "x", "return_msg": ""}, 200, MalformedResponse, None),
        ({"return_msg": "busy"}, 429, RateLimited, None),
        ({"return_msg": "down"}, 503, ServerError, None),
    ],
)
def test_classify_embedded_code_first(body, status, expected, code):
    err = classify("ka10081", body, status)
    if expected is None:
        assert err is None
        return
    assert type(err) is expected
    assert err.code == code
    assert err.api_id == "ka10081"
    assert "ka10081" in str(err)


def test_retryable_classes():
    assert RateLimited("x").retryable and ServerError("x").retryable and MalformedResponse("x").retryable
    assert not InvalidRequest("x").retryable and not AuthError("x").retryable and not ApiError("x").retryable


def test_order_and_unknown_trs_refused_before_sending():
    with pytest.raises(OrderRefused, match="kt10000"):
        check_query_tr("kt10000")
    with pytest.raises(RequestRefused, match="unknown TR 'ka99999'"):
        check_query_tr("ka99999")
    with pytest.raises(RequestRefused, match="not a REST query TR"):
        check_query_tr("au10001")
    assert check_query_tr("ka10081") == "/api/dostk/chart"


def test_secret_never_shows():
    s = Secret("my-app-key-123")
    assert "my-app-key" not in repr(s) and "my-app-key" not in str(s) and "my-app-key" not in f"{s}"
    settings = Settings.load(app_key="my-app-key-123", secret_key="my-secret-456", host="paper", env={})
    text = repr(settings) + str(settings)
    assert "my-app-key" not in text and "my-secret" not in text
    assert settings.base_url == "https://mockapi.kiwoom.com"
    assert settings.limits.total == 1.0  # paper trading: 1 query per second


def test_settings_sources_and_errors(tmp_path):
    with pytest.raises(ConfigError, match="KIWOOM_APP_KEY and KIWOOM_SECRET_KEY must be set"):
        Settings.load(host="prod", env={}, env_file=None)
    with pytest.raises(ConfigError, match="unknown host 'staging'"):
        Settings.load(host="staging", env={})
    with pytest.raises(ConfigError, match="not an http"):
        Settings.load(base_url="ftp://x", env={})
    env_file = tmp_path / ".env"
    env_file.write_text("KIWOOM_APP_KEY=from-file\nKIWOOM_SECRET_KEY=file-secret\nKIWOOM_HOST=prod\n")
    s = Settings.load(env={"KIWOOM_SECRET_KEY": "env-secret"}, env_file=env_file)
    assert s.app_key.reveal() == "from-file" and s.secret_key.reveal() == "env-secret"
    assert s.base_url == "https://api.kiwoom.com" and s.limits.total == 5.0
    s = Settings.load(base_url="http://127.0.0.1:8123/", env={"KIWOOM_RATE": "2.5"}, env_file=None)
    assert s.host == "custom" and s.base_url == "http://127.0.0.1:8123" and s.limits.total == 2.5
    with pytest.raises(ConfigError, match="KIWOOM_RATE"):
        Settings.load(base_url="http://x", env={"KIWOOM_RATE": "fast"}, env_file=None)


def test_token_cache_is_private_and_round_trips(tmp_path):
    cache = TokenCache(tmp_path / "cache", "https://api.kiwoom.com", Secret("app"))
    now = datetime(2026, 1, 2, 9, 0, tzinfo=KST)
    token = Token(Secret("tok-abc"), now + timedelta(hours=20), now)
    cache.save(token)
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert "app" not in cache.path.name  # named by fingerprint, not by key
    loaded = cache.load()
    assert loaded is not None and loaded.value == token.value and loaded.expires == token.expires
    assert "tok-abc" not in repr(loaded)
    cache.clear()
    assert cache.load() is None


def test_expires_dt_is_korean_time():
    issued = datetime(2026, 1, 1, 0, 0, tzinfo=KST)
    token = Token.from_body({"token": "t", "expires_dt": "20260102083000"}, issued)
    # 08:30 in Seoul is 23:30 UTC the day before; read as UTC it would live nine hours too long
    assert token.expires == datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    # refresh ahead: at most a tenth of the lifetime before expiry
    assert token.refresh_at(timedelta(minutes=10)) == token.expires - timedelta(minutes=10)
    short = Token(Secret("t"), issued + timedelta(seconds=20), issued)
    assert short.refresh_at(timedelta(minutes=10)) == short.expires - timedelta(seconds=2)
    with pytest.raises(MalformedResponse, match="expires_dt"):
        Token.from_body({"token": "t", "expires_dt": "2026-01-02"}, issued)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _reserve(limiter: RateLimiter, api_id: str, n: int) -> list[float]:
    return [limiter.reserve(api_id) for _ in range(n)]


def test_limiter_spaces_requests_under_every_tier():
    clock = FakeClock()
    limits = RateLimits(total=5.0, per_api={"ka10081": 1.0}, margin=0.0)
    limiter = RateLimiter(limits, clock=clock)
    assert _reserve(limiter, "ka10080", 3) == pytest.approx([0.0, 0.2, 0.4])
    # ka10081 also obeys its own tier of one per second
    assert _reserve(limiter, "ka10081", 2) == pytest.approx([0.6, 1.6])


def test_a_request_sent_late_holds_back_the_one_the_servers_window_would_count_with_it():
    """The server counts when requests really arrive: one that went late (a busy event loop) must not
    let a later one in less than a second after it, whatever the calendar booked."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(total=5.0, per_api={"ka10081": 1.0}, margin=0.0), clock=clock)
    booked = _reserve(limiter, "ka10080", 6)
    assert booked == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    for at in (0.1, 0.2, 0.4, 0.6, 0.8):  # the first went 0.1 s late, the others on time
        clock.t = at
        assert limiter.confirm("ka10080") is None  # sent
    clock.t = 1.0  # the sixth's slot: five went in the last 0.9 s, so it waits for 1.1
    assert limiter.confirm("ka10080") == pytest.approx(1.1)
    clock.t = 1.1
    assert limiter.confirm("ka10080") is None
    # a TR's own tier the same: its first request went late, its second waits a second after it
    clock.t = 5.0
    assert limiter.reserve("ka10081") == pytest.approx(5.0)
    clock.t = 5.3
    assert limiter.confirm("ka10081") is None
    assert limiter.reserve("ka10081") == pytest.approx(6.0)
    clock.t = 6.0
    assert limiter.confirm("ka10081") == pytest.approx(6.3)


def test_limiter_slows_after_rejection_and_recovers():
    limiter = RateLimiter(RateLimits(total=5.0))
    limiter.rejected("ka10081", "total")  # a stray one (jitter): the rate stays
    assert limiter.rates()["total"] == pytest.approx(5.0)
    for _ in range(CALM - 1):
        limiter.succeeded("ka10081")
    limiter.rejected("ka10081", "total")  # a second one soon after: a lower limit than ours
    assert limiter.rates()["total"] == pytest.approx(4.0)
    limiter.rejected("ka10081", "total")
    assert limiter.rates()["total"] == pytest.approx(3.2)
    for _ in range(300):
        limiter.succeeded("ka10081")
    assert limiter.rates()["total"] == pytest.approx(5.0)
    limiter.rejected("ka10081", "total")  # calm again: stray
    assert limiter.rates()["total"] == pytest.approx(5.0)
    # per-TR rejections teach the limiter a per-TR tier, slowed from the second on
    limiter.rejected("ka10080", "api")
    limiter.rejected("ka10080", "api")
    assert limiter.rates()["ka10080"] == pytest.approx(4.0)
    assert limiter.rejections == 6


def test_limiter_waits_in_real_time():
    limiter = RateLimiter(RateLimits(total=20.0, margin=0.0))

    async def run() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(*(limiter.acquire("ka10081") for _ in range(5)))
        return loop.time() - t0

    elapsed = asyncio.run(run())
    assert elapsed >= 0.19  # 5 requests at 20/s: the fifth starts 0.2 s after the first
