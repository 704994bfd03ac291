"""`Lease`: which sequencer may lead, as one key in a JetStream key-value bucket.

Why a JetStream KV lease rather than a PostgreSQL advisory lock: (1) the lease lives in the same
RAFT-replicated system as the journal, so a sequencer cut off from NATS loses its lease and its
ability to append together, while an advisory lock would keep a leader that still reaches
PostgreSQL but no longer the stream (or the reverse) in office; (2) an advisory lock is tied to a
TCP session, whose loss the server notices only after keepalive timeouts, far above the 5 s
failover target; (3) cluster mode then needs PostgreSQL only for read models, never on the write
path.

The value is ``[holder, expires_unix_ms]``. A holder renews it every ``renew_s`` with a
compare-and-set on the revision it last wrote; anyone may take it with a compare-and-set once
``expires_unix_ms`` has passed by its own clock (nodes' clocks must agree to well under
``ttl_s``: NTP). Correctness does not rest on the lease: two nodes that both believe they lead
still cannot both append, since every append is fenced by the stream's expected last sequence
(`journal`). The lease only keeps that rare.
"""

from __future__ import annotations

import contextlib
import time
from typing import Final

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

__all__ = ["LEASE_KEY", "Lease", "LeaseHolder"]

LEASE_KEY: Final = "sequencer"
TTL_S: Final = 2.0
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(tuple[str, int])


class LeaseHolder(msgspec.Struct, frozen=True):
    holder: str
    expires_unix_ms: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Lease:
    """One node's view of the lease in ``kv``."""

    def __init__(self, kv: KeyValue, node: str, ttl_s: float = TTL_S) -> None:
        self._kv = kv
        self.node = node
        self.ttl_s = ttl_s
        self.revision = 0  # of the value this node last wrote, 0 when it holds nothing

    def _value(self) -> bytes:
        return _encoder.encode((self.node, _now_ms() + int(self.ttl_s * 1000)))

    async def current(self) -> tuple[LeaseHolder | None, int]:
        """(the holder and expiry, or None when nobody ever held it; the entry's revision)."""
        try:
            entry = await self._kv.get(LEASE_KEY)
        except KeyNotFoundError:
            return None, 0
        if entry.value is None:
            return None, int(entry.revision or 0)
        holder, expires = _decoder.decode(entry.value)
        return LeaseHolder(holder, expires), int(entry.revision or 0)

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it, it expired, or it is this node's already."""
        holder, revision = await self.current()
        try:
            if holder is None and revision == 0:
                self.revision = await self._kv.create(LEASE_KEY, self._value())
                return True
            if holder is None or holder.holder == self.node or holder.expires_unix_ms < _now_ms():
                self.revision = await self._kv.update(LEASE_KEY, self._value(), last=revision)
                return True
        except KeyWrongLastSequenceError:
            pass  # another node was faster
        self.revision = 0
        return False

    async def renew(self) -> bool:
        """Extend the lease; False if another node took it (this node is deposed)."""
        if not self.revision:
            return False
        try:
            self.revision = await self._kv.update(LEASE_KEY, self._value(), last=self.revision)
            return True
        except KeyWrongLastSequenceError:
            self.revision = 0
            return False

    async def release(self) -> None:
        """Give the lease up at once (a clean stop): the next node need not wait for expiry."""
        if not self.revision:
            return
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self._kv.update(LEASE_KEY, _encoder.encode((self.node, 0)), last=self.revision)
        self.revision = 0
