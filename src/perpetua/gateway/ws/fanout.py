"""Delivery of deltas to subscribed sockets, each message encoded (and framed) once.

Public subscriptions are indexed by (table, symbol) with ``"*"`` for a whole table; private ones
by (table, account) and filtered by symbol per session. A session's queue is bounded: a session
that cannot take a message is closed as a slow consumer (it never makes memory grow) and leaves
the index at once, in the middle of a publish, which therefore walks copies of the index's sets.
"""

import asyncio
from collections.abc import Iterable
from typing import Protocol

from perpetua.gateway.auth import Principal
from perpetua.gateway.errors import ApiError
from perpetua.gateway.private import PrivateDelta, PrivateViews
from perpetua.gateway.ws.frames import text_frame
from perpetua.marketdata.deltas import Delta
from perpetua.marketdata.hub import MarketData
from perpetua.wire.values import JsonRow, encode_json

__all__ = ["ALL", "Fanout", "data_message", "strip_nulls"]

ALL = "*"


def strip_nulls(rows: Iterable[JsonRow]) -> list[JsonRow]:
    """BitMEX stopped sending null fields on the WebSocket in 2023."""
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def data_message(table: str, action: str, rows: Iterable[JsonRow]) -> bytes:
    return encode_json({"table": table, "action": action, "data": strip_nulls(rows)})


class Session(Protocol):
    """What the fan-out needs of a WebSocket session (``ws.session.Session``)."""

    transport: asyncio.WriteTransport | None
    pending: list[bytes]
    closed: bool
    public_topics: set[tuple[str, str]]
    private_topics: set[tuple[str, int]]
    principal: Principal | None

    @property
    def client_ip(self) -> str: ...

    def push(self, message: str) -> None: ...

    def flush(self) -> None: ...

    def wants_private(self, table: str, symbol: str) -> bool: ...

    def revoke(self, refusal: ApiError) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class _Message:
    """One delta, encoded once; its text (queued sessions) and frame (raw) made on demand."""

    __slots__ = ("payload", "text", "frame")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.text: str | None = None
        self.frame: bytes | None = None

    def deliver(self, session: Session, dirty: list[Session]) -> None:
        if session.transport is not None:
            if session.closed:
                return
            if self.frame is None:
                self.frame = text_frame(self.payload)
            if not session.pending:
                dirty.append(session)
            session.pending.append(self.frame)
            return
        if self.text is None:
            self.text = self.payload.decode()
        session.push(self.text)


class Fanout:
    def __init__(self, market: MarketData, private: PrivateViews) -> None:
        self.market = market
        self.private_views = private
        self.public: dict[tuple[str, str], set[Session]] = {}
        self.private: dict[tuple[str, int], set[Session]] = {}
        self.sessions: set[Session] = set()
        self.messages_sent = 0
        self.slow_consumers_dropped = 0  # sessions closed for falling behind (metrics)
        self.foreign_origins_refused = 0  # cookie handshakes from a foreign page (metrics)

    # Registration -------------------------------------------------------------------------------

    def add_public(self, session: Session, table: str, symbol: str) -> None:
        self.public.setdefault((table, symbol), set()).add(session)
        self.market.wanted.add(table)

    def remove_public(self, session: Session, table: str, symbol: str) -> None:
        subscribers = self.public.get((table, symbol))
        if subscribers is not None:
            subscribers.discard(session)
            if not subscribers:
                del self.public[(table, symbol)]
        if not any(t == table for t, _ in self.public):
            self.market.wanted.discard(table)

    def add_private(self, session: Session, table: str, account: int) -> None:
        self.private.setdefault((table, account), set()).add(session)
        self.private_views.wanted_accounts.add(account)

    def remove_private(self, session: Session, table: str, account: int) -> None:
        subscribers = self.private.get((table, account))
        if subscribers is not None:
            subscribers.discard(session)
            if not subscribers:
                del self.private[(table, account)]
        if not any(a == account for _, a in self.private):
            self.private_views.wanted_accounts.discard(account)

    def drop(self, session: Session) -> None:
        for table, symbol in list(session.public_topics):
            self.remove_public(session, table, symbol)
        for table, account in list(session.private_topics):
            self.remove_private(session, table, account)
        self.sessions.discard(session)

    # Delivery -----------------------------------------------------------------------------------

    def publish(self, public: list[Delta], private: list[PrivateDelta]) -> None:
        """Deliver deltas: each encoded once, its bytes shared by every subscriber; raw-frame
        sessions get all their frames of this call in one write, at the end."""
        index = self.public
        dirty: list[Session] = []
        for delta in public:
            exact = index.get((delta.table, delta.symbol))
            whole = index.get((delta.table, ALL))
            if not exact and not whole:
                continue
            message = _Message(data_message(delta.table, delta.action, delta.rows))
            # copies: a queued session that overflows leaves these sets as it is delivered to
            targets = tuple(exact | whole) if exact and whole else tuple(exact or whole or ())
            for session in targets:
                message.deliver(session, dirty)
            self.messages_sent += len(targets)
        for pdelta in private:
            subscribers = self.private.get((pdelta.table, pdelta.account))
            if not subscribers:
                continue
            message = _Message(data_message(pdelta.table, pdelta.action, pdelta.rows))
            for session in tuple(subscribers):  # a copy, as above
                if session.wants_private(pdelta.table, pdelta.symbol):
                    message.deliver(session, dirty)
                    self.messages_sent += 1
        for session in dirty:
            session.flush()

    async def close_all(self) -> None:
        for session in list(self.sessions):
            await session.close(1001, "server shutting down")
