"""Commands from gateways to the leader over NATS request/reply.

Request: MessagePack ``[key, command payload]`` on ``<prefix>.submit.<leader>``, where ``key``
is the submitter's idempotency key and the payload is ``sequencer.codec.encode_command(cmd)``
(``ts_ns`` 0: the leader stamps it). Submitters address the node the lease names (`lease`),
read again every ``LEADER_CACHE_S`` and whenever nobody answers: a partitioned old leader that
still holds a subscription is not sent new work once the lease moved on. A read that fails (the
bucket electing a leader after a NATS node was lost) keeps the node last read: it most likely
still leads (it steps down only after ``lease_ttl_s`` without a renewal), and if it does not,
nobody answers on its subject and the lease is read again. Taking the read failure for "no
leader" made gateways answer 503 for seconds after a NATS node died (test_lease).
Reply: ``[code, seq, ts_ns, message]``.

Codes and what the submitter may conclude
    0 ``OK``            durable at ``seq`` (JetStream acknowledged its batch).
    1 ``OVERLOADED``    refused for load (503), not applied.
    2 ``INVALID``       refused: cannot be journaled, not applied.
    3 ``UNKNOWN``       the leader failed or was deposed after taking it: it may or may not be in
                        the stream. The gateway says so to its client (never retries it: a
                        retry could apply it twice).
    4 ``NOT_ADMITTED``  the leader was stopping and did not take it: not applied, safe to retry.
No reply at all (``NoRespondersError``: no leader right now) is also safe to retry; a timeout
after the request left is ``UNKNOWN``.

Idempotency: the leader remembers the reply of the last ``IDEMPOTENCY_KEYS_MAX`` keys (and
answers a repeated key with the first command's outcome, never applying it again); the memory is
the leader's own, so it does not survive a failover, which is why ``UNKNOWN`` is never retried.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Final

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

from perpetua.sequencer import (
    CommandInvalid,
    Overloaded,
    Result,
    Sequencer,
    SequencerError,
    SequencerStopped,
    decode_command,
)
from perpetua.transport.lease import Lease
from perpetua.transport.stream import ClusterNames

__all__ = [
    "INVALID",
    "NOT_ADMITTED",
    "OK",
    "OVERLOADED",
    "UNKNOWN",
    "SubmitClient",
    "SubmitServer",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
]

OK: Final = 0
OVERLOADED: Final = 1
INVALID: Final = 2
UNKNOWN: Final = 3
NOT_ADMITTED: Final = 4
IDEMPOTENCY_KEYS_MAX: Final = 100_000

Reply = tuple[int, int, int, str]
_encoder: Final = msgspec.msgpack.Encoder()
_request_decoder: Final = msgspec.msgpack.Decoder(tuple[str, bytes])
_reply_decoder: Final = msgspec.msgpack.Decoder(tuple[int, int, int, str])


def encode_request(key: str, payload: bytes) -> bytes:
    return _encoder.encode((key, payload))


def decode_request(data: bytes) -> tuple[str, bytes]:
    return _request_decoder.decode(data)


def encode_reply(reply: Reply) -> bytes:
    return _encoder.encode(reply)


def decode_reply(data: bytes) -> Reply:
    return _reply_decoder.decode(data)


class SubmitServer:
    """The leader's side: takes requests, submits them, replies once durable."""

    def __init__(self, nc: Client, subject: str, sequencer: Sequencer) -> None:
        self._nc = nc
        self._subject = subject
        self._sequencer = sequencer
        self._subscription: Subscription | None = None
        self._replies: collections.OrderedDict[str, asyncio.Future[bytes]] = (
            collections.OrderedDict()
        )
        self.served = 0
        self.repeated = 0

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(self._subject, cb=self._on_request)

    async def stop(self) -> None:
        """Stop taking requests (those already taken are answered as they settle)."""
        subscription = self._subscription
        self._subscription = None
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):  # a closed connection: nothing to stop
                await subscription.unsubscribe()

    async def _on_request(self, message: Msg) -> None:
        # Replies are sent from a task: the subscription's callback returns at once, so
        # requests keep flowing into the sequencer while earlier ones wait for their batch.
        asyncio.get_running_loop().create_task(self._serve(message))

    async def _serve(self, message: Msg) -> None:
        try:
            key, payload = decode_request(message.data)
        except msgspec.DecodeError as error:
            await message.respond(encode_reply((INVALID, 0, 0, f"bad request: {error}")))
            return
        known = self._replies.get(key)
        if known is not None:
            self.repeated += 1
            await message.respond(await asyncio.shield(known))
            return
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._replies[key] = future
        if len(self._replies) > IDEMPOTENCY_KEYS_MAX:
            self._replies.popitem(last=False)
        reply = encode_reply(await self._submit(payload))
        future.set_result(reply)
        self.served += 1
        await message.respond(reply)

    async def _submit(self, payload: bytes) -> Reply:
        try:
            command = decode_command(payload)
        except Exception as error:  # noqa: BLE001 - the codec's refusal, said to the submitter
            return (INVALID, 0, 0, f"undecodable command: {error}")
        try:
            pending = self._sequencer.submit(command)
        except Overloaded as error:
            return (OVERLOADED, 0, 0, str(error))
        except SequencerStopped as error:
            return (NOT_ADMITTED, 0, 0, str(error))
        try:
            result: Result = await pending  # type: ignore[misc]
        except CommandInvalid as error:
            return (INVALID, 0, 0, str(error))
        except SequencerError as error:
            return (UNKNOWN, 0, 0, f"leader failed with the command in flight: {error}")
        return (OK, result.seq, result.ts_ns, "")


