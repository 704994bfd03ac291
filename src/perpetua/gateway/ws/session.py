"""One WebSocket connection: welcome, ops, heartbeats, auth, subscriptions, bounded sending.

Ordering: a subscribe op enqueues its ack, then the partial, then registers the topic with the
fan-out, all without yielding to the event loop, so no delta of that topic can precede its
partial.

Sending, two ways with the same order and the same bound:

* **raw frames** (served by uvicorn): every outgoing message is one unmasked WebSocket text
  frame written straight to the connection's transport. The fan-out frames each delta once
  and shares the bytes across subscribers; each session's frames of one publish go out in one
  ``write``. A session whose transport buffers more than ``ws_write_buffer_bytes_max`` is closed
  as a slow consumer. Pings, pongs and the close handshake stay with the server's WebSocket
  protocol (docs/decisions.md §9); once that protocol has sent a close frame (answering the
  client's before the session hears of it), no raw frame is written after it;
* **a bounded queue** drained by a writer task through ``send_text`` (other servers, the test
  client, ``/realtimemd`` streams); a session whose queue is full is closed as a slow consumer.
"""

import asyncio
import contextlib
import logging

import msgspec
from starlette.websockets import WebSocketDisconnect

from perpetua.core.commands import CancelAllAfter
from perpetua.gateway.auth import PERMISSION_CANCEL, Principal, verify
from perpetua.gateway.errors import ApiError
from perpetua.gateway.params import decode_json_text
from perpetua.gateway.ports import Overloaded
from perpetua.gateway.sessions import MSG_SESSION_ENDED, principal_of
from perpetua.gateway.surface import GatewaySurface
from perpetua.gateway.ws.fanout import ALL
from perpetua.gateway.ws.frames import SessionSocket, raw_transport, text_frame
from perpetua.gateway.ws.topics import (
    NO_SYMBOL_TABLES,
    PRIVATE_TABLES,
    PUBLIC_TABLES,
    partial_message,
)
from perpetua.wire.values import Json, JsonRow, encode_json, iso_ms, now_ns

__all__ = ["Session", "WELCOME_INFO"]

log = logging.getLogger("perpetua.gateway.ws")
WELCOME_INFO = "Welcome to the BitMEX Realtime API."
API_VERSION = "2020-10-09T21:10:34.000Z"
DOCS_URL = "/app/wsAPI"
CLOSE_SLOW_CONSUMER = 1008
CLOSE_TOO_MANY_ERRORS = 1008
CLOSE_POLICY = 1008
CLOSE_FRAME_WAIT_S = 5.0  # for a close frame to get through a send buffer (``close``)
SIGNED_PATH = "/realtime"
REQUEST_ECHO_CHARS_MAX = 1_000  # of an unparsable message, echoed back in its error frame
# authSession is ours: sign in with the browser session cookie the handshake carried
OPS = [
    "authKey",
    "authKeyExpires",
    "authSession",
    "cancelAllAfter",
    "help",
    "subscribe",
    "unsubscribe",
]
MSG_NO_COOKIE = "No session cookie on this connection: sign in first, or use authKeyExpires"


