"""``/realtimemd``: several logical streams on one socket (reference §6.6).

Frames are JSON arrays ``[type, id, topic, payload?]``: 1 opens stream ``id``, 2 closes it,
0 carries a message. Each stream is a full ``Session`` whose outgoing messages are wrapped as
``[0, id, topic, message]`` on the shared socket.

The socket, not each stream, takes one connection from the client address's budget, the
limiter ``/realtime`` and ``/realtimePlatform`` share (``endpoint.admit``), before it reads a
frame. Over the budget, with rate limits on, it is closed at once with
``CLOSE_TOO_MANY_CONNECTIONS`` and ``REASON_TOO_MANY_CONNECTIONS``: no stream exists yet to
carry a 429 error frame. Each stream's welcome reports what remained when the socket took its
connection.

Sending: each stream's bounded queue is drained through the socket's ASGI ``send``. Under the
served uvicorn that ``send`` waits, with no limit, while the transport buffers more than its
high-water mark, so a peer that reads nothing would keep its connection, buffer and queues
for as long as it keeps the connection open. A send that waits ``SEND_WAIT_S`` cuts the
socket as a slow consumer: every stream leaves the fan-out, and the close frame gets
``CLOSE_FRAME_WAIT_S``, after which the transport is aborted, dropping its buffer
(decisions §34). The same bound holds when the socket ends otherwise (the client's close
frame, or the refusal): uvicorn answers a client's close and waits for the buffer to drain,
which a peer that never reads again would never let happen.
"""

import asyncio
import contextlib
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from perpetua.gateway.errors import ApiError
from perpetua.gateway.params import decode_json_text
from perpetua.gateway.surface import GatewaySurface
from perpetua.gateway.ws.endpoint import (
    CLOSE_TOO_MANY_CONNECTIONS,
    REASON_TOO_MANY_CONNECTIONS,
    ConnectionLimiter,
    admit,
)
from perpetua.gateway.ws.frames import raw_transport
from perpetua.gateway.ws.session import CLOSE_FRAME_WAIT_S, CLOSE_SLOW_CONSUMER, Session
from perpetua.wire.values import encode_json

__all__ = ["SEND_WAIT_S", "serve_multiplexed"]

STREAMS_PER_SOCKET_MAX = 20
FRAME_CHARS_MAX = 65_536
SEND_WAIT_S = 5.0  # for one message to get into the transport; longer: cut (``_Socket``)
OPEN, CLOSE, MESSAGE = 1, 2, 0


class _Socket:
    """The shared socket and its streams; cut once as a slow consumer."""

    def __init__(self, gw: GatewaySurface, websocket: WebSocket, remaining: int) -> None:
        self.gw = gw
        self.websocket = websocket
        self.remaining = remaining  # connections left to the client address (``admit``)
        self.streams: dict[str, tuple[Session, asyncio.Task[None]]] = {}
        self.cut = False
        self.raw = raw_transport(websocket)
        self.abort_timer: asyncio.TimerHandle | None = None  # set by ``let_go``

    def let_go(self) -> None:
        """The close frame, either side's, gets ``CLOSE_FRAME_WAIT_S``; then the transport is
        aborted (its buffer dropped) if the connection is still there. Once per socket."""
        if self.raw is not None and self.abort_timer is None:
            self.abort_timer = self.raw.abort_after(CLOSE_FRAME_WAIT_S)

    async def close(self, code: int, reason: str) -> None:
        """The close frame, within ``CLOSE_FRAME_WAIT_S``, and the connection let go."""
        self.let_go()
        with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect, OSError):
            async with asyncio.timeout(CLOSE_FRAME_WAIT_S):
                await self.websocket.close(code, reason)

    async def send_text(self, text: str) -> None:
        if self.cut:
            return
        try:
            async with asyncio.timeout(SEND_WAIT_S):
                await self.websocket.send_text(text)
        except TimeoutError:
            await self._cut()

    async def _cut(self) -> None:
        """Every stream leaves the fan-out; the close frame gets ``CLOSE_FRAME_WAIT_S``, and
        then the transport is aborted (its buffer dropped) whatever became of the close. The
        abort is a timer (``let_go``), not a step after the close, so that cancelling this
        (the streams' tasks are cancelled when the client's close frame arrives) cannot keep
        the connection: uvicorn closes a transport only once its buffer has drained."""
        if self.cut:
            return
        self.cut = True
        fanout = self.gw.fanout
        for session, _task in self.streams.values():
            if not session.closed:  # else closed already (its queue overflowed, say)
                fanout.slow_consumers_dropped += 1
            session.closed = True
            fanout.drop(session)
        await self.close(
            CLOSE_SLOW_CONSUMER, f"slow consumer: a send waited over {SEND_WAIT_S:g} s"
        )


class _Wrapped:
    """The socket as one stream sees it: every text frame is wrapped in the stream's header."""

    def __init__(self, socket: _Socket, stream_id: str, topic: str) -> None:
        self.socket = socket
        self.header = encode_json([MESSAGE, stream_id, topic]).decode()[:-1]
        self.client = socket.websocket.client
        self.headers = socket.websocket.headers
        self.query_params = socket.websocket.query_params

    async def send_text(self, data: str) -> None:
        body = data if data[:1] in "{[" else encode_json(data).decode()
        await self.socket.send_text(f"{self.header},{body}]")

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        return None


async def serve_multiplexed(
    gw: GatewaySurface, websocket: WebSocket, limiter: ConnectionLimiter
) -> None:
    await websocket.accept()
    admitted, remaining = admit(gw, limiter, websocket)
    socket = _Socket(gw, websocket, remaining)
    try:
        if not admitted:
            await socket.close(CLOSE_TOO_MANY_CONNECTIONS, REASON_TOO_MANY_CONNECTIONS)
            return
        while not socket.cut:  # once cut, Starlette refuses to receive
            text = await websocket.receive_text()
            if len(text) > FRAME_CHARS_MAX:  # as /realtime's message bound
                continue
            try:
                frame = decode_json_text(text)
            except (msgspec.DecodeError, ApiError):  # not a frame (or nested too deep)
                continue
            if not isinstance(frame, list) or len(frame) < 3:
                continue
            await _handle(socket, frame)
    except WebSocketDisconnect:
        pass
    finally:
        for session, task in socket.streams.values():
            session.closed = True
            gw.fanout.drop(session)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        socket.let_go()  # however it closed: a peer that stops reading cannot keep it


async def _handle(socket: _Socket, frame: list[Any]) -> None:
    gw, streams = socket.gw, socket.streams
    kind, stream_id, topic = frame[0], str(frame[1]), str(frame[2])
    if kind == OPEN and stream_id not in streams and len(streams) < STREAMS_PER_SOCKET_MAX:
        session = Session(gw, _Wrapped(socket, stream_id, topic))
        gw.fanout.sessions.add(session)
        streams[stream_id] = (session, asyncio.create_task(session.writer()))
        session.welcome(socket.remaining)
    elif kind == CLOSE and stream_id in streams:
        session, task = streams.pop(stream_id)
        session.closed = True
        gw.fanout.drop(session)
        task.cancel()
    elif kind == MESSAGE and stream_id in streams and len(frame) > 3:
        payload = frame[3]
        text = payload if isinstance(payload, str) else encode_json(payload).decode()
        await streams[stream_id][0].handle_text(text)