NO_LEADER_WAIT_S: Final = 8.0  # how long a submitter waits for a leader to appear
REQUEST_TIMEOUT_S: Final = 10.0  # one request, its batch's replication included
NO_LEADER_PAUSE_S: Final = 0.05
LEADER_CACHE_S: Final = 0.25  # how long a submitter trusts the lease holder it read


class SubmitClient:
    """The submitter's side: ``await submit(key, payload)`` -> a reply (see the codes above).

    No leader (no lease holder, no responder) and ``NOT_ADMITTED`` are retried for up to
    ``no_leader_wait_s``: the command was applied nowhere. A timeout after the request left
    becomes ``UNKNOWN``."""

    def __init__(
        self,
        nc: Client,
        names: ClusterNames,
        no_leader_wait_s: float = NO_LEADER_WAIT_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._nc = nc
        self._names = names
        self._no_leader_wait_s = no_leader_wait_s
        self._request_timeout_s = request_timeout_s
        self._kv: KeyValue | None = None
        self._leader = ""
        self._leader_read_at = -LEADER_CACHE_S
        self.retries = 0
        self.lease_read_errors = 0

    async def leader(self, fresh: bool = False) -> str:
        """The node the lease names ("" if none), cached for ``LEADER_CACHE_S``."""
        loop = asyncio.get_running_loop()
        if not fresh and loop.time() - self._leader_read_at < LEADER_CACHE_S:
            return self._leader
        self._leader_read_at = loop.time()
        try:
            if self._kv is None:
                self._kv = await self._nc.jetstream(timeout=2).key_value(self._names.lease_bucket)
            holder, _revision = await Lease(self._kv, "").current()
            self._leader = holder.holder if holder is not None else ""
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error):
            self.lease_read_errors += 1  # keep the node last read (module docstring)
        return self._leader

    async def submit(self, key: str, payload: bytes) -> Reply:
        request = encode_request(key, payload)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._no_leader_wait_s
        fresh = False
        while True:  # bounded by the deadline
            leader = await self.leader(fresh)
            fresh = True  # after a miss, read the lease again
            try:
                if not leader:
                    raise nats.errors.NoRespondersError
                message = await self._nc.request(
                    self._names.submit_subject(leader), request, timeout=self._request_timeout_s
                )
            except nats.errors.NoRespondersError:
                reply: Reply = (NOT_ADMITTED, 0, 0, "no leader")
            except nats.errors.TimeoutError:
                return (UNKNOWN, 0, 0, "the leader did not answer in time")
            except nats.errors.Error as error:  # the connection failed: it may have left
                return (UNKNOWN, 0, 0, f"connection failed with the request out: {error!r}")
            else:
                reply = decode_reply(message.data)
            if reply[0] != NOT_ADMITTED or loop.time() >= deadline:
                return reply
            self.retries += 1
            await asyncio.sleep(NO_LEADER_PAUSE_S)
            self._leader_read_at = -LEADER_CACHE_S
