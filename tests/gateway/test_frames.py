"""Raw WebSocket frames: the three length encodings, and a session whose transport buffers
too much is closed as a slow consumer."""

import asyncio
import json
from typing import Any

import websockets

from perpetua.gateway.ws.frames import RawTransport, text_frame
from perpetua.gateway.ws.session import Session
from tests.gateway.harness import harness
from tests.gateway.live import live_gateway


def _parse(frame: bytes) -> bytes:
    assert frame[0] == 0x81  # FIN, text
    length = frame[1]
    assert not length & 0x80  # server frames are not masked
    if length == 126:
        return frame[4 : 4 + int.from_bytes(frame[2:4], "big")]
    if length == 127:
        return frame[10 : 10 + int.from_bytes(frame[2:10], "big")]
    return frame[2 : 2 + length]


def test_text_frames_of_every_length_class() -> None:
    for size in (0, 125, 126, 65_535, 65_536, 200_000):
        payload = b"x" * size
        frame = text_frame(payload)
        assert _parse(frame) == payload
        assert len(frame) == size + (2 if size < 126 else 4 if size < 65_536 else 10)


class FakeTransport:
    def __init__(self, buffered: int) -> None:
        self.written: list[bytes] = []
        self.buffered = buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered


class FakeWebSocket:
    """Not uvicorn's: ``raw_transport`` finds no transport under it, as under any other server."""

    async def send(self, message: Any) -> None:
        return None


def _session(h: Any, transport: FakeTransport) -> Session:
    session = Session(h.gateway, FakeWebSocket())  # type: ignore[arg-type]
    assert session.raw is None
    done = asyncio.Event()
    done.set()
    session.raw = RawTransport(transport, done)  # type: ignore[arg-type]
    return session


def _raw_session(h: Any, transport: FakeTransport) -> Session:
    session = _session(h, transport)
    session.transport = transport  # type: ignore[assignment]  # as the writer, once upgraded
    return session


def test_queued_messages_go_first_then_raw_frames() -> None:
    with harness() as h:
        transport = FakeTransport(0)
        session = _session(h, transport)
        session.push("welcome")  # before the switch: queued
        assert transport.written == []
        assert h.client.portal.call(session._go_raw) is True
        session.push("delta")
        assert transport.written == [text_frame(b"welcome"), text_frame(b"delta")]


def test_raw_sessions_write_frames_and_drop_slow_consumers() -> None:
    with harness() as h:
        fast = FakeTransport(0)
        session = _raw_session(h, fast)
        session.push('{"a":1}')
        assert fast.written == [text_frame(b'{"a":1}')]
        slow = FakeTransport(h.gateway.config.ws_write_buffer_bytes_max + 1)
        lagging = _raw_session(h, slow)
        lagging.push("x")
        assert lagging.closed and "slow consumer" in lagging.close_reason[1]
        lagging.push("y")
        assert len(slow.written) == 1  # nothing more once closed


def test_under_the_served_uvicorn_sessions_write_frames_themselves() -> None:
    """The one adapter (``frames.raw_transport``) finds the transport under the server
    ``perpetua run`` starts, and the session switches to raw frames after the upgrade."""

    async def main() -> None:
        async with (
            live_gateway() as live,
            websockets.connect(live.ws_base + "/realtime") as ws,
        ):
            await ws.recv()  # welcome: sent once the upgrade was answered
            await ws.send(json.dumps({"op": "subscribe", "args": ["instrument:XBTUSD"]}))
            assert json.loads(await ws.recv())["success"] is True
            assert json.loads(await ws.recv())["action"] == "partial"
            sessions = list(live.gateway.fanout.sessions)
            assert len(sessions) == 1
            assert sessions[0].raw is not None and sessions[0].transport is not None
            assert sessions[0].raw.is_open()  # uvicorn's protocol state, OPEN until a close frame

    asyncio.run(main())


def test_no_raw_frame_once_the_protocol_has_sent_its_close_frame() -> None:
    """The client closes: the server's protocol answers with its close frame (state CLOSING)
    before the session hears of the disconnect; a delta published in between must not follow
    the close frame on the wire."""
    with harness() as h:
        transport = FakeTransport(0)
        state = ["OPEN"]
        session = Session(h.gateway, FakeWebSocket())  # type: ignore[arg-type]
        done = asyncio.Event()
        done.set()
        session.raw = RawTransport(transport, done, lambda: state[0] == "OPEN")  # type: ignore[arg-type]
        session.transport = transport  # type: ignore[assignment]
        session.push("before")
        state[0] = "CLOSING"
        session.push("after")
        assert transport.written == [text_frame(b"before")]
        assert not session.closed  # the receive loop closes it when the disconnect arrives
