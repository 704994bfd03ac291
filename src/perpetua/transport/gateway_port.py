"""`ClusterCommandPort`: the gateway's `CommandPort` in a cluster, and `SharedLimits`, which
makes a client's rate limit one allowance across every gateway.

`ClusterCommandPort`
    - ``submit_async(cmd)`` sends the command to the leader (`submit.SubmitClient`, with a key
      unique to this gateway and request) and, once the leader says it is durable at seq ``n``,
      waits until this gateway's own replica applied ``n`` and answers with the events the
      replica derived for it: the same events the leader derived (the core is deterministic).
      Outcomes: ``Overloaded`` (503), ``CommandInvalid``, ``SequencerStopped`` (no leader in
      ``NO_LEADER_WAIT_S``: nothing applied) and ``SequencerFailed`` (the leader died with the
      command in flight: outcome unknown, said as such to the client; never retried here).
    - ``subscribe_batches(cb)``: ``cb`` gets every message of the stream as ``list[Applied]``
      on this port's NATS thread, from the seq the views were seeded at (`seed`) on: batches
      that arrive between the seed and the subscription are held and handed over first.
    - The replica is the gateway's only engine; it is caught up to the stream's end before
      ``open`` returns, and applies on the port's own loop thread (not the server's loop).
    - ``open_at(seq, read)`` starts it from the newest snapshot at or below record ``seq``
      instead of message 1: restored, fed the messages up to exactly ``seq``, ``read`` there
      (the views' seed), then followed to the end (the batches after ``seq`` held for the first
      subscriber). None, and nothing changed, when no snapshot fits or ``seq`` falls inside a
      message: the caller opens from message 1.

`SharedLimits`
    Each gateway charges its own token buckets (`gateway.ratelimit.RateLimits`) and publishes
    what it charged, per key, every ``SHARE_INTERVAL_S`` on ``<prefix>.limits``; every other
    gateway takes the same tokens from its buckets (``RateLimits.absorb``). A client spread over
    N gateways thus has one allowance, not N, give or take one interval of lag.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from perpetua.core.commands import Command
from perpetua.sequencer import (
    Applied,
    CommandInvalid,
    Overloaded,
    Result,
    SequencerFailed,
    SequencerStopped,
    default_engine,
    encode_command,
)
from perpetua.sequencer.recovery import EngineFactory
from perpetua.transport.loop import LoopThread
from perpetua.transport.node import connect
from perpetua.transport.replica import Replica, StreamFollower, last_stream_seq
from perpetua.transport.snapshots import latest_snapshot
from perpetua.transport.stream import ClusterNames, decode_batch, wait_for_stream
from perpetua.transport.submit import INVALID, OK, OVERLOADED, UNKNOWN, SubmitClient

__all__ = ["ClusterCommandPort", "SharedLimits"]

_log = logging.getLogger(__name__)

OPEN_TIMEOUT_S: Final = 120.0  # catching a new gateway up with the stream
APPLIED_WAIT_S: Final = 30.0  # the replica reaching a seq the leader acknowledged
RECENT_APPLIED_MAX: Final = 65_536  # applied records kept for submitters whose reply is late
SHARE_INTERVAL_S: Final = 0.05
EXECUTE_WAIT_S: Final = 60.0  # `execute`: above a leaderless wait plus APPLIED_WAIT_S
BatchCallback = Callable[[Sequence[Applied]], None]


class ClusterCommandPort:
    """See the module docstring; ``open()`` before use, ``close()`` after."""

    def __init__(
        self,
        servers: tuple[str, ...],
        names: ClusterNames,
        name: str,
        engine_factory: EngineFactory = default_engine,
        startup_sink: BatchCallback | None = None,
    ) -> None:
        """``startup_sink`` gets every batch applied until `seed` (the gateway projects them
        into a scratch database to seed its private views at exactly the seed's seq)."""
        self.servers = servers
        self._startup_sink = startup_sink
        self.names = names
        self.name = name
        self._engine_factory = engine_factory
        self.replica = Replica(engine_factory())
        self.thread = LoopThread(f"perpetua-gateway-{name}")
        self._keys = itertools.count(1)
        self._subscribers: list[BatchCallback] = []
        self._held: list[list[Applied]] | None = None
        self._recent: collections.OrderedDict[int, Applied] = collections.OrderedDict()
        self._waiters: dict[int, list[asyncio.Future[Applied]]] = {}
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._client: SubmitClient | None = None
        self._follower: StreamFollower | None = None
        self.restored_seq = 0  # the snapshot the replica started from (0: message 1)

    # --- life ----------------------------------------------------------------------------

    def open(self, timeout_s: float = OPEN_TIMEOUT_S) -> None:
        self.thread.call(self._open(timeout_s))

    async def _connect(self, timeout_s: float) -> JetStreamContext:
        if self.js is None:
            nc = await connect(self.servers, f"gateway-{self.name}")
            self.nc = nc
            self.js = nc.jetstream(timeout=5)
            self._client = SubmitClient(nc, self.names)
            await wait_for_stream(self.js, self.names, timeout_s)
        return self.js

    async def _open(self, timeout_s: float) -> None:
        js = await self._connect(timeout_s)
        # the stream's end read before following: once the follower applies a long backlog on
        # this loop, a JetStream request's reply can wait longer than its timeout
        end = await last_stream_seq(js, self.names)
        self._follower = StreamFollower(js, self.names, self.replica, self._on_applied)
        await self._follower.start()
        if not await self._follower.wait_for(end, timeout_s):
            raise TimeoutError(f"gateway {self.name}: the stream was not applied in {timeout_s} s")

    def open_at(
        self, seq: int, read: Callable[[Any, int], Any], timeout_s: float = OPEN_TIMEOUT_S
    ) -> Any | None:
        """See the module docstring: ``read(engine, seq)``'s result, or None (not opened)."""
        return self.thread.call(self._open_at(seq, read, timeout_s))

    async def _open_at(
        self, seq: int, read: Callable[[Any, int], Any], timeout_s: float
    ) -> Any | None:
        js = await self._connect(timeout_s)
        try:
            store = await js.object_store(self.names.snapshot_bucket)
        except nats.js.errors.BucketNotFoundError:
            return None
        found = await latest_snapshot(store, self._engine_factory, max_seq=seq)
        if found is None:
            return None
        replica, ref = found
        while replica.applied_seq < seq:  # bounded: each message applies at least one record
            try:
                message = await js.get_msg(self.names.stream, seq=replica.stream_seq + 1)
            except nats.js.errors.NotFoundError:
                return None  # the stream ends before seq: the read models are not ours
            replica.apply_message(replica.stream_seq + 1, decode_batch(message.data or b""))
        if replica.applied_seq != seq:
            _log.warning("seq %d is inside stream message %d: from message 1", seq, ref.stream_seq)
            return None
        self.replica = replica
        self.restored_seq = ref.seq
        self._startup_sink = None
        self._held = []
        result = read(replica.engine, seq)
        await self._open(timeout_s)
        return result

    def seed(self, read: Callable[[Any, int], Any]) -> Any:
        """``read(engine, seq)`` run between two stream messages (the views' seed); batches
        after it are held until the first subscriber takes them."""

        async def on_loop() -> Any:
            self._held = []
            self._startup_sink = None
            return read(self.replica.engine, self.replica.applied_seq)

        return self.thread.call(on_loop())

    def close(self) -> None:
        async def shut() -> None:
            current = asyncio.current_task()
            for task in asyncio.all_tasks():
                if task is not current:
                    task.cancel()
            if self._follower is not None:
                await self._follower.stop()
            if self.nc is not None:
                await self.nc.close()

        try:
            self.thread.call(shut(), 10)
        finally:
            self.thread.stop()

    # --- CommandPort -----------------------------------------------------------------------

    def subscribe_batches(self, callback: BatchCallback) -> None:
        async def on_loop() -> None:
            held, self._held = self._held, None
            for batch in held or ():
                callback(batch)
            self._subscribers.append(callback)

        self.thread.call(on_loop())

    def execute(self, command: Command, timeout_s: float = EXECUTE_WAIT_S) -> Result:
        """``submit_async`` from a thread without an event loop (the wallets' worker threads):
        the same outcomes, raised here; `TimeoutError` after ``timeout_s``."""
        return asyncio.run_coroutine_threadsafe(self._submit(command), self.thread.loop).result(
            timeout_s
        )

    async def submit_async(self, command: Command) -> Result:
        future = asyncio.run_coroutine_threadsafe(self._submit(command), self.thread.loop)
        return await asyncio.wrap_future(future)

    async def _submit(self, command: Command) -> Result:
        client = self._client
        if client is None:
            raise SequencerStopped("the gateway is not connected")
        key = f"{self.name}-{next(self._keys)}"
        code, seq, ts_ns, message = await client.submit(key, encode_command(command))
        if code == OK:
            applied = await self._applied(seq)
            return Result(seq, ts_ns, applied.events)
        if code == OVERLOADED:
            raise Overloaded(message)
        if code == INVALID:
            raise CommandInvalid(message)
        if code == UNKNOWN:
            raise SequencerFailed(
                "the leader changed with this request in flight; it may or may not have been"
                f" applied ({message}): look it up (by clOrdID) before sending it again"
            )
        raise SequencerStopped(f"no sequencer leads the cluster right now ({message})")

    async def _applied(self, seq: int) -> Applied:
        known = self._recent.get(seq)
        if known is not None:
            return known
        if seq <= self.replica.applied_seq:  # applied long ago and forgotten: no events kept
            raise SequencerFailed(f"seq {seq} is durable but its events are no longer held")
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(seq, []).append(future)
        return await asyncio.wait_for(future, APPLIED_WAIT_S)

    def _on_applied(self, batch: list[Applied]) -> None:
        recent = self._recent
        waiters = self._waiters
        for applied in batch:
            recent[applied.seq] = applied
            for future in waiters.pop(applied.seq, ()):
                if not future.done():
                    future.set_result(applied)
        while len(recent) > RECENT_APPLIED_MAX:
            recent.popitem(last=False)
        if self._startup_sink is not None:
            self._startup_sink(batch)
        if self._held is not None:
            self._held.append(batch)
        for subscriber in self._subscribers:
            subscriber(batch)


_limits_encoder: Final = msgspec.msgpack.Encoder()
_limits_decoder: Final = msgspec.msgpack.Decoder(tuple[str, list[tuple[str, bool, int, bool]]])


class SharedLimits:
    """Gossip of rate-limit charges between gateways (see the module docstring)."""

    def __init__(self, port: ClusterCommandPort, absorb: Callable[[str, bool, int, bool], None]):
        self._port = port
        self._absorb = absorb
        self._pending: list[tuple[str, bool, int, bool]] = []
        self._task: asyncio.Task[None] | None = None
        self.absorbed = 0

    @property
    def subject(self) -> str:
        return f"{self._port.names.prefix}.limits"

    def record(self, key: str, authenticated: bool, cost: int, order_layer: bool) -> None:
        """Called by the limiter on the server's loop for every charge it accepted."""
        self._port.thread.loop.call_soon_threadsafe(
            self._pending.append, (key, authenticated, cost, order_layer)
        )

    def start(self) -> None:
        async def on_loop() -> None:
            nc = self._port.nc
            if nc is None:
                raise RuntimeError("open the port first")
            await nc.subscribe(self.subject, cb=self._on_message)
            self._task = asyncio.get_running_loop().create_task(self._share(nc))

        self._port.thread.call(on_loop())

    async def _share(self, nc: Client) -> None:
        while True:  # until the port's loop stops
            await asyncio.sleep(SHARE_INTERVAL_S)
            if not self._pending or not nc.is_connected:
                continue
            pending, self._pending = self._pending, []
            await nc.publish(self.subject, _limits_encoder.encode((self._port.name, pending)))

    async def _on_message(self, message: Msg) -> None:
        sender, charges = _limits_decoder.decode(message.data)
        if sender == self._port.name:
            return
        for key, authenticated, cost, order_layer in charges:
            self._absorb(key, authenticated, cost, order_layer)
            self.absorbed += 1
