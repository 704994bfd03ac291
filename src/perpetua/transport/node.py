"""`SequencerNode`: one sequencer process of a cluster, standby or leader.

Life of a node (`run`):
    1. Connect to NATS; create the journal stream, the lease bucket and the snapshot store if
       missing; restore the newest snapshot that verifies (`snapshots`), if any.
    2. Standby: follow the stream into the replica (`replica`), from the message after the
       snapshot's (the first without one), write a snapshot each ``snapshot_every`` seqs
       (`SnapshotWriter`), and try the lease every ``poll_s``.
    3. On taking the lease: stop following, read the stream's last sequence, apply every
       message up to it directly, then build a `Sequencer` over the replica's engine and a
       `JetStreamJournal` expecting that last sequence, and serve `submit` requests. The new
       leader continues from the last acknowledged batch: everything acknowledged is in the
       stream, and the stream is all it applied.
       Then start the node's `LeaderDuties` (index feeds, jobs that submit commands): they run
       on the leader only, so once in the cluster, and stop before it steps down.
    4. Renew the lease every ``renew_s``. Step down when a renewal is refused (another node
       took it), when none succeeded for ``lease_ttl_s``, or when the sequencer fails (a fenced
       append: someone else leads). A clean step-down keeps the engine (it equals the stream);
       after a failure the engine may hold applied commands the stream refused, so it is thrown
       away and rebuilt from the newest snapshot and the stream. Either way the node goes back
       to 2.

Invariants
    - The engine is touched by one thread at a time: the loop (as a replica) or the
      sequencer's writer (as leader), never both; the follower is stopped before the sequencer
      starts and the sequencer stopped before following resumes.
    - A node never appends without the fence: `JetStreamJournal` expects the stream sequence the
      node's replica last applied.
    - Status (``<prefix>.node.<name>.status``, request/reply): role, seqs, checkpoint hashes,
      the snapshot it restored and those it wrote, how many times it took the lease and when
      it last did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from perpetua.core.instruments import InstrumentSpec
from perpetua.sequencer import Applied, Sequencer, SequencerConfig, default_engine
from perpetua.sequencer.recovery import EngineFactory
from perpetua.transport.journal import JetStreamJournal
from perpetua.transport.lease import TTL_S, Lease
from perpetua.transport.replica import Replica, StreamFollower, fetch_into, last_stream_seq
from perpetua.transport.snapshots import (
    SNAPSHOT_EVERY_COMMANDS,
    SnapshotWriter,
    ensure_snapshot_store,
    latest_snapshot,
)
from perpetua.transport.stream import ClusterNames, ensure_stream
from perpetua.transport.submit import SubmitServer

__all__ = [
    "CLUSTER_SEQUENCER_CONFIG",
    "LeaderDuties",
    "NodeConfig",
    "SequencerNode",
    "connect",
    "ensure_bucket",
]

_log = logging.getLogger(__name__)

RENEW_S: Final = 0.4
RETRY_S: Final = 0.2  # after a NATS error outside the leader's own loop
POLL_S: Final = 0.1
CHECKPOINT_EVERY: Final = 1_000
JS_TIMEOUT_S: Final = 2.0
RECONNECT_WAIT_S: Final = 0.2
# The leader takes no snapshots of its own in cluster mode: standbys write them to the object
# store (`snapshots` says why), and the stream is the journal.
CLUSTER_SEQUENCER_CONFIG: Final = SequencerConfig(
    snapshot_interval_commands=0, snapshot_on_stop=False
)


class LeaderDuties(Protocol):
    """Work only the leader does (`runtime.cluster_leader`): ``start`` once the node leads
    (its sequencer running; ``instruments``: the engine's, read before it started), ``stop``
    before it steps down. Exactly once in the cluster by the lease; a deposed leader that has
    not noticed yet cannot append what its duties submit (the fence)."""

    def read_replica(self, replica: Replica) -> None:
        """Read what the duties need of the replica's engine (fee tiers, say) before the
        sequencer's writer thread owns it: quick, no change, no blocking."""
        ...

    async def start(
        self, sequencer: Sequencer, instruments: tuple[InstrumentSpec, ...]
    ) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    servers: tuple[str, ...]
    names: ClusterNames = ClusterNames()
    replicas: int = 1
    lease_ttl_s: float = TTL_S
    renew_s: float = RENEW_S
    poll_s: float = POLL_S
    checkpoint_every: int = CHECKPOINT_EVERY
    snapshot_every: int = SNAPSHOT_EVERY_COMMANDS  # 0: this node writes no snapshots
    sequencer: SequencerConfig = field(default=CLUSTER_SEQUENCER_CONFIG)
    # where the leader's sequencer writes the snapshots asked of it (``request_snapshot``: the
    # proof of liabilities); None: it takes none. Never the journal's (the stream's) snapshots.
    leader_snapshot_dir: Path | None = None


async def connect(servers: tuple[str, ...], name: str) -> Client:
    """A NATS connection that reconnects forever (to any server of the list)."""
    return await nats.connect(
        list(servers),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=RECONNECT_WAIT_S,
        allow_reconnect=True,
        connect_timeout=2,
    )


async def ensure_bucket(js: JetStreamContext, bucket: str, replicas: int) -> KeyValue:
    """The key-value bucket, created if missing with direct gets: any replica answers a read,
    so the lease is read while the bucket elects a new leader (a NATS node lost); writes (the
    lease's compare-and-set) still go through the leader, so a stale read only makes a CAS
    fail."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=bucket, history=1, replicas=replicas, storage=StorageType.FILE, direct=True
            )
        )


class SequencerNode:
    """One sequencer of a cluster; ``await run(stopping)`` until ``stopping`` is set."""

    def __init__(
        self,
        config: NodeConfig,
        engine_factory: EngineFactory = default_engine,
        duties: LeaderDuties | None = None,
    ) -> None:
        self.config = config
        self._duties = duties
        self._engine_factory = engine_factory
        self.role = "starting"
        self.replica = self._fresh_replica()
        self.leader_count = 0
        self.leader_since_unix_ms = 0
        self.sequencer: Sequencer | None = None
        self.journal: JetStreamJournal | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.restored_seq = 0  # the snapshot the replica last started from (0: none)
        self._writer: SnapshotWriter | None = None
        self.follower: StreamFollower | None = None  # while a standby
        self.step_downs = 0  # leaderships ended (deposed, lease lost, stopped)
        self.rebuilds = 0  # engines thrown away after a failed leadership

    @property
    def duties(self) -> LeaderDuties | None:
        return self._duties

    @property
    def snapshots_written(self) -> int:
        return 0 if self._writer is None else len(self._writer.written)

    def _fresh_replica(self) -> Replica:
        return Replica(self._engine_factory(), checkpoint_every=self.config.checkpoint_every)

    async def _restored_replica(self, store: ObjectStore) -> Replica:
        """The newest snapshot that verifies, else a fresh engine at the stream's start."""
        found = await latest_snapshot(
            store, self._engine_factory, checkpoint_every=self.config.checkpoint_every
        )
        if found is None:
            self.restored_seq = 0
            return self._fresh_replica()
        replica, ref = found
        self.restored_seq = ref.seq
        return replica

    async def run(self, stopping: asyncio.Event) -> None:
        config = self.config
        nc = await connect(config.servers, f"sequencer-{config.name}")
        self._nc = nc
        js = nc.jetstream(timeout=JS_TIMEOUT_S)
        self._js = js
        try:
            await ensure_stream(js, config.names, config.replicas)
            bucket = await ensure_bucket(js, config.names.lease_bucket, config.replicas)
            lease = Lease(bucket, config.name, config.lease_ttl_s)
            store = await ensure_snapshot_store(js, config.names, config.replicas)
            self._writer = SnapshotWriter(
                store, bucket, self._engine_factory, every=config.snapshot_every
            )
            self.replica = await self._restored_replica(store)
            status = await nc.subscribe(config.names.status_subject(config.name), cb=self._status)
            while not stopping.is_set():  # bounded by stopping
                try:
                    if not await self._stand_by(js, lease, stopping):
                        break
                    if not await self._lead(nc, js, lease, stopping):
                        _log.warning("%s: rebuilding the engine from the stream", config.name)
                        self.rebuilds += 1
                        self.replica = await self._restored_replica(store)
                except _UNREACHABLE as error:
                    # NATS unreachable for a moment (a node lost, an election): the replica
                    # applied whole messages only, so it stays valid; try again.
                    _log.warning("%s: NATS error, retrying: %r", config.name, error)
                    await _wait(stopping, RETRY_S)
            await status.unsubscribe()
            await self._writer.drain()
            await lease.release()
        finally:
            self.role = "stopped"
            await nc.close()

    async def _stand_by(self, js: JetStreamContext, lease: Lease, stopping: asyncio.Event) -> bool:
        """Follow the stream until this node holds the lease (True) or stops (False)."""
        self.role = "standby"
        writer = self._writer

        def after(applied: list[Applied]) -> None:
            if writer is not None:
                writer.after_message(self.replica, applied[0].seq - 1)

        follower = StreamFollower(js, self.config.names, self.replica, after)
        await follower.start()
        self.follower = follower
        try:
            while not stopping.is_set():  # bounded by stopping
                if follower.failure is not None:
                    raise follower.failure
                try:
                    if await lease.try_acquire():
                        return True
                except _UNREACHABLE as error:
                    _log.info("%s: lease unreachable: %r", self.config.name, error)
                await _wait(stopping, self.config.poll_s)
            return False
        finally:
            self.follower = None
            await follower.stop()

    async def _lead(
        self, nc: Client, js: JetStreamContext, lease: Lease, stopping: asyncio.Event
    ) -> bool:
        """Lead until deposed or stopped; False if the engine must be rebuilt."""
        config = self.config
        replica = self.replica
        await fetch_into(js, config.names, replica, await last_stream_seq(js, config.names))
        journal = JetStreamJournal(
            asyncio.get_running_loop(), js, config.names,
            next_seq=replica.applied_seq + 1, last_stream_seq=replica.stream_seq,
        )  # fmt: skip
        sequencer = Sequencer(
            replica.engine, journal, config=config.sequencer,
            snapshot_dir=config.leader_snapshot_dir, engine_factory=self._engine_factory,
        )  # fmt: skip
        self.sequencer, self.journal = sequencer, journal
        instruments = tuple(replica.engine.instruments)  # before the writer thread owns it
        if self._duties is not None:
            self._duties.read_replica(replica)
        sequencer.start()
        server = SubmitServer(nc, config.names.submit_subject(config.name), sequencer)
        await server.start()
        self.role = "leader"
        self.leader_count += 1
        self.leader_since_unix_ms = time.time_ns() // 1_000_000
        _log.warning(
            "%s: leading from seq %d (stream message %d)",
            config.name, replica.applied_seq, replica.stream_seq,
        )  # fmt: skip
        renewed_at = time.monotonic()
        try:
            if self._duties is not None:
                await self._duties.start(sequencer, instruments)
            while not stopping.is_set() and sequencer.failure is None:  # bounded by stopping
                await _wait(stopping, config.renew_s)
                try:
                    if not await lease.renew():
                        _log.warning("%s: lease taken by another node: stepping down", config.name)
                        break
                    renewed_at = time.monotonic()
                except _UNREACHABLE as error:
                    if time.monotonic() - renewed_at > config.lease_ttl_s:
                        _log.warning("%s: lease not renewed in time (%r)", config.name, error)
                        break
        finally:
            self.role = "stepping-down"
            if self._duties is not None:
                await self._duties.stop()
            await server.stop()
            await asyncio.get_running_loop().run_in_executor(None, sequencer.stop)
            self.sequencer = None
            self.step_downs += 1
        if sequencer.failure is not None:
            return False
        replica.applied_seq = journal.durable_seq
        replica.stream_seq = journal.last_stream_seq
        return True

    async def _status(self, message: Msg) -> None:
        await message.respond(msgspec.msgpack.encode(self.status()))

    def status(self) -> dict[str, Any]:
        sequencer = self.sequencer
        durable = sequencer.stats().durable_seq if sequencer is not None else None
        return {
            "node": self.config.name,
            "role": self.role,
            "applied_seq": durable if durable is not None else self.replica.applied_seq,
            "stream_seq": (
                self.journal.last_stream_seq
                if sequencer is not None and self.journal is not None
                else self.replica.stream_seq
            ),
            "checkpoints": list(self.replica.checkpoints.items()),
            "restored_seq": self.restored_seq,
            "snapshots_written": []
            if self._writer is None
            else [ref.seq for ref in self._writer.written],
            "leader_count": self.leader_count,
            "leader_since_unix_ms": self.leader_since_unix_ms,
        }


_UNREACHABLE: Final = (nats.errors.Error, nats.js.errors.Error, TimeoutError)


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
