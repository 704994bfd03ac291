"""WebSocket text frames written straight to the transport (see ``session``)."""

import asyncio

from starlette.websockets import WebSocket

__all__ = ["raw_transport", "text_frame"]


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2) around ``payload``."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


def raw_transport(
    websocket: WebSocket,
) -> tuple[asyncio.WriteTransport, asyncio.Event | None] | None:
    """(transport, handshake-done event or None) under a Starlette WebSocket served by uvicorn
    (its ASGI ``send`` is a method of the connection's protocol), or None anywhere else.
    Frames may be written only once the event is set: uvicorn answers the upgrade request
    after ``accept`` returns."""
    protocol = getattr(getattr(websocket, "_send", None), "__self__", None)
    transport = getattr(protocol, "transport", None)
    if transport is None or not hasattr(transport, "get_write_buffer_size"):
        return None
    done: asyncio.Event | None = getattr(protocol, "handshake_completed_event", None)
    return transport, done
