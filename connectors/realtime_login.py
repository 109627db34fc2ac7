"""The LOGIN handshake of the realtime session, and the token it logs in with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from websockets.exceptions import ConnectionClosed

from connectors.auth import KiwoomAuth
from connectors.errors import TOKEN_INVALID, ConnectionFailed, LoginRefused, classify
from connectors.realtime_events import WireSocket, closed_reason, redact

__all__ = ["Drop", "login", "usable_token"]

log = logging.getLogger("connectors.realtime")


class Drop(Exception):
    """This connection is over; ``reason`` goes into the gap. ``handshake``: it ended before the
    LOGIN reply, which the server does to a reconnect it finds too fast."""

    def __init__(self, reason: str, *, handshake: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.handshake = handshake


async def usable_token(auth: KiwoomAuth, http: httpx.AsyncClient, *, force_new: bool) -> tuple[str, bool]:
    """The token to log in with, and whether it was just issued (``force_new``: after an 8005)."""
    if force_new:
        auth.forget()
    token = auth.usable()
    if token is not None:
        return token.value.reveal(), False
    try:
        response = await http.send(auth.token_request(), auth=None)
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"token request failed: {type(exc).__name__}", api_id="au10001") from None
    return auth.accept(response, auth.clock()).value.reveal(), True


async def login(
    sock: WireSocket,
    token: str,
    control: Callable[[str | bytes], Awaitable[dict[str, Any] | None]],
    timeout: float,
) -> LoginRefused | None:
    """Send LOGIN and wait for its reply, every other frame going through ``control`` (PINGs
    are answered, SYSTEM frames acted on). None when logged in; the refusal when it is an 8005
    (the caller issues a new token once); any other refusal raises ``LoginRefused``."""
    frame = orjson.dumps({"trnm": "LOGIN", "token": token})
    log.debug("realtime send %s", redact(frame))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await sock.send(frame.decode())
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            reply = await control(await asyncio.wait_for(sock.recv(), left))
            if reply is None or reply.get("trnm") != "LOGIN":
                continue
            err = classify("LOGIN", reply)
            if err is None:
                return None
            refused = LoginRefused(
                f"LOGIN refused: {err.detail}", api_id="LOGIN", return_code=err.return_code, code=err.code
            )
            if err.code == TOKEN_INVALID:
                return refused
            raise refused
    except ConnectionClosed as exc:
        raise Drop(f"closed during the handshake ({closed_reason(exc)})", handshake=True) from None
    except TimeoutError:
        raise Drop(f"no LOGIN reply within {timeout:g}s") from None
