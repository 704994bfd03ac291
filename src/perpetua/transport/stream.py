"""The journal stream: its names, its configuration and the format of one batch message.

One JetStream message per committed batch (or per part of a batch larger than
``BATCH_BYTES_MAX``): the MessagePack array ``[[seq, command payload], ...]`` of the records in
seq order, the payloads exactly as the file journal stores them (`sequencer.codec`). The stream
is the journal: every record of every message, in stream order, is every command the venue ever
applied, seqs consecutive from 1.

Invariants
    - Messages are appended only with ``Nats-Expected-Last-Sequence`` (`journal`): the stream
      holds one linear history, and a writer that did not see the newest message cannot add one.
    - The first record of message k+1 has the seq after the last record of message k.
    - The stream keeps everything (limits retention, no age or size limit, file storage): a new
      replica restores the newest snapshot (`snapshots`) and follows from the message after
      it, or replays from the start without one; the projector and gateways need the records
      before a snapshot too (docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

__all__ = [
    "BATCH_BYTES_MAX",
    "ClusterNames",
    "decode_batch",
    "encode_batch",
    "ensure_stream",
    "wait_for_stream",
]

# Below NATS's default max_payload of 1 MiB, with room for the array framing and headers.
BATCH_BYTES_MAX: Final = 900_000
STREAM_POLL_S: Final = 0.2

_Records = list[tuple[int, bytes]]
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(_Records)


@dataclass(frozen=True, slots=True)
class ClusterNames:
    """The NATS names one venue uses; ``prefix`` keeps venues (and tests) apart on one server."""

    prefix: str = "perpetua"

    @property
    def stream(self) -> str:
        return f"{self.prefix.upper()}_JOURNAL"

    @property
    def subject(self) -> str:
        return f"{self.prefix}.journal"

    @property
    def lease_bucket(self) -> str:
        return f"{self.prefix.upper()}_LEADER"

    @property
    def snapshot_bucket(self) -> str:
        """The object store of snapshots (`snapshots`)."""
        return f"{self.prefix.upper()}_SNAPSHOTS"

    @property
    def limits_bucket(self) -> str:
        return f"{self.prefix.upper()}_LIMITS"

    def submit_subject(self, node: str) -> str:
        """Where the sequencer ``node`` takes commands while it leads."""
        return f"{self.prefix}.submit.{node}"

    def status_subject(self, node: str) -> str:
        return f"{self.prefix}.node.{node}.status"


def encode_batch(records: _Records) -> bytes:
    return _encoder.encode(records)


def decode_batch(data: bytes) -> _Records:
    return _decoder.decode(data)


async def wait_for_stream(js: JetStreamContext, names: ClusterNames, timeout_s: float) -> None:
    """Wait until the journal stream exists (a sequencer creates it); TimeoutError if not."""
    deadline = time.monotonic() + timeout_s
    while True:  # bounded by the deadline
        try:
            await js.stream_info(names.stream)
            return
        except (TimeoutError, NotFoundError, nats.errors.TimeoutError):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no stream {names.stream} after {timeout_s} s") from None
            await asyncio.sleep(STREAM_POLL_S)


async def ensure_stream(js: JetStreamContext, names: ClusterNames, replicas: int) -> None:
    """Create the journal stream if it does not exist (an existing one is left as it is)."""
    try:
        await js.stream_info(names.stream)
        return
    except NotFoundError:
        pass
    await js.add_stream(
        StreamConfig(
            name=names.stream,
            subjects=[names.subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            num_replicas=replicas,
            max_msgs=-1,
            max_bytes=-1,
            max_age=0,
            allow_direct=True,
        )
    )
