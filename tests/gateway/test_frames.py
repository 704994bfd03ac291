"""Raw WebSocket frames: the three length encodings, and a session whose transport buffers
too much is closed as a slow consumer; a queued one dropped in the middle of a publish leaves
the others their deltas. Under the served uvicorn (its ``websockets-sansio`` protocol, which
starts without a deprecation warning): sessions write frames themselves, pings, the message
bound and closing stay with the protocol, and a subscriber that reads nothing is let go, on
``/realtime`` and on ``/realtimemd``, as is one that sends its close frame and then never reads
again."""

import asyncio
import contextlib
import gc
import json
import socket
import subprocess
import sys
import textwrap
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from perpetua.gateway.private import PrivateDelta
from perpetua.gateway.server import WS_MESSAGE_BYTES_MAX
from perpetua.gateway.ws.frames import RawTransport, raw_transport, text_frame
from perpetua.gateway.ws.multiplex import SEND_WAIT_S
from perpetua.gateway.ws.session import CLOSE_FRAME_WAIT_S, Session
from perpetua.marketdata.deltas import Delta
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
    session.raw = RawTransport(transport, lambda: True, lambda: False)  # type: ignore[arg-type]
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
        assert session._go_raw() is True
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


def test_a_subscriber_dropped_during_a_publish_leaves_the_others_their_deltas() -> None:
    """A queued session (``/realtimemd`` streams, other servers) that overflows while the
    fan-out delivers to it leaves the very set of subscribers the fan-out is walking: the walk
    goes on, and the others get that delta and the rest of the publish, public and private."""
    with harness(ws_queue_messages_max=4) as h:
        fanout = h.gateway.fanout
        sessions = [Session(h.gateway, FakeWebSocket()) for _ in range(4)]  # type: ignore[arg-type]
        for session in sessions[:2]:
            session.subscribe("instrument:XBTUSD", {"op": "subscribe"})  # ack and partial
        for session in sessions[2:]:
            session.principal = object()  # type: ignore[assignment]  # only read as "signed in"
            session.private_topics.add(("position", 7))
            session.private_symbols["position"] = {"*"}
            fanout.add_private(session, "position", 7)
            session.push("welcome")
            session.push("ack")
        full, other, full_private, other_private = sessions
        for session in (full, full_private):
            session.push("a")
            session.push("b")  # its queue is full
        rows = [[{"symbol": "XBTUSD", "seq": seq}] for seq in range(2)]
        fanout.publish(
            [Delta("instrument", "XBTUSD", "update", row) for row in rows],
            [PrivateDelta("position", 7, "XBTUSD", "update", row) for row in rows],
        )
        for session in (full, full_private):
            assert session.closed and "slow consumer" in session.close_reason[1]
        assert fanout.public[("instrument", "XBTUSD")] == {other}
        assert fanout.private[("position", 7)] == {other_private}
        for session in (other, other_private):
            queued = [session.queue.get_nowait() for _ in range(4)][2:]
            assert [json.loads(m)["data"][0]["seq"] for m in queued] == [0, 1]  # type: ignore[arg-type]


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
        session.raw = RawTransport(  # type: ignore[arg-type]
            transport, lambda: state[0] == "OPEN", lambda: False
        )
        session.transport = transport  # type: ignore[assignment]
        session.push("before")
        state[0] = "CLOSING"
        session.push("after")
        assert transport.written == [text_frame(b"before")]
        assert not session.closed  # the receive loop closes it when the disconnect arrives


