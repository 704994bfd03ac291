"""Snapshots in cluster mode: the engine's image in the JetStream object store, so a starting
replica (standby, projector) restores the newest one and follows the stream from after it
instead of replaying every message since the first.

Where and what: bucket ``<PREFIX>_SNAPSHOTS`` (replicated like the stream), one object per
snapshot named ``snapshot-<seq:020d>-<stream_seq:020d>``: the state after record ``seq``, which
is the last record of stream message ``stream_seq`` (snapshots are taken at message
boundaries, where a replica's state is defined). The object's bytes are exactly a snapshot
file's (`sequencer.snapshot`: header, crc, state hash, ``codec.encode_image`` payload), so the
embedded venue's format and checks are reused whole.

Who writes (`SnapshotWriter`): a standby sequencer, never the leader, each time its replica's
seq passes a multiple of ``snapshot_every`` (`SNAPSHOT_EVERY_COMMANDS` by default; 0: never).
Reasons:
(1) the leader's engine belongs to its writer thread and its latency is the venue's; a standby
has the same state at every message boundary and nothing else to do; (2) at a message boundary
the stream sequence is known exactly, which a mid-batch image of the leader would not give.
Two standbys claim a seq first (``kv.create`` of ``snapshot.<seq>`` in the lease bucket: one
wins), so each snapshot is written once. A cluster without a standby writes none (it also has
no failover: run two sequencers).

Invariants
    - An object is trusted only once it restored: the reader (`latest_snapshot`) checks crc,
      name against header, and the restored hash, and skips (logging) any object that fails,
      for the one before it.
    - A snapshot is the state at a message boundary, named by that message's stream sequence:
      a replica restored from it and fed the messages after it holds, at every later message,
      the hash a replay from message 1 holds there (tests/transport/test_snapshots.py compares
      every node at every checkpoint). Compare hashes at the same message only: an idle leader
      appends a Tick each second, so a hash read earlier than a replay differs from it without
      anything being wrong (what once made snapshots look nondeterministic, decisions §22).
    - A put cut short (``kill -9`` of the writer) leaves chunks without the object's metadata,
      which the object store never lists: invisible, never half-read. The stream is not touched
      by snapshots, so nothing can be lost by one.
    - Only the newest `SNAPSHOTS_KEPT` are kept; older ones (and their claims) are deleted
      after a new one was put. The stream itself keeps every message (docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from perpetua.sequencer.codec import decode_image, encode_image
from perpetua.sequencer.recovery import EngineFactory, RecoveryError, restore_snapshot
from perpetua.sequencer.replica import Replica
from perpetua.sequencer.snapshot import SnapshotCorruptError, decode_snapshot, encode_snapshot
from perpetua.transport.stream import ClusterNames

__all__ = [
    "SNAPSHOTS_KEPT",
    "SNAPSHOT_EVERY_COMMANDS",
    "SnapshotRef",
    "SnapshotWriter",
    "checked_payload",
    "ensure_snapshot_store",
    "latest_snapshot",
    "list_snapshot_objects",
    "object_name",
    "put_snapshot",
]

_log = logging.getLogger(__name__)

# a standby's snapshot period in seqs (``snapshot_every``): 300 KB and ~35 ms per image at the
# benchmark's state; a start replays at most this many commands after the restore
SNAPSHOT_EVERY_COMMANDS: Final = 100_000
SNAPSHOTS_KEPT: Final = 3  # the newest kept; a damaged newest falls back to the one before
SNAPSHOT_READ_TIMEOUT_S: Final = 60.0  # one object's read; a stuck read counts as damaged
CLAIM_PREFIX: Final = "snapshot."
_NAME = re.compile(r"snapshot-(\d{20})-(\d{20})")
_NATS_ERRORS: Final = (nats.errors.Error, nats.js.errors.Error, TimeoutError)


@dataclass(frozen=True, slots=True, order=True)
class SnapshotRef:
    seq: int
    stream_seq: int
    name: str


def object_name(seq: int, stream_seq: int) -> str:
    return f"snapshot-{seq:020d}-{stream_seq:020d}"


async def ensure_snapshot_store(
    js: JetStreamContext, names: ClusterNames, replicas: int
) -> ObjectStore:
    try:
        return await js.object_store(names.snapshot_bucket)
    except nats.js.errors.BucketNotFoundError:
        config = ObjectStoreConfig(
            bucket=names.snapshot_bucket, replicas=replicas, storage=StorageType.FILE
        )
        return await js.create_object_store(names.snapshot_bucket, config)


async def list_snapshot_objects(store: ObjectStore) -> list[SnapshotRef]:
    """The snapshot objects the store lists, oldest first (not verified)."""
    try:
        infos = await store.list(ignore_deletes=True)
    except nats.js.errors.NotFoundError:
        return []
    found = []
    for info in infos:
        match = _NAME.fullmatch(info.name or "")
        if match is not None and not info.deleted:
            found.append(SnapshotRef(int(match.group(1)), int(match.group(2)), match.group(0)))
    found.sort()
    return found


async def put_snapshot(
    store: ObjectStore, seq: int, stream_seq: int, state_hash: str, payload: bytes
) -> SnapshotRef:
    name = object_name(seq, stream_seq)
    await store.put(name, encode_snapshot(seq, state_hash, payload))
    return SnapshotRef(seq, stream_seq, name)


async def latest_snapshot(
    store: ObjectStore,
    engine_factory: EngineFactory,
    *,
    max_seq: int | None = None,
    checkpoint_every: int = 0,
) -> tuple[Replica, SnapshotRef] | None:
    """A replica restored from the newest snapshot that verifies (at or below ``max_seq`` if
    given), positioned after its stream message; None if none does (replay from the start)."""
    loop = asyncio.get_running_loop()
    try:
        refs = await list_snapshot_objects(store)
    except _NATS_ERRORS as error:
        _log.warning("cannot list snapshots (%r): replaying the stream from the start", error)
        return None
    for ref in reversed(refs):
        if max_seq is not None and ref.seq > max_seq:
            continue
        try:
            result = await asyncio.wait_for(store.get(ref.name), SNAPSHOT_READ_TIMEOUT_S)
            replica = await loop.run_in_executor(
                None, _restore, bytes(result.data or b""), ref, engine_factory, checkpoint_every
            )
        except (SnapshotCorruptError, RecoveryError, *_NATS_ERRORS) as error:
            _log.warning("skipping snapshot %s: %s", ref.name, error)
            continue
        _log.warning("restored snapshot %s (seq %d)", ref.name, ref.seq, extra={"seq": ref.seq})
        return replica, ref
    return None


def _restore(
    data: bytes, ref: SnapshotRef, engine_factory: EngineFactory, checkpoint_every: int
) -> Replica:
    snapshot = decode_snapshot(data, Path(ref.name))
    if snapshot.seq != ref.seq:
        raise SnapshotCorruptError(Path(ref.name), f"header says seq {snapshot.seq}")
    return Replica(
        restore_snapshot(snapshot, engine_factory),
        applied_seq=ref.seq,
        stream_seq=ref.stream_seq,
        checkpoint_every=checkpoint_every,
    )


def checked_payload(
    image: dict[str, object], state_hash: str, engine_factory: EngineFactory
) -> bytes:
    """The image's payload, restored once into a scratch engine to prove it restores. Not for
    a process whose live engine applies meanwhile (see `SnapshotWriter`): benchmarks, tools."""
    payload = encode_image(image)
    scratch = engine_factory()
    scratch.restore(decode_image(payload))
    restored = scratch.state_hash()
    if restored != state_hash:
        raise RecoveryError(f"image restores to {restored}, not {state_hash}: not written")
    return payload


class SnapshotWriter:
    """A standby's snapshots: ``after_message`` (on the loop, after each applied stream
    message) images the replica when its seq passed a multiple of ``every`` and writes it in
    the background; one write at a time (a due snapshot is skipped while one is running)."""

    def __init__(
        self,
        store: ObjectStore,
        claims: KeyValue,
        engine_factory: EngineFactory,
        every: int = SNAPSHOT_EVERY_COMMANDS,
        kept: int = SNAPSHOTS_KEPT,
        on_written: Callable[[SnapshotRef], None] | None = None,
    ) -> None:
        self._store = store
        self._claims = claims
        self._engine_factory = engine_factory
        self.every = every
        self.kept = kept
        self._on_written = on_written
        self._task: asyncio.Task[None] | None = None
        self.written: list[SnapshotRef] = []

    def after_message(self, replica: Replica, before_seq: int) -> None:
        every = self.every
        if not every or replica.applied_seq // every == before_seq // every:
            return
        if self._task is not None and not self._task.done():
            _log.warning(
                "snapshot at seq %d skipped: one is still writing",
                replica.applied_seq,
                extra={"seq": replica.applied_seq},
            )
            return
        # between messages, on the applying thread: the image and its bytes are the state at
        # this seq
        image, state_hash = replica.engine.snapshot_and_hash()
        payload = encode_image(image)
        self._task = asyncio.get_running_loop().create_task(
            self._write(replica.applied_seq, replica.stream_seq, state_hash, payload)
        )

    async def _write(self, seq: int, stream_seq: int, state_hash: str, payload: bytes) -> None:
        try:
            try:
                await self._claims.create(f"{CLAIM_PREFIX}{seq}", b"")
            except nats.js.errors.KeyWrongLastSequenceError:
                return  # another standby writes this one
            ref = await put_snapshot(self._store, seq, stream_seq, state_hash, payload)
            self.written.append(ref)
            _log.info("snapshot %s written (%d bytes)", ref.name, len(payload))
            if self._on_written is not None:
                self._on_written(ref)
            await self._prune()
        except (RecoveryError, *_NATS_ERRORS) as error:
            # nothing lost: the stream holds every message; the next multiple tries again
            _log.error("snapshot at seq %d failed: %r", seq, error, extra={"seq": seq})

    async def _prune(self) -> None:
        refs = await list_snapshot_objects(self._store)
        for ref in refs[: max(0, len(refs) - self.kept)]:
            await self._store.delete(ref.name)
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                await self._claims.delete(f"{CLAIM_PREFIX}{ref.seq}")

    async def drain(self) -> None:
        """Wait for a write under way (a stopping node)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