class Session:
    def __init__(
        self, gw: GatewaySurface, websocket: SessionSocket, platform: bool = False
    ) -> None:
        self.gw = gw
        self.websocket = websocket
        self.platform = platform
        self.raw = raw_transport(websocket)  # possible once the upgrade is answered
        # set by the writer when frames go straight to it
        self.transport: asyncio.WriteTransport | None = None
        self.pending: list[bytes] = []  # frames of the publish in progress (raw transport)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(gw.config.ws_queue_messages_max)
        self.principal: Principal | None = None
        self.cookie = ""  # the session cookie the handshake carried (its Origin was checked)
        self.public_topics: set[tuple[str, str]] = set()
        self.private_topics: set[tuple[str, int]] = set()
        self.private_symbols: dict[str, set[str]] = {}
        self.errors = 0
        self.closed = False
        self.close_reason: tuple[int, str] | None = None
        self.abort_timer: asyncio.TimerHandle | None = None  # set by ``let_go``

    # Sending ------------------------------------------------------------------------------------

    def push(self, message: str) -> None:
        if self.closed:
            return
        if self.transport is not None:
            self.pending.append(text_frame(message.encode()))
            self.flush()
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self._slow(f"send queue exceeded {self.gw.config.ws_queue_messages_max} messages")

    def flush(self) -> None:
        """Write the pending frames in one go (raw transport)."""
        frames, self.pending = self.pending, []
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return
        if self.raw is not None and not self.raw.is_open():
            return  # the protocol has sent its close frame: no data frame may follow
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        limit = self.gw.config.ws_write_buffer_bytes_max
        if transport.get_write_buffer_size() > limit:
            self._slow(f"send buffer exceeded {limit} bytes")

    def _slow(self, what: str) -> None:
        self.gw.fanout.drop(self)
        self.gw.fanout.slow_consumers_dropped += 1
        self.closed = True
        self.close_reason = (CLOSE_SLOW_CONSUMER, f"slow consumer: {what}")
        self._wake_writer()

    def _wake_writer(self) -> None:
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # discard: the session is closing anyway

    def send_json(self, value: Json) -> None:
        self.push(encode_json(value).decode())

    def error(self, status: int, message: str, request: Json, meta: JsonRow | None = None) -> None:
        self.errors += 1
        self.send_json({"status": status, "error": message, "meta": meta or {}, "request": request})
        if self.errors > self.gw.config.ws_errors_max:
            self.closed = True
            self.close_reason = (CLOSE_TOO_MANY_ERRORS, "too many errors")
            self._wake_writer()

    async def writer(self) -> None:
        if self.raw is not None and self._go_raw():
            while await self.queue.get() is not None:  # raw: the queue only signals closing
                pass
        else:
            send = self.websocket.send_text
            while True:
                message = await self.queue.get()
                if message is None:
                    break
                await send(message)
        if self.close_reason is not None:
            code, reason = self.close_reason
            await self.close(code, reason)

    def _go_raw(self) -> bool:
        """Send what is queued as frames and switch to raw writes, with no await in between
        (so order holds). The session starts after ``accept``, which has answered the
        upgrade: the protocol is open unless the client already left or closed."""
        assert self.raw is not None
        transport, is_open = self.raw.transport, self.raw.is_open
        if transport.is_closing() or not is_open():
            return False
        frames: list[bytes] = []
        closing = False
        while not self.queue.empty():
            message = self.queue.get_nowait()
            if message is None:
                closing = True
                break
            frames.append(text_frame(message.encode()))
        if frames:
            transport.write(b"".join(frames))
        if closing:
            self.queue.put_nowait(None)
        self.transport = transport
        return True

    async def close(self, code: int, reason: str) -> None:
        """The close frame through the server's protocol, within ``CLOSE_FRAME_WAIT_S``, and
        the connection let go (``let_go``). uvicorn's protocol sends nothing while the
        transport is paused (buffer above its high-water mark), and closes it only once the
        buffer drains: a consumer cut for reading nothing would hold its connection and
        buffer for as long as it likes."""
        self.closed = True
        self.gw.fanout.drop(self)
        self.let_go()
        with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect, OSError):
            async with asyncio.timeout(CLOSE_FRAME_WAIT_S):
                await self.websocket.close(code, reason)

    def let_go(self) -> None:
        """The closing handshake, whichever side began it, gets ``CLOSE_FRAME_WAIT_S``; then a
        raw session's transport is aborted, dropping what it buffers, if the connection is
        still there. Called when the session closes itself, and when the endpoint ends (the
        client's close frame or disconnect): a client that sends a close frame and then never
        reads again would otherwise keep its buffer, since uvicorn answers that close and
        waits for a drain. Once per session."""
        if self.raw is not None and self.abort_timer is None:
            self.abort_timer = self.raw.abort_after(CLOSE_FRAME_WAIT_S)

    # Handshake ----------------------------------------------------------------------------------

    def welcome(self, remaining: int) -> None:
        self.send_json(
            {
                "info": WELCOME_INFO,
                "version": API_VERSION,
                "timestamp": iso_ms(now_ns()),
                "docs": DOCS_URL,
                "limit": {"remaining": remaining},
            }
        )

    @property
    def client_ip(self) -> str:
        client = self.websocket.client
        return client.host if client else "0.0.0.0"

    async def authenticate(
        self,
        key_id: str,
        expires: str,
        signature: str,
        request: Json,
        reply: bool,
        nonce: bool = False,
    ) -> bool:
        """Sign in with the REST pipeline's rules (``auth.verify``: expiry or an increasing
        nonce, constant-time signature, enabled key and user, CIDR) and its failure limit."""
        if self.principal is not None:
            self.error(400, "Already authenticated.", request)
            return False
        ip = self.client_ip
        try:
            self.gw.auth_failures.check(ip)
            try:
                principal = await verify(
                    self.gw.keys,
                    key_id,
                    str(expires),
                    str(signature),
                    ("GET", SIGNED_PATH, b""),
                    ip,
                    self.gw.nonces if nonce else None,
                )
            except ApiError:
                self.gw.auth_failures.record(ip)
                raise
        except ApiError as exc:
            self.error(exc.status, exc.message, request)
            return False
        if self.closed:  # closed while the key was looked up
            return False
        self.principal = principal
        if reply:
            self.send_json({"success": True, "request": request})
        return True

    async def authenticate_session(self, request: Json) -> bool:
        """Sign in with the handshake's session cookie, by the REST pipeline's session rules
        (``IdentityPort.session``: idle and absolute timeouts, revocation, enabled account)."""
        if self.principal is not None:
            self.error(400, "Already authenticated.", request)
            return False
        identity = self.gw.identity
        if not self.cookie or identity is None:
            self.error(401, MSG_NO_COOKIE, request)
            return False
        found = await identity.session(self.cookie)
        if found is None:
            self.error(401, MSG_SESSION_ENDED, request)
            return False
        if self.closed:
            return False
        self.principal = principal_of(found)
        self.send_json({"success": True, "request": request})
        return True

    def revoke(self, refusal: ApiError) -> None:
        """The key was disabled (or its rules no longer admit this address), or the browser
        session ended: an error frame, then the close frame, and no further private data."""
        self.gw.fanout.drop(self)
        self.send_json(
            {"status": refusal.status, "error": refusal.message, "meta": {}, "request": None}
        )
        self.closed = True
        self.close_reason = (CLOSE_POLICY, refusal.message)
        self._wake_writer()

    # Ops ----------------------------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        if text == "ping":
            self.push("pong")
            return
        try:
            message = decode_json_text(text)
        except msgspec.DecodeError:
            self.error(
                400, "Unable to parse request: expected JSON.", text[:REQUEST_ECHO_CHARS_MAX]
            )
            return
        except ApiError as exc:  # nested too deep: refused before decoding
            self.error(
                400, f"Unable to parse request: {exc.message}.", text[:REQUEST_ECHO_CHARS_MAX]
            )
            return
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            self.error(400, "Unknown or missing op.", message)
            return
        await self.handle_op(message["op"], message.get("args"), message)

    async def handle_op(self, op: str, args: Json, request: JsonRow) -> None:
        arg_list = args if isinstance(args, list) else ([] if args is None else [args])
        if op == "subscribe":
            for topic in arg_list:
                self.subscribe(str(topic), request)
        elif op == "unsubscribe":
            for topic in arg_list:
                self.unsubscribe(str(topic), request)
        elif op in ("authKeyExpires", "authKey"):
            if len(arg_list) != 3:
                self.error(400, f"{op} takes [apiKey, expires, signature].", request)
                return
            await self.authenticate(
                str(arg_list[0]),
                str(arg_list[1]),
                str(arg_list[2]),
                request,
                reply=True,
                nonce=op == "authKey",
            )
        elif op == "authSession":
            await self.authenticate_session(request)
        elif op == "cancelAllAfter":
            await self.cancel_all_after(arg_list, request)
        elif op == "help":
            from perpetua.gateway.routes.schema import websocket_help

            self.send_json(websocket_help())
        else:
            self.error(400, f"Unknown op: {op}", request)

    async def cancel_all_after(self, args: list[Json], request: JsonRow) -> None:
        if self.principal is None:
            self.error(401, "You must be authenticated to use cancelAllAfter.", request)
            return
        perms = self.principal.key.permissions
        if PERMISSION_CANCEL not in perms and "order" not in perms:
            self.error(403, "Access Denied", request)
            return
        timeout = args[0] if args else None
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            self.error(400, "cancelAllAfter takes a timeout in ms (0 disarms).", request)
            return
        try:
            result = await self.gw.submit_unshed(CancelAllAfter(0, self.principal.account, timeout))
        except (ApiError, Overloaded):
            self.error(503, "The system is currently overloaded. Please try again later.", request)
            return
        ts = result.ts_ns
        self.send_json(
            {
                "now": iso_ms(ts),
                "cancelTime": iso_ms(ts + timeout * 1_000_000) if timeout else 0,
                "request": request,
            }
        )

    def _parse_topic(self, topic: str) -> tuple[str, str | None] | None:
        table, _, symbol_text = topic.partition(":")
        if not symbol_text:
            return table, None
        symbol = self.gw.symbols.one(symbol_text)
        return (table, symbol) if symbol is not None else None

    def subscribe(self, topic: str, request: JsonRow) -> None:
        table = topic.partition(":")[0]
        if table not in PUBLIC_TABLES and table not in PRIVATE_TABLES:
            self.error(400, f"Unknown table: {table}", request)
            return
        parsed = self._parse_topic(topic)
        if parsed is None or (parsed[1] is not None and table in NO_SYMBOL_TABLES):
            self.error(400, f"Unknown or expired symbol: {topic}", request)
            return
        _, symbol = parsed
        private = table in PRIVATE_TABLES
        if private and self.principal is None:
            self.error(
                401,
                f"You are not authenticated. Subscribing to '{table}' requires an API key.",
                request,
            )
            return
        if len(self.public_topics) + len(self.private_topics) >= (
            self.gw.config.ws_subscriptions_max
        ):
            self.error(400, "Too many subscriptions.", request)
            return
        if self._subscribed(table, symbol):
            self.error(400, f"You are already subscribed to this topic: {topic}", request)
            return
        self.send_json({"success": True, "subscribe": topic, "request": request})
        account = self.principal.account if private and self.principal else None
        self.push(partial_message(self.gw, table, symbol, account))
        if private and account is not None:
            self.private_topics.add((table, account))
            self.private_symbols.setdefault(table, set()).add(symbol or ALL)
            self.gw.fanout.add_private(self, table, account)
        else:
            self.public_topics.add((table, symbol or ALL))
            self.gw.fanout.add_public(self, table, symbol or ALL)

    def _subscribed(self, table: str, symbol: str | None) -> bool:
        if table in PRIVATE_TABLES and self.principal is not None:
            return (symbol or ALL) in self.private_symbols.get(table, set())
        return (table, symbol or ALL) in self.public_topics

    def unsubscribe(self, topic: str, request: JsonRow) -> None:
        parsed = self._parse_topic(topic)
        table = topic.partition(":")[0]
        if parsed is None or not self._subscribed(table, parsed[1]):
            self.error(400, f"You weren't subscribed to {topic}.", request)
            return
        symbol = parsed[1] or ALL
        if table in PRIVATE_TABLES and self.principal is not None:
            symbols = self.private_symbols.get(table, set())
            symbols.discard(symbol)
            if not symbols:
                self.private_topics.discard((table, self.principal.account))
                self.gw.fanout.remove_private(self, table, self.principal.account)
        else:
            self.public_topics.discard((table, symbol))
            self.gw.fanout.remove_public(self, table, symbol)
        self.send_json({"success": True, "unsubscribe": topic, "request": request})

    def wants_private(self, table: str, symbol: str) -> bool:
        symbols = self.private_symbols.get(table)
        return symbols is not None and (ALL in symbols or symbol in symbols)