def test_the_served_config_loads_without_uvicorn_s_deprecation_warning() -> None:
    """uvicorn warns when its legacy ``websockets`` protocol module is imported: at start,
    when ``Config.load`` imports the configured protocol, or before, by any module importing
    it. A fresh interpreter, with that warning an error, imports the gateway and loads the
    config ``perpetua run`` serves (decisions §34)."""
    code = textwrap.dedent(
        """
        import warnings
        from uvicorn.config import UvicornDeprecationWarning
        warnings.simplefilter("error", UvicornDeprecationWarning)
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        from perpetua.gateway import create_app
        from perpetua.gateway.ws import endpoint, frames, multiplex, session
        from perpetua.runtime.config import ServerConfig
        from perpetua.runtime.server import server_config

        async def app(scope, receive, send):
            pass

        config = server_config(app, ServerConfig())
        config.load()
        assert config.ws_protocol_class is WebSocketsSansIOProtocol, config.ws_protocol_class
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "UvicornDeprecationWarning" not in done.stderr


async def _closed_by_server(ws: Any) -> tuple[list[str], websockets.frames.Close | None]:
    """What the server sends until the connection closes, and the close frame it sent."""
    messages: list[str] = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        for _ in range(100):
            messages.append(await asyncio.wait_for(ws.recv(), 10))
    return messages, closed.value.rcvd


async def _until_no_sessions(live: Any) -> None:
    for _ in range(200):
        if not live.gateway.fanout.sessions:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a closed session is still in the fan-out")


def test_under_the_served_uvicorn_pings_the_message_bound_and_closing_stay_with_it() -> None:
    """Raw frames beside the protocol's own: a ping is answered, a message over
    ``WS_MESSAGE_BYTES_MAX`` is refused with 1009, a session that closes itself sends its
    error frames then the close frame (nothing after it), and a client's close is answered
    and takes the session out of the fan-out."""

    async def main() -> None:
        async with live_gateway(ws_errors_max=1) as live:
            url = live.ws_base + "/realtime"
            async with websockets.connect(url, compression=None) as ws:
                await ws.recv()
                await asyncio.wait_for(await ws.ping(), 10)
                await ws.send("x" * (WS_MESSAGE_BYTES_MAX + 1))
                _, close = await _closed_by_server(ws)
                assert close is not None and close.code == 1009
            async with websockets.connect(url) as ws:
                await ws.recv()
                await ws.send("not json")
                await ws.send("not json")
                messages, close = await _closed_by_server(ws)
                assert [json.loads(m)["status"] for m in messages] == [400, 400]
                assert close is not None and close.code == 1008
                assert close.reason == "too many errors"
            await _until_no_sessions(live)
            async with websockets.connect(url + "?subscribe=instrument:XBTUSD") as ws:
                await ws.recv()
                assert json.loads(await ws.recv())["success"] is True
                assert len(live.gateway.fanout.sessions) == 1
                await ws.close()
                assert ws.close_code == 1000  # the server's answer
            await _until_no_sessions(live)

    asyncio.run(main())


def test_a_served_subscriber_that_reads_nothing_is_cut_off() -> None:
    """Under the served uvicorn: a subscriber that stops reading (and does not ping) is closed
    as a slow consumer once its transport buffers more than the limit, and the server drops
    the connection and what it buffers within ``CLOSE_FRAME_WAIT_S``: no close frame gets
    through a buffer nobody reads, and uvicorn's protocol would wait for it forever."""
    limit = 1 << 20

    async def main() -> None:
        async with (
            live_gateway(ws_write_buffer_bytes_max=limit) as live,
            websockets.connect(live.ws_base + "/realtime", max_queue=1, ping_interval=None) as ws,
        ):
            await ws.recv()  # welcome: the session writes raw frames from here on
            session = next(iter(live.gateway.fanout.sessions))
            transport = session.transport
            assert transport is not None
            for _ in range(10_000):  # the client's queue holds one message, then it stops
                if session.closed:
                    break
                session.push("x" * 60_000)
                await asyncio.sleep(0)
            assert session.closed and "slow consumer" in session.close_reason[1]
            start = time.monotonic()
            while transport.get_write_buffer_size() > 0 and time.monotonic() - start < 30:
                await asyncio.sleep(0.05)
            assert transport.is_closing() and transport.get_write_buffer_size() == 0
            assert time.monotonic() - start < CLOSE_FRAME_WAIT_S + 5

    asyncio.run(main())


async def _open_stream(ws: Any, stream_id: str, topic: str) -> None:
    """Open a ``/realtimemd`` stream and subscribe it: welcome, ack, partial."""
    await ws.send(json.dumps([1, stream_id, "public"]))
    assert json.loads(await ws.recv())[3]["info"].startswith("Welcome")
    await ws.send(json.dumps([0, stream_id, "public", {"op": "subscribe", "args": [topic]}]))
    assert json.loads(await ws.recv())[3]["success"] is True
    assert json.loads(await ws.recv())[3]["action"] == "partial"


def test_a_served_realtimemd_client_that_reads_nothing_is_cut_off() -> None:
    """Under the served uvicorn, ``/realtimemd`` streams send through ASGI, and uvicorn's
    ``send`` waits while the transport buffers above its high-water mark: for a peer that
    reads nothing, for ever. Such a client is cut off and its connection, buffer and queue are
    let go within ``SEND_WAIT_S`` plus ``CLOSE_FRAME_WAIT_S`` of its stream falling behind
    (its queue full); a client that reads gets every delta, in order, meanwhile. (The idle
    client asks for no compression: uvicorn's permessage-deflate would shrink the padding to
    nothing.)"""
    pad = "x" * 60_000

    async def main() -> None:
        async with (
            live_gateway(ws_queue_messages_max=50) as live,
            websockets.connect(
                live.ws_base + "/realtimemd",
                max_queue=1,
                ping_interval=None,
                compression=None,
                close_timeout=1,
            ) as idle,
            websockets.connect(live.ws_base + "/realtimemd") as reader,
        ):
            fanout = live.gateway.fanout
            await _open_stream(idle, "idle", "instrument:XBTUSD")
            session = next(iter(fanout.sessions))
            raw = raw_transport(session.websocket.socket.websocket)
            assert raw is not None
            released = weakref.ref(session)
            del session
            await _open_stream(reader, "reader", "instrument:XBTUSD")
            bound_s = SEND_WAIT_S + CLOSE_FRAME_WAIT_S + 5
            cut_s: float | None = None  # when the idle client's stream fell behind
            for seq in range(2_000):
                row = {"symbol": "XBTUSD", "seq": seq, "pad": pad}
                fanout.publish([Delta("instrument", "XBTUSD", "update", [row])], [])
                message = json.loads(await asyncio.wait_for(reader.recv(), 10))
                assert message[:2] == [0, "reader"] and message[3]["data"][0]["seq"] == seq
                if cut_s is None and len(fanout.sessions) == 1:
                    cut_s = time.monotonic()
                if cut_s is not None:
                    if raw.transport.is_closing() and raw.transport.get_write_buffer_size() == 0:
                        break
                    if time.monotonic() - cut_s > bound_s:
                        break
                    await asyncio.sleep(0.05)  # the reader keeps reading while it is let go
            assert cut_s is not None
            waited_s = time.monotonic() - cut_s
            assert raw.transport.is_closing() and raw.transport.get_write_buffer_size() == 0
            assert waited_s < bound_s, waited_s
            for _ in range(100):  # the app returns once the transport is lost
                gc.collect()
                if released() is None:
                    break
                await asyncio.sleep(0.05)
            assert released() is None  # the session, and the messages it queued, are gone

    asyncio.run(main())


PEER_RECEIVE_BUFFER_BYTES = 4_096  # so a peer that stops reading soon backs up the server


class _Peer:
    """A WebSocket client over a plain socket, driven by the websockets library's sans-I/O
    protocol: it reads only when asked, through a small receive buffer, so it can stop
    reading for good while its connection stays up, and send a close frame meanwhile."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.messages: list[str] = []

    @classmethod
    async def connect(cls, live: Any, path: str, stack: contextlib.AsyncExitStack) -> "_Peer":
        """Connected and upgraded; the socket is closed when ``stack`` ends."""
        loop = asyncio.get_running_loop()
        uri = parse_uri(live.ws_base + path)
        sock = stack.enter_context(socket.socket())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PEER_RECEIVE_BUFFER_BYTES)
        sock.setblocking(False)
        await loop.sock_connect(sock, (uri.host, uri.port))
        peer = cls(sock, ClientProtocol(uri))  # offers no compression
        peer.protocol.send_request(peer.protocol.connect())
        await peer._flush()
        while peer.protocol.state is not State.OPEN:  # the 101 response
            await peer._receive()
        return peer

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def _flush(self) -> None:
        data = b"".join(self.protocol.data_to_send())
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def send(self, value: Any) -> None:
        self.protocol.send_text(json.dumps(value).encode())
        await self._flush()

    async def send_close(self) -> None:
        self.protocol.send_close(1000)
        await self._flush()

    async def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 65_536), 10)
        assert data, "the server closed the connection"
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.messages.append(event.data.decode())

    async def recv(self) -> Any:
        """The next text message, as JSON."""
        while not self.messages:
            await self._receive()
        return json.loads(self.messages.pop(0))

    async def read_to_end(self) -> int:
        """Read until the server closes the connection; the bytes read."""
        loop = asyncio.get_running_loop()
        total = 0
        while data := await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 20), 10):
            total += len(data)
        return total


async def _until_disconnected(live: Any) -> float:
    """When the last session heard its client's close (it left the fan-out)."""
    await _until_no_sessions(live)
    return time.monotonic()


async def _until_released(transport: asyncio.WriteTransport, since: float, bound_s: float) -> None:
    """The transport closed with nothing buffered within ``bound_s`` of ``since``."""
    while transport.get_write_buffer_size() > 0 and time.monotonic() - since < bound_s:
        await asyncio.sleep(0.05)
    assert transport.is_closing() and transport.get_write_buffer_size() == 0
    assert time.monotonic() - since < bound_s, time.monotonic() - since


def test_a_served_subscriber_that_closes_and_stops_reading_is_let_go() -> None:
    """Under the served uvicorn, a client sends its close frame and never reads again, with
    a megabyte buffered for it (under the slow-consumer limit). uvicorn answers the close and
    closes the transport, which waits for a drain that never comes; the session lets go of the
    connection and its buffer within ``CLOSE_FRAME_WAIT_S`` of hearing the disconnect. A
    client that does the same but reads on gets everything and the close; the abort then finds
    its connection gone and leaves it alone (asyncio's transport raises if aborted after it
    closed by draining)."""
    buffered_bytes = 1 << 20

    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        async with live_gateway() as live, contextlib.AsyncExitStack() as peers_open:
            fanout = live.gateway.fanout
            peers = [await _Peer.connect(live, "/realtime", peers_open) for _ in range(2)]
            for peer in peers:
                assert "info" in await peer.recv()  # welcome: raw frames from here on
            by_port = {session.websocket.client.port: session for session in fanout.sessions}
            stopping, reading = (by_port[peer.port] for peer in peers)
            for session in (stopping, reading):
                transport = session.transport
                assert transport is not None
                for _ in range(1_000):
                    if transport.get_write_buffer_size() > buffered_bytes:
                        break
                    session.push("x" * 60_000)
                    await asyncio.sleep(0)
                assert transport.get_write_buffer_size() > buffered_bytes
                assert not session.closed
            for peer in peers:
                await peer.send_close()
            read = asyncio.create_task(peers[1].read_to_end())
            disconnected = await _until_disconnected(live)
            assert stopping.transport is not None
            await _until_released(stopping.transport, disconnected, CLOSE_FRAME_WAIT_S + 5)
            assert await read > buffered_bytes
            assert fanout.slow_consumers_dropped == 0  # let go as a close, not cut
            for session in (stopping, reading):
                assert session.abort_timer is not None
                while loop.time() <= session.abort_timer.when() + 0.1:
                    await asyncio.sleep(0.05)
            assert errors == []

    asyncio.run(main())


def test_a_served_realtimemd_client_that_closes_and_stops_reading_is_let_go() -> None:
    """Under the served uvicorn, a ``/realtimemd`` client subscribes a stream, stops reading
    until its stream's sends wait on the paused transport, then sends its close frame, well
    before ``SEND_WAIT_S`` would cut it. The socket lets go of the connection and its buffer
    within ``CLOSE_FRAME_WAIT_S`` of hearing the disconnect, and was not cut."""
    pad = "x" * 60_000
    paused_bytes = 64 * 1024  # asyncio's default high-water mark

    async def main() -> None:
        async with live_gateway() as live, contextlib.AsyncExitStack() as peers_open:
            fanout = live.gateway.fanout
            peer = await _Peer.connect(live, "/realtimemd", peers_open)
            await peer.send([1, "s", "public"])
            assert (await peer.recv())[3]["info"].startswith("Welcome")
            await peer.send([0, "s", "public", {"op": "subscribe", "args": ["instrument:XBTUSD"]}])
            assert (await peer.recv())[3]["success"] is True
            assert (await peer.recv())[3]["action"] == "partial"
            session = next(iter(fanout.sessions))
            socket_ = session.websocket.socket
            raw = raw_transport(socket_.websocket)
            assert raw is not None
            transport = raw.transport
            publishing = time.monotonic()
            for seq in range(1_000):
                if transport.get_write_buffer_size() > paused_bytes:
                    break
                row = {"symbol": "XBTUSD", "seq": seq, "pad": pad}
                fanout.publish([Delta("instrument", "XBTUSD", "update", [row])], [])
                await asyncio.sleep(0.01)
            assert transport.get_write_buffer_size() > paused_bytes
            await peer.send_close()
            disconnected = await _until_disconnected(live)
            assert disconnected - publishing < SEND_WAIT_S  # so the close, not a cut, let it go
            await _until_released(transport, disconnected, CLOSE_FRAME_WAIT_S + 5)
            assert not socket_.cut and fanout.slow_consumers_dropped == 0

    asyncio.run(main())
