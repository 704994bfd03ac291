"""The ``/realtime`` and ``/realtimePlatform`` endpoints: refuse a cookie from a foreign page,
accept, authenticate from headers or query string, subscribe from ``?subscribe=``, then read
ops until the client leaves.

A handshake that carries the browser session cookie is refused (HTTP 403, nothing sent) unless
its ``Origin`` is the venue's own (``gateway.sessions`` rule 4: cross-site WebSocket
hijacking); the cookie is kept for the ``authSession`` op, never used unasked.

Every socket, here and on ``/realtimemd`` (``multiplex``), takes one connection from the
client address's ``ConnectionLimiter`` (``admit``); over it, with rate limits on, this
endpoint sends its welcome and a 429 error, then closes with ``CLOSE_TOO_MANY_CONNECTIONS``.

When the endpoint ends, however the socket closed, the session lets go of the connection
within ``session.CLOSE_FRAME_WAIT_S`` (``Session.let_go``)."""

import asyncio
import contextlib
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from perpetua.gateway.ratelimit import BucketTable, address_key
from perpetua.gateway.sessions import cookie_token, origin_allowed
from perpetua.gateway.surface import GatewaySurface
from perpetua.gateway.ws.session import Session
from perpetua.wire.values import JsonRow

__all__ = [
    "CLOSE_TOO_MANY_CONNECTIONS",
    "REASON_TOO_MANY_CONNECTIONS",
    "ConnectionLimiter",
    "admit",
    "serve_realtime",
]

NS_PER_HOUR = 3_600 * 10**9
READ_MESSAGE_BYTES_MAX = 65_536
CLOSE_WAIT_S = 5.0  # for a closing session's writer to send its close frame
CLOSE_TOO_MANY_CONNECTIONS = 1008
REASON_TOO_MANY_CONNECTIONS = "too many connections"
RETRY_AFTER_S = 60  # what the 429 error frame tells a refused client


class ConnectionLimiter:
    """BitMEX allows ``per_hour`` new connections per IP, refilled continuously (an IPv6
    client's budget is its /64's: ``ratelimit.address_key``)."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self.buckets = BucketTable()

    def take(self, ip: str, now_ns: int) -> tuple[bool, int]:
        bucket = self.buckets.get_or_add(address_key(ip), self.per_hour, NS_PER_HOUR, now_ns)
        ok = bucket.take(1, now_ns)
        return ok, bucket.remaining()


def admit(gw: GatewaySurface, limiter: ConnectionLimiter, websocket: WebSocket) -> tuple[bool, int]:
    """One connection from the client address's budget, for any WebSocket endpoint: whether
    the socket may stay (always, with rate limits off) and the connections that remain,
    which each welcome reports."""
    ip = websocket.client.host if websocket.client else "0.0.0.0"
    ok, remaining = limiter.take(ip, time.monotonic_ns())
    return ok or not gw.config.rate_limits.enabled, remaining


async def serve_realtime(
    gw: GatewaySurface, websocket: WebSocket, limiter: ConnectionLimiter, platform: bool = False
) -> None:
    cookie = cookie_token(websocket.scope)
    if cookie:
        public_url = gw.identity.public_url if gw.identity is not None else ""
        if not origin_allowed(websocket.scope, public_url):
            gw.fanout.foreign_origins_refused += 1
            await websocket.close(code=1008)  # before accept: the server answers 403
            return
    await websocket.accept()
    session = Session(gw, websocket, platform)
    session.cookie = cookie
    gw.fanout.sessions.add(session)
    writer = asyncio.create_task(session.writer())
    try:
        admitted, remaining = admit(gw, limiter, websocket)
        session.welcome(remaining)
        if not admitted:
            session.error(
                429,
                f"Rate limit exceeded, retry in {RETRY_AFTER_S} seconds.",
                None,
                {"retryAfter": RETRY_AFTER_S},
            )
            session.close_reason = (CLOSE_TOO_MANY_CONNECTIONS, REASON_TOO_MANY_CONNECTIONS)
            session.closed = True
            session.queue.put_nowait(None)
            await writer
            return
        await _handshake_auth(session, websocket)
        topics = websocket.query_params.get("subscribe")
        if topics:
            request: JsonRow = {"op": "subscribe", "args": topics.split(",")}
            for topic in topics.split(","):
                if topic:
                    session.subscribe(topic.strip(), request)
        await _read_loop(session, websocket)
    except WebSocketDisconnect:
        pass
    finally:
        session.closed = True
        gw.fanout.drop(session)
        if session.close_reason is not None and not writer.done():
            # the session closes itself (too many errors, revoked key, slow consumer): let
            # the writer send what is queued and the close frame, within a bound
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(writer), CLOSE_WAIT_S)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        session.let_go()  # however it closed: a peer that stops reading cannot keep it


async def _handshake_auth(session: Session, websocket: WebSocket) -> None:
    headers = websocket.headers
    query = websocket.query_params
    key = headers.get("api-key") or query.get("api-key")
    expires = headers.get("api-expires") or query.get("api-expires")
    nonce = None if expires else headers.get("api-nonce") or query.get("api-nonce")
    signature = headers.get("api-signature") or query.get("api-signature")
    if key and (expires or nonce) and signature:
        await session.authenticate(
            key,
            expires or nonce or "",
            signature,
            {"op": "authKeyExpires" if expires else "authKey"},
            reply=False,
            nonce=nonce is not None,
        )


async def _read_loop(session: Session, websocket: WebSocket) -> None:
    while not session.closed:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            text = data.decode("utf-8", "replace")
        if len(text) > READ_MESSAGE_BYTES_MAX:
            session.error(400, "Message too large.", None)
            continue
        await session.handle_text(text)
