"""``/realtimemd``: several logical streams on one socket (reference §6.6).

Frames are JSON arrays ``[type, id, topic, payload?]``: 1 opens stream ``id``, 2 closes it,
0 carries a message. Each stream is a full ``Session`` whose outgoing messages are wrapped as
``[0, id, topic, message]`` on the shared socket.
"""

import asyncio
import contextlib
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from perpetua.gateway.errors import ApiError
from perpetua.gateway.params import decode_json_text
from perpetua.gateway.surface import GatewaySurface
from perpetua.gateway.ws.session import Session
from perpetua.wire.values import encode_json

__all__ = ["serve_multiplexed"]

STREAMS_PER_SOCKET_MAX = 20
FRAME_CHARS_MAX = 65_536
OPEN, CLOSE, MESSAGE = 1, 2, 0


class _Wrapped:
    """The socket as one stream sees it: every text frame is wrapped in the stream's header."""

    def __init__(self, shared: WebSocket, stream_id: str, topic: str) -> None:
        self.shared = shared
        self.header = encode_json([MESSAGE, stream_id, topic]).decode()[:-1]
        self.client = shared.client
        self.headers = shared.headers
        self.query_params = shared.query_params

    async def send_text(self, data: str) -> None:
        body = data if data[:1] in "{[" else encode_json(data).decode()
        await self.shared.send_text(f"{self.header},{body}]")

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        return None


async def serve_multiplexed(gw: GatewaySurface, websocket: WebSocket) -> None:
    await websocket.accept()
    streams: dict[str, tuple[Session, asyncio.Task[None]]] = {}
    try:
        while True:
            text = await websocket.receive_text()
            if len(text) > FRAME_CHARS_MAX:  # as /realtime's message bound
                continue
            try:
                frame = decode_json_text(text)
            except (msgspec.DecodeError, ApiError):  # not a frame (or nested too deep)
                continue
            if not isinstance(frame, list) or len(frame) < 3:
                continue
            await _handle(gw, websocket, streams, frame)
    except WebSocketDisconnect:
        pass
    finally:
        for session, task in streams.values():
            session.closed = True
            gw.fanout.drop(session)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _handle(
    gw: GatewaySurface,
    websocket: WebSocket,
    streams: dict[str, tuple[Session, asyncio.Task[None]]],
    frame: list[Any],
) -> None:
    kind, stream_id, topic = frame[0], str(frame[1]), str(frame[2])
    if kind == OPEN and stream_id not in streams and len(streams) < STREAMS_PER_SOCKET_MAX:
        session = Session(gw, _Wrapped(websocket, stream_id, topic))
        gw.fanout.sessions.add(session)
        streams[stream_id] = (session, asyncio.create_task(session.writer()))
        session.welcome(gw.config.ws_connections_per_hour)
    elif kind == CLOSE and stream_id in streams:
        session, task = streams.pop(stream_id)
        session.closed = True
        gw.fanout.drop(session)
        task.cancel()
    elif kind == MESSAGE and stream_id in streams and len(frame) > 3:
        payload = frame[3]
        text = payload if isinstance(payload, str) else encode_json(payload).decode()
        await streams[stream_id][0].handle_text(text)
