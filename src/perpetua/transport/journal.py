"""`JetStreamJournal`: the sequencer's journal (`JournalLike`) on the JetStream stream.

``append_batch`` buffers records (up to ``BATCH_BYTES_MAX`` per message); ``commit`` publishes
the buffer as one message and returns only once JetStream acknowledged it, that is once the
stream's RAFT group stored it on a majority of its replicas (R3: two of three nodes; R1: the one
server's disk). The sequencer releases results and events only after ``commit`` returned, so an
acknowledged command is on a majority of the cluster.

Fencing: every publish carries ``Nats-Expected-Last-Sequence`` = the stream sequence this writer
last appended or saw. A writer deposed by a new leader (which appended since) gets JetStream's
"wrong last sequence" error and can never append again: `JournalFencedError`.

Uncertain publishes: a publish whose acknowledgement times out (a stream leader election, a
node lost) may or may not have been stored. It is retried with the same expected sequence until
``commit_timeout_s``: if the first attempt was stored, the retry meets "wrong last sequence", and
the journal reads the message after its expected sequence back: the same bytes mean the first
attempt landed (success), other bytes mean another writer appended (fenced).

Invariants
    - ``commit`` is called from a thread other than the NATS loop's (the sequencer's committer).
    - After any failure the journal refuses further use (`JournalFailedError`): the engine that
      fed it may have applied commands the stream does not hold; it must be rebuilt from the
      stream (`replica`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Final

from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.errors import APIError, NoStreamResponseError

from perpetua.sequencer.journal import JournalFailedError
from perpetua.transport.stream import BATCH_BYTES_MAX, ClusterNames, encode_batch

__all__ = ["JetStreamJournal", "JournalFencedError", "WRONG_LAST_SEQUENCE"]

WRONG_LAST_SEQUENCE: Final = 10071  # JetStream's JSStreamWrongLastSequenceErrF
PUBLISH_TIMEOUT_S: Final = 1.0  # one publish attempt
COMMIT_TIMEOUT_S: Final = 8.0  # all attempts of one commit (a stream leader election fits)
RETRY_PAUSE_S: Final = 0.05
RECORD_OVERHEAD_BYTES: Final = 16  # MessagePack framing of one [seq, payload] pair, at most
_TRANSIENT: Final = (
    NatsTimeoutError,
    asyncio.TimeoutError,
    NoRespondersError,
    NoStreamResponseError,
    ConnectionClosedError,
)


class JournalFencedError(JournalFailedError):
    """Another writer appended to the stream: this one is deposed and must not write again."""


class JetStreamJournal:
    """The sequencer's journal over ``names.stream``; see the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        js: JetStreamContext,
        names: ClusterNames,
        *,
        next_seq: int,
        last_stream_seq: int,
        commit_timeout_s: float = COMMIT_TIMEOUT_S,
        batch_bytes_max: int = BATCH_BYTES_MAX,
    ) -> None:
        self._loop = loop
        self._js = js
        self._names = names
        self._next_seq = next_seq
        self._durable_seq = next_seq - 1
        self._last_stream_seq = last_stream_seq
        self._commit_timeout_s = commit_timeout_s
        self._batch_bytes_max = batch_bytes_max
        self._buffer: list[tuple[int, bytes]] = []
        self._buffer_bytes = 0
        self._failed = False
        self._closed = False
        # Read racily by /metrics (plain ints): published messages, attempts tried again, and
        # the time from handing a message to the loop until JetStream acknowledged it.
        self.publish_count = 0
        self.retry_count = 0
        self.publish_ns_total = 0
        self.publish_ns_max = 0

    @property
    def fsync_stats(self) -> None:
        """The stream's servers make records durable: no fsync here to count."""
        return None

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def durable_seq(self) -> int:
        return self._durable_seq

    @property
    def last_stream_seq(self) -> int:
        """The stream sequence of the last message this journal appended (or started after)."""
        return self._last_stream_seq

    def append_batch(self, records: Sequence[tuple[int, bytes]], start: int = 0) -> int:
        """Buffer records[start:] while they fit in one message; the index after the last one
        buffered (the sequencer commits, then appends the rest)."""
        self._check_usable()
        index = start
        expected = self._next_seq
        while index < len(records):  # bounded: index grows by one each pass
            seq, payload = records[index]
            if seq != expected:
                raise RuntimeError(f"journal append of seq {seq}, expected {expected}")
            size = len(payload) + RECORD_OVERHEAD_BYTES
            if self._buffer and self._buffer_bytes + size > self._batch_bytes_max:
                break
            self._buffer.append((seq, payload))
            self._buffer_bytes += size
            expected = seq + 1
            index += 1
        self._next_seq = expected
        return index

    def commit(self) -> int:
        """Publish the buffer as one message; the durable seq once JetStream acknowledged it."""
        self._check_usable()
        if not self._buffer:
            return self._durable_seq
        data = encode_batch(self._buffer)
        started_ns = time.perf_counter_ns()
        try:
            stream_seq = asyncio.run_coroutine_threadsafe(self._publish(data), self._loop).result()
        except BaseException:
            self._failed = True
            raise
        took_ns = time.perf_counter_ns() - started_ns
        self.publish_ns_total += took_ns
        self.publish_ns_max = max(self.publish_ns_max, took_ns)
        self._last_stream_seq = stream_seq
        self._buffer = []
        self._buffer_bytes = 0
        self._durable_seq = self._next_seq - 1
        self.publish_count += 1
        return self._durable_seq

    async def _publish(self, data: bytes) -> int:
        names = self._names
        expected = self._last_stream_seq
        headers = {str(Header.EXPECTED_LAST_SEQUENCE.value): str(expected)}
        deadline = time.monotonic() + self._commit_timeout_s
        while True:  # bounded by the deadline
            try:
                ack = await self._js.publish(
                    names.subject, data, timeout=PUBLISH_TIMEOUT_S, stream=names.stream,
                    headers=dict(headers),
                )  # fmt: skip
                return int(ack.seq)
            except APIError as error:
                if error.err_code != WRONG_LAST_SEQUENCE:
                    raise JournalFailedError(f"JetStream refused the batch: {error}") from error
                if await self._landed(expected + 1, data, deadline):
                    return expected + 1
                raise JournalFencedError(
                    f"stream {names.stream} moved past sequence {expected}: another sequencer"
                    " appended; this one is deposed"
                ) from error
            except _TRANSIENT as error:
                if time.monotonic() >= deadline:
                    raise JournalFailedError(
                        f"JetStream did not acknowledge the batch in {self._commit_timeout_s} s:"
                        f" {error!r}"
                    ) from error
                self.retry_count += 1
                await asyncio.sleep(RETRY_PAUSE_S)

    async def _landed(self, stream_seq: int, data: bytes, deadline: float) -> bool:
        """Whether the message at stream_seq holds exactly ``data`` (an earlier attempt of this
        commit was stored though its acknowledgement was lost)."""
        while True:  # bounded by the deadline
            try:
                message = await self._js.get_msg(self._names.stream, seq=stream_seq)
                return message.data == data
            except _TRANSIENT as error:
                if time.monotonic() >= deadline:
                    raise JournalFailedError(
                        f"cannot read back seq {stream_seq}: {error!r}"
                    ) from error
                await asyncio.sleep(RETRY_PAUSE_S)

    def close(self) -> None:
        self._closed = True
        self._buffer = []

    def _check_usable(self) -> None:
        if self._failed:
            raise JournalFailedError(
                "the JetStream journal failed earlier; rebuild from the stream"
            )
        if self._closed:
            raise RuntimeError("JetStream journal used after close")
