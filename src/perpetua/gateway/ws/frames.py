"""WebSocket text frames written straight to the transport (see ``session``), and the one
adapter that finds that transport.

``raw_transport`` is the only place the gateway looks under the ASGI interface: Starlette's
``WebSocket`` keeps the server's ``send`` callable, and under uvicorn's ``websockets-sansio``
implementation (the one ``gateway.server.uvicorn_config`` selects) that is a bound method of
the connection's ``WebSocketsSansIOProtocol``, whose ``transport`` and ``conn`` (the websockets
library's sans-I/O ``ServerProtocol``, which holds the connection's state) uvicorn declares.
Both steps are ``isinstance`` checks, not attribute probes: under any other server, a
middleware's wrapped ``send`` or a test client, the answer is None and the session sends
through ASGI as usual (decisions §9, §34).
"""

import asyncio
from collections.abc import Callable
from types import MethodType
from typing import NamedTuple, Protocol

from starlette.datastructures import Address
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

__all__ = ["RawTransport", "SessionSocket", "raw_transport", "text_frame"]


class SessionSocket(Protocol):
    """What a session needs of its socket: Starlette's ``WebSocket``, or one stream of a
    multiplexed one (``multiplex``)."""

    @property
    def client(self) -> Address | None: ...

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2) around ``payload``."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class RawTransport(NamedTuple):
    """Where a session may write frames itself, while ``is_open()``: the server's protocol
    has answered the upgrade (uvicorn writes the 101 response within ``accept``) and has not
    sent a close frame (its own, or the answer to the client's, which it sends by itself
    before the application hears of the disconnect). No data frame may follow a close frame
    (RFC 6455 §5.5.1; browsers log "Data frame received after close"), although the
    transport stays open for the closing handshake. ``is_lost()``: the connection is gone
    (uvicorn's protocol has heard ``connection_lost``)."""

    transport: asyncio.WriteTransport
    is_open: Callable[[], bool]
    is_lost: Callable[[], bool]

    def abort_after(self, delay_s: float) -> asyncio.TimerHandle:
        """Abort the transport ``delay_s`` from now, dropping what it buffers, unless the
        connection is gone by then. uvicorn's protocol ends a connection with
        ``transport.close()``, which waits for the buffer to drain: a peer that never reads
        again (after its own close frame, or cut as a slow consumer) would keep the
        connection and its buffer. A timer, not a step after an await, so that cancelling
        the task that closes cannot keep the connection (decisions §34)."""
        return asyncio.get_running_loop().call_later(delay_s, self._abort)

    def _abort(self) -> None:
        if not self.is_lost():  # asyncio's transport, once closed by a drain, fails on abort
            self.transport.abort()


def raw_transport(websocket: SessionSocket) -> RawTransport | None:
    """The connection's transport under uvicorn's ``websockets-sansio`` protocol, or None
    (also for a multiplexed stream, which is not a Starlette ``WebSocket``)."""
    if not isinstance(websocket, WebSocket):
        return None
    send = websocket._send  # Starlette keeps the server's ASGI send here
    if not isinstance(send, MethodType):
        return None
    protocol = send.__self__
    if not isinstance(protocol, WebSocketsSansIOProtocol):
        return None
    connection = protocol.conn  # OPEN from the 101 response until a close frame either way
    return RawTransport(
        protocol.transport,
        lambda: connection.state is State.OPEN,
        lambda: protocol.disconnected,
    )
