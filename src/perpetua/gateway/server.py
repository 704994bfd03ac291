"""uvicorn as Perpetua serves the gateway: the one place its server settings live, used by
``perpetua run`` and ``perpetua demo`` alike.

Invariants (docs/security.md):

1. forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed only from the
   proxy addresses the operator lists (``--forwarded-allow-ips``, empty by default: the client
   address is the TCP peer, so CIDR allow-lists and per-IP limits cannot be talked around);
2. a connection that has not sent a complete request head within ``HEAD_TIMEOUT_S`` of
   connecting (or of starting its next request) is closed; a head longer than
   ``HEAD_BYTES_MAX`` is answered 431 and closed;
3. one client address (an IPv6 client's /64: ``ratelimit.address_key``) holds at most
   ``CONNECTIONS_PER_IP_MAX`` open connections (HTTP and WebSocket together; a further one is
   closed at once); listed proxies are exempt, since every client behind them shares their
   address;
4. a WebSocket message is at most ``WS_MESSAGE_BYTES_MAX`` (the server refuses larger frames
   before the gateway sees them).
"""

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from perpetua.gateway.ratelimit import address_key

__all__ = [
    "CONNECTIONS_PER_IP_MAX",
    "HEAD_BYTES_MAX",
    "HEAD_TIMEOUT_S",
    "KEEP_ALIVE_S",
    "WS_MESSAGE_BYTES_MAX",
    "GuardedHttpProtocol",
    "uvicorn_config",
]

HEAD_TIMEOUT_S = 5.0  # from connecting (or the first byte of a request) to a complete head
HEAD_BYTES_MAX = 32 * 1024  # request line + headers; BitMEX filters in a URL fit easily
CONNECTIONS_PER_IP_MAX = 200  # open sockets per client address (ccxt pools ~10; bots ~50)
KEEP_ALIVE_S = 90  # idle time between requests on one connection (uvicorn's own timer)
WS_MESSAGE_BYTES_MAX = 65_536  # as the gateway's own bound on one realtime message
ADDRESSES_TRACKED_MAX = 100_000  # client addresses in the connection registry before pruning


class _HeadTooLarge(Exception):
    pass


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with invariants 2 and 3 of the module."""

    trusted: frozenset[str] = frozenset()  # set per server by ``uvicorn_config``
    head_timeout_s = HEAD_TIMEOUT_S
    head_bytes_max = HEAD_BYTES_MAX
    connections_per_ip_max = CONNECTIONS_PER_IP_MAX
    # client address (an IPv6 client's /64) -> its open transports: one registry per server,
    # as ``uvicorn_config`` makes one subclass per server (this default serves a protocol
    # built directly)
    open_by_ip: ClassVar[dict[str, list[asyncio.BaseTransport]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes: int | None = 0  # of url and headers; None once the head is complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ip = self.client[0] if self.client else ""
        if ip and ip not in self.trusted:
            key = address_key(ip)  # an IPv6 client's /64
            open_here = self.open_by_ip
            alive = [t for t in open_here.get(key, ()) if not t.is_closing()]
            if len(alive) >= self.connections_per_ip_max:
                transport.abort()
                return
            alive.append(transport)
            open_here[key] = alive
            if len(open_here) > ADDRESSES_TRACKED_MAX:  # forget addresses with nothing open
                for known in [k for k, ts in open_here.items() if all(t.is_closing() for t in ts)]:
                    del open_here[known]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        key = address_key(self.client[0]) if self.client else ""
        open_here = self.open_by_ip
        alive = [t for t in open_here.get(key, ()) if not t.is_closing()]
        if alive:
            open_here[key] = alive
        else:
            open_here.pop(key, None)
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (
            self._head_bytes is not None
            and self._head_bytes > self.head_bytes_max
            and (not self.transport.is_closing())
        ):  # a huge head still arriving
            self.send_400_response("")

    def _count_head(self, size: int) -> None:
        if self._head_bytes is None:
            return
        self._head_bytes += size
        if self._head_bytes > self.head_bytes_max:
            raise _HeadTooLarge  # the parser stops; uvicorn answers through send_400_response

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # _count_head inlined: this runs for every header of every request
        if self._head_bytes is not None:
            self._head_bytes += len(name) + len(value) + 4
            if self._head_bytes > self.head_bytes_max:
                raise _HeadTooLarge
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._head_bytes is None or self._head_bytes <= self.head_bytes_max:
            super().send_400_response(msg)
            return
        self._disarm_head_timer()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n"
        )
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:  # the next request on a kept-alive connection
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        self._head_bytes = None
        super().on_headers_complete()


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    log_level: str,
    forwarded_allow_ips: Sequence[str] = (),
    *,
    head_timeout_s: float = HEAD_TIMEOUT_S,
    connections_per_ip_max: int = CONNECTIONS_PER_IP_MAX,
    **extra: Any,
) -> uvicorn.Config:
    """uvicorn's config for the gateway with the module's invariants; ``extra`` overrides
    uvicorn's own options (tests: ``loop``)."""
    trusted = frozenset(ip.strip() for ip in forwarded_allow_ips if ip.strip())
    protocol = type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "trusted": trusted,
            "head_timeout_s": head_timeout_s,
            "connections_per_ip_max": connections_per_ip_max,
            "open_by_ip": {},
        },
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": protocol,
        "ws": "websockets-sansio",  # ws.frames writes under it (decisions §34)
        "log_level": log_level,
        "access_log": False,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "lifespan": "on",
        "server_header": False,
        "ws_max_size": WS_MESSAGE_BYTES_MAX,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": sorted(trusted) if trusted else "",
    }
    options.update(extra)
    return uvicorn.Config(app, **options)
